"""django-admin for support: read the directories, imports and runs of every tenant; never the bind password."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from ldap_sync.models import LdapDirectory, LdapOrgUnit, LdapSyncRun, LdapUser
from mdm.admin import ReadOnlyAdminMixin, TenantOwnedAdmin


@admin.register(LdapDirectory)
class LdapDirectoryAdmin(ReadOnlyAdminMixin, TenantOwnedAdmin):
    # TenantOwnedAdmin drops encrypted fields (bind_password) from every form.
    list_display = (
        "tenant",
        "kind",
        "uri",
        "base_dn",
        "bind_dn",
        "ou_selection",
        "hourly_sync_enabled",
        "updated_at",
    )
    search_fields = ("uri", "base_dn", "bind_dn")


@admin.register(LdapOrgUnit)
class LdapOrgUnitAdmin(ReadOnlyAdminMixin, TenantOwnedAdmin):
    list_display = ("path", "tenant", "added", "selected", "dn", "updated_at")
    list_filter = ["tenant", "added"]
    search_fields = ("path", "dn")


@admin.register(LdapUser)
class LdapUserAdmin(ReadOnlyAdminMixin, TenantOwnedAdmin):
    list_display = ("email", "name", "uid", "disabled", "tenant", "org_unit", "updated_at")
    list_filter = ["tenant", "disabled"]
    search_fields = ("email", "name", "uid", "dn")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).select_related("org_unit")


@admin.register(LdapSyncRun)
class LdapSyncRunAdmin(ReadOnlyAdminMixin, TenantOwnedAdmin):
    list_display = (
        "created_at",
        "tenant",
        "trigger",
        "status",
        "ous_added",
        "ous_changed",
        "ous_removed",
        "users_added",
        "users_changed",
        "users_removed",
        "entries_skipped",
        "error_code",
    )
    list_filter = ["tenant", "status", "trigger"]
    date_hierarchy = "created_at"
