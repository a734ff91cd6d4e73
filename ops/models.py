"""What running the console leaves behind: a heartbeat row per Celery worker, the alerts e-mailed to admins."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from mdm.tenancy import TenantOwnedModel


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


class AlertKind(models.TextChoices):
    SYNC_FAILING = "sync_failing", _("Synchronisations en échec")
    REAUTH_REQUIRED = "reauth_required", _("Réautorisation requise")
    REMOVAL_GUARDED = "removal_guarded", _("Retraits en attente de confirmation")


class Alert(TenantOwnedModel):
    """An e-mail sent to a tenant's admins about one episode of a problem (ops/alerts.py); once per episode."""

    kind = models.CharField(_("type"), max_length=32, choices=AlertKind.choices)
    # What makes this episode this one (the first failed run of a streak, the authorization that was refused…).
    episode = models.CharField(max_length=100)
    subject = models.CharField(_("objet"), max_length=255)
    body = models.TextField(_("message"))
    recipients = models.JSONField(_("destinataires"), default=list)
    created_at = models.DateTimeField(_("le"), auto_now_add=True)
    sent_at = models.DateTimeField(_("envoyé le"), null=True, blank=True)
    error = models.TextField(_("erreur d'envoi"), blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "kind", "episode"], name="ops_alert_once_per_episode")
        ]
        verbose_name = _("alerte envoyée")
        verbose_name_plural = _("alertes envoyées")

    def __str__(self) -> str:
        return self.subject
