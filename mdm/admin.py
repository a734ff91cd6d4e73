"""django-admin is the support team's window on tenants. It reads across tenants (``unscoped``) and never
shows a secret: encrypted fields are excluded from every form and list."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mdm.fields import EncryptedTextField
from mdm.models import App, AuditEvent, Blueprint, Tenant, User


class TenantOwnedAdmin(admin.ModelAdmin):
    """Base for tenant-owned models: cross-tenant reads for support, tenant shown and filterable."""

    list_filter = ["tenant"]
    list_select_related = ("tenant",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Tenant data is created in the console by the tenant's admins, never by support on their behalf.
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return self.model.unscoped.all()

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> Any:
        # An object's times read in its tenant's zone, as the tenant sees them in the console.
        obj = self.get_object(request, object_id) if object_id else None
        tenant = getattr(obj, "tenant", None)
        if tenant is None:
            return super().changeform_view(request, object_id, form_url, extra_context)
        with timezone.override(tenant.tzinfo):
            context = {**(extra_context or {}), "support_time_zone": tenant.time_zone}
            response = super().changeform_view(request, object_id, form_url, context)
            # Rendered here, inside the tenant's zone (a TemplateResponse would render after the override).
            return response.render() if hasattr(response, "render") else response

    def get_exclude(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        secrets = [f.name for f in self.model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        return [*(super().get_exclude(request, obj) or ()), *secrets]


class ReadOnlyAdminMixin:
    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


# Support works under the console's name, in the console's language.
admin.site.site_header = _("Console MDM · support")
admin.site.site_title = _("Support de la console MDM")
admin.site.index_title = _("Espace support")


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "created_at")
    search_fields = ("slug", "name")

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        from mdm.support import support_panels

        tenant = self.get_object(request, object_id)
        if tenant is None:
            return super().change_view(request, object_id, form_url, extra_context)
        # The tenant's times in the tenant's zone, as its users see them (the page says which zone).
        with timezone.override(tenant.tzinfo):
            context = {
                **(extra_context or {}),
                "support_panels": support_panels(tenant),
                "support_time_zone": tenant.time_zone,
            }
            response = super().change_view(request, object_id, form_url, context)
            return response.render() if hasattr(response, "render") else response

    def has_delete_permission(self, request: HttpRequest, obj: Tenant | None = None) -> bool:
        # Deleting a tenant would delete its audit journal with it: offboarding is not a click in support.
        return False


@admin.register(User)
class ConsoleUserAdmin(UserAdmin):
    list_display = ("username", "email", "tenant", "role", "is_staff", "is_active")
    list_filter = ("tenant", "role", "is_staff", "is_active")
    fieldsets = (*UserAdmin.fieldsets, ("Tenant", {"fields": ("tenant", "role")}))  # type: ignore[misc]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, TenantOwnedAdmin):
    """Append-only, for support too: an audit entry is never changed or deleted by hand (the retention purge,
    ``audit_purge``, is the only way out)."""

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    list_display = ("created_at", "tenant", "actor_label", "action", "target")
    list_filter = ["tenant", "action"]
    search_fields = ("actor_label", "action", "target")
    date_hierarchy = "created_at"


@admin.register(Blueprint)
class BlueprintAdmin(TenantOwnedAdmin):
    list_display = ("name", "tenant", "platform", "updated_at")
    search_fields = ("name",)


@admin.register(App)
class AppAdmin(TenantOwnedAdmin):
    list_display = ("name", "tenant", "kind", "identifier", "file_name")
    search_fields = ("name", "identifier", "file_name")
    # Packages are uploaded in the console, where they are checked (mdm/uploads.py), and are served only by its
    # download view: support sees what was uploaded, never a media URL, and cannot swap the file.
    exclude = ("file",)
    readonly_fields = ("file_name", "file_size", "file_sha256")
