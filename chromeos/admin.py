"""django-admin for the ChromeOS integration (support's window). Tokens are never shown: ``TenantOwnedAdmin``
excludes encrypted fields from forms, and no list or read-only field names them.

Each area appends its own model admins below.
"""

from __future__ import annotations

import re

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from chromeos.models import (
    ChromeOSDevice,
    DeviceActionItem,
    DeviceActionJob,
    DeviceCommand,
    GoogleIntegration,
    OrgUnit,
    PolicyAssignment,
    RemovalRun,
    SyncRun,
)
from mdm.admin import ReadOnlyAdminMixin, TenantOwnedAdmin


@admin.register(GoogleIntegration)
class GoogleIntegrationAdmin(TenantOwnedAdmin):
    list_display = (
        "tenant",
        "domain",
        "customer_id",
        "status",
        "admin_email",
        "authorized_at",
        "last_sync_at",
    )
    list_filter = ["status", "tenant"]
    search_fields = ("domain", "customer_id", "admin_email", "tenant__slug", "tenant__name")
    ordering = ("tenant__slug",)
    # Support reads these; the authorization, the sync and the removal write them, never a form.
    readonly_fields = (
        "tenant",
        "status",
        "status_detail",
        "customer_id",
        "domain",
        "customer_info",
        "admin_email",
        "authorized_by",
        "authorized_at",
        "scopes",
        "access_token_expires_at",
        "first_sync_at",
        "last_sync_at",
        "next_sync_at",
        "sync_offset_seconds",
        "updated_at",
    )

    def has_delete_permission(self, request: HttpRequest, obj: GoogleIntegration | None = None) -> bool:
        # Deleting the row would skip revoking the grant at Google: removal goes through the console.
        return False


@admin.register(RemovalRun)
class RemovalRunAdmin(TenantOwnedAdmin):
    """Removals, found by the support reference the admin quotes in a ticket (``REM-<id>-<tenant>``)."""

    list_display = (
        "reference",
        "tenant",
        "domain",
        "status",
        "revocation",
        "requested_by_label",
        "created_at",
    )
    list_filter = ["status", "tenant"]
    search_fields = ("domain", "customer_id", "requested_by_label", "tenant__slug", "error")
    readonly_fields = [f.name for f in RemovalRun._meta.fields]

    @admin.display(description=_("référence"))
    def reference(self, obj: RemovalRun) -> str:
        return obj.support_reference

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[RemovalRun], search_term: str
    ) -> tuple[QuerySet[RemovalRun], bool]:
        match = re.fullmatch(r"\s*REM-(\d+)(?:-[\w-]*)?\s*", search_term, re.IGNORECASE)
        if match:
            return queryset.filter(pk=int(match.group(1))), False
        return super().get_search_results(request, queryset, search_term)

    def has_change_permission(self, request: HttpRequest, obj: RemovalRun | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: RemovalRun | None = None) -> bool:
        return False


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdminMixin, TenantOwnedAdmin):
    """Every sync run of every tenant: what support reads first when "the devices are not up to date"."""

    list_display = (
        "id",
        "tenant",
        "trigger",
        "status",
        "created_at",
        "started_at",
        "finished_at",
        "devices_seen",
        "added",
        "updated",
        "unchanged",
        "removed",
        "pending_removals",
        "org_units",
    )
    list_filter = ["status", "trigger", "tenant"]
    search_fields = ("tenant__slug", "integration__domain", "error")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    readonly_fields = (*(f.name for f in SyncRun._meta.fields if f.name != "log"), "log_lines")
    exclude = ("log",)

    @admin.display(description=_("journal"))
    def log_lines(self, obj: SyncRun) -> str:
        from chromeos.selectors.sync import run_log

        # In the console's zone, like every other time on the page (the log stores UTC).
        return "\n".join(
            f"{timezone.localtime(line.at):%H:%M:%S} {line.level}: {line.text}"
            for line in run_log(obj)
            if line.at
        )

    def has_delete_permission(self, request: HttpRequest, obj: SyncRun | None = None) -> bool:
        return False


class ReadOnlyTenantAdmin(ReadOnlyAdminMixin, TenantOwnedAdmin):
    """Support reads; the console, the sync and the workers write. Nothing is deleted from here."""

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        return [f.name for f in self.model._meta.fields if f.name not in self.get_exclude(request, obj)]


@admin.register(ChromeOSDevice)
class ChromeOSDeviceAdmin(ReadOnlyTenantAdmin):
    list_display = ("serial_number", "tenant", "status", "model", "os_version", "org_unit_path", "last_sync")
    list_filter = ["tenant", "status"]
    search_fields = ("serial_number", "device_id", "annotated_asset_id", "annotated_user", "tenant__slug")
    date_hierarchy = "last_sync"


class DeviceActionItemInline(admin.TabularInline):
    model = DeviceActionItem
    fields = ("serial_number", "google_device_id", "status", "message")
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[DeviceActionItem]:
        return DeviceActionItem.unscoped.all()


@admin.register(DeviceActionJob)
class DeviceActionJobAdmin(ReadOnlyTenantAdmin):
    list_display = (
        "id",
        "tenant",
        "action",
        "status",
        "total",
        "succeeded",
        "failed",
        "requested_by",
        "created_at",
    )
    list_filter = ["tenant", "status", "action"]
    search_fields = ("tenant__slug", "error", "selection")
    date_hierarchy = "created_at"
    inlines = [DeviceActionItemInline]


@admin.register(DeviceCommand)
class DeviceCommandAdmin(ReadOnlyTenantAdmin):
    list_display = ("id", "tenant", "device", "command_type", "state", "result", "issued_at", "finished_at")
    list_filter = ["tenant", "state", "command_type"]
    search_fields = ("device__serial_number", "command_id", "tenant__slug")
    list_select_related = ("device",)
    date_hierarchy = "issued_at"


@admin.register(OrgUnit)
class OrgUnitAdmin(ReadOnlyTenantAdmin):
    list_display = ("path", "tenant", "ldap_org_unit")
    search_fields = ("path", "tenant__slug")


@admin.register(PolicyAssignment)
class PolicyAssignmentAdmin(ReadOnlyTenantAdmin):
    list_display = ("__str__", "tenant", "state")
    list_filter = ["tenant", "state"]
