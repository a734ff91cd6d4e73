"""django-admin for the ChromeOS integration (support's window). Tokens are never shown: ``TenantOwnedAdmin``
excludes encrypted fields from forms, and no list or read-only field names them.

Each area appends its own model admins below.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from chromeos.models import GoogleIntegration
from mdm.admin import TenantOwnedAdmin


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
