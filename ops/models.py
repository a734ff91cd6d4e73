"""What running the console leaves behind for support: one heartbeat row per Celery worker."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class WorkerHeartbeat(models.Model):
    """A Celery worker's main process says it is alive every ``OPS_WORKER_HEARTBEAT_SECONDS`` (ops/worker.py).

    No ``celery inspect`` (a broadcast that waits for every worker's reply): support and /metrics read rows."""

    hostname = models.CharField(_("travailleur"), max_length=255, unique=True)
    pid = models.PositiveIntegerField(_("PID"))
    concurrency = models.PositiveIntegerField(_("processus"), default=0)
    started_at = models.DateTimeField(_("démarré le"))
    last_seen_at = models.DateTimeField(_("dernier signe de vie"))
    last_task_at = models.DateTimeField(_("dernière tâche terminée"), null=True, blank=True)
    tasks_done = models.PositiveBigIntegerField(_("tâches terminées"), default=0)
    stopped_at = models.DateTimeField(_("arrêté le"), null=True, blank=True)

    class Meta:
        ordering = ["hostname"]
        verbose_name = _("travailleur Celery")
        verbose_name_plural = _("travailleurs Celery")

    def __str__(self) -> str:
        return self.hostname
