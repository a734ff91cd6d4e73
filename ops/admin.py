"""Support's view of the running console (django-admin at /support/): the workers' heartbeats."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from ops import worker
from ops.models import WorkerHeartbeat

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
