"""Support's view of the running console (django-admin at /support/): workers' heartbeats, alerts sent."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from ops import worker
from ops.models import Alert, WorkerHeartbeat

STATE_LABELS = {
    worker.ALIVE: _("En vie"),
    worker.LATE: _("Sans nouvelles"),
    worker.STOPPED: _("Arrêté"),
}


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = (
        "hostname",
        "state",
        "last_seen_at",
        "last_task_at",
        "tasks_done",
        "pid",
        "concurrency",
        "started_at",
    )
    search_fields = ("hostname",)
    ordering = ("hostname",)

    @admin.display(description=_("état"))
    def state(self, obj: WorkerHeartbeat) -> str:
        return str(STATE_LABELS[worker.worker_state(obj)])

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    """What each tenant's admins were told, and when (support's view of the alerts)."""

    list_display = ("created_at", "tenant", "kind", "subject", "sent_at", "error")
    list_filter = ("kind", "tenant")
    search_fields = ("tenant__slug", "tenant__name", "subject")
    readonly_fields = (
        "tenant",
        "kind",
        "episode",
        "subject",
        "body",
        "recipients",
        "created_at",
        "sent_at",
        "error",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Alert]:
        return Alert.unscoped.select_related("tenant")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
