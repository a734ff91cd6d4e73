"""The Google side of a tenant: its integration, Google's OUs and ChromeOS devices, sync runs and commands.

Everything here is deleted when the integration is removed (see the removal service); Blueprints and apps,
which live in ``mdm``, are not.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from mdm.fields import EncryptedTextField
from mdm.tenancy import TenantOwnedModel


class IntegrationStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    REAUTH_REQUIRED = "reauth_required", _("Réautorisation requise")
    REMOVING = "removing", _("Suppression en cours")
    REMOVAL_FAILED = "removal_failed", _("Échec de la suppression")


class GoogleIntegration(TenantOwnedModel):
    """A tenant's connection to its Google Admin console (one per tenant)."""

    status = models.CharField(_("statut"), max_length=20, choices=IntegrationStatus.choices)
    customer_id = models.CharField(_("ID client Google"), max_length=64)
    domain = models.CharField(_("domaine"), max_length=255)
    customer_info = models.JSONField(_("informations du domaine"), default=dict, blank=True)
    admin_email = models.EmailField(_("compte Google Admin"))
    authorized_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    authorized_at = models.DateTimeField(_("autorisée le"))
    scopes = models.JSONField(_("autorisations accordées"), default=list)
    refresh_token = EncryptedTextField(_("jeton d'actualisation"))
    access_token = EncryptedTextField(_("jeton d'accès"), blank=True)
    access_token_expires_at = models.DateTimeField(null=True, blank=True)

    # Sync schedule: the first sync is manual; after it beat syncs hourly at this tenant's offset in the hour.
    first_sync_at = models.DateTimeField(_("première synchronisation"), null=True, blank=True)
    last_sync_at = models.DateTimeField(_("dernière synchronisation"), null=True, blank=True)
    next_sync_at = models.DateTimeField(_("prochaine synchronisation"), null=True, blank=True)
    sync_offset_seconds = models.PositiveIntegerField(default=0)
    # A sync that would mark more than this share of devices removed stops and asks for confirmation.
    deletion_guard_percent = models.PositiveSmallIntegerField(_("seuil de suppression (%)"), default=10)
    status_detail = models.TextField(_("détail du statut"), blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant"], name="one_google_integration_per_tenant"),
            # One Google customer, one tenant: two tenants syncing one domain would fight over its devices.
            models.UniqueConstraint(fields=["customer_id"], name="google_customer_single_tenant"),
        ]
        verbose_name = _("intégration Google")
        verbose_name_plural = _("intégrations Google")

    def __str__(self) -> str:
        return f"{self.domain} ({self.customer_id})"


class OrgUnit(TenantOwnedModel):
    """An organisational unit of the tenant's Google domain, as last listed by a sync."""

    integration = models.ForeignKey(GoogleIntegration, on_delete=models.CASCADE, related_name="org_units")
    org_unit_id = models.CharField(max_length=64)
    path = models.CharField(_("chemin"), max_length=1024)
    name = models.CharField(_("nom"), max_length=255)
    parent_org_unit_id = models.CharField(max_length=64, blank=True)
    description = models.TextField(blank=True)
    last_seen_run_id = models.BigIntegerField(null=True)

    class Meta:
        ordering = ["path"]
        constraints = [models.UniqueConstraint(fields=["tenant", "org_unit_id"], name="org_unit_unique_id")]
        indexes = [models.Index(fields=["tenant", "path"], name="org_unit_path")]
        verbose_name = _("unité organisationnelle Google")
        verbose_name_plural = _("unités organisationnelles Google")

    def __str__(self) -> str:
        return self.path


class ChromeOSDevice(TenantOwnedModel):
    """A ChromeOS device of the tenant's Google domain: the columns admins filter on, and Google's full payload."""

    integration = models.ForeignKey(GoogleIntegration, on_delete=models.CASCADE, related_name="devices")
    device_id = models.CharField(max_length=64)
    serial_number = models.CharField(_("numéro de série"), max_length=128, blank=True)
    status = models.CharField(_("statut"), max_length=32, blank=True)
    model = models.CharField(_("modèle"), max_length=255, blank=True)
    os_version = models.CharField(_("version de l'OS"), max_length=64, blank=True)
    platform_version = models.CharField(max_length=64, blank=True)
    org_unit_path = models.CharField(_("unité organisationnelle"), max_length=1024, blank=True)
    org_unit_id = models.CharField(max_length=64, blank=True)
    annotated_user = models.CharField(_("utilisateur annoté"), max_length=255, blank=True)
    annotated_location = models.CharField(_("emplacement"), max_length=255, blank=True)
    annotated_asset_id = models.CharField(_("numéro d'inventaire"), max_length=255, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    mac_address = models.CharField(max_length=32, blank=True)
    ethernet_mac_address = models.CharField(max_length=32, blank=True)
    recent_user = models.CharField(_("utilisateur récent"), max_length=255, blank=True)
    boot_mode = models.CharField(max_length=32, blank=True)
    last_sync = models.DateTimeField(_("dernière synchro Google"), null=True, blank=True)
    last_enrollment_time = models.DateTimeField(null=True, blank=True)
    auto_update_expiration = models.DateField(_("fin des mises à jour"), null=True, blank=True)
    payload = models.JSONField(default=dict)
    etag = models.CharField(max_length=255, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    last_seen_run_id = models.BigIntegerField(null=True)
    # Set when a complete listing no longer contains the device; cleared if it comes back.
    removed_at = models.DateTimeField(_("retiré le"), null=True, blank=True)

    class Meta:
        ordering = ["serial_number"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "device_id"], name="chromeos_device_unique_id")
        ]
        indexes = [models.Index(fields=["tenant", "serial_number"], name="chromeos_device_serial")]
        verbose_name = _("périphérique ChromeOS")
        verbose_name_plural = _("périphériques ChromeOS")

    def __str__(self) -> str:
        return self.serial_number or self.device_id


class SyncTrigger(models.TextChoices):
    MANUAL = "manual", _("Manuelle")
    SCHEDULED = "scheduled", _("Planifiée")


class SyncStatus(models.TextChoices):
    QUEUED = "queued", _("En attente")
    RUNNING = "running", _("En cours")
    SUCCEEDED = "succeeded", _("Réussie")
    GUARDED = "guarded", _("Suppressions en attente de confirmation")
    FAILED = "failed", _("Échec")
    SKIPPED = "skipped", _("Ignorée")


class SyncRun(TenantOwnedModel):
    """One sync of a tenant's OUs and devices: the row is written first, then the task runs it."""

    integration = models.ForeignKey(GoogleIntegration, on_delete=models.CASCADE, related_name="sync_runs")
    trigger = models.CharField(_("déclenchement"), max_length=16, choices=SyncTrigger.choices)
    status = models.CharField(
        _("statut"), max_length=16, choices=SyncStatus.choices, default=SyncStatus.QUEUED
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("demandée le"), auto_now_add=True)
    started_at = models.DateTimeField(_("démarrée le"), null=True, blank=True)
    finished_at = models.DateTimeField(_("terminée le"), null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    pages = models.PositiveIntegerField(_("pages"), default=0)
    devices_seen = models.PositiveIntegerField(_("périphériques lus"), default=0)
    added = models.PositiveIntegerField(_("ajoutés"), default=0)
    updated = models.PositiveIntegerField(_("modifiés"), default=0)
    unchanged = models.PositiveIntegerField(_("inchangés"), default=0)
    removed = models.PositiveIntegerField(_("retirés"), default=0)
    pending_removals = models.PositiveIntegerField(_("retraits en attente"), default=0)
    org_units = models.PositiveIntegerField(_("unités organisationnelles"), default=0)
    error = models.TextField(_("erreur"), blank=True)
    log = models.JSONField(_("journal"), default=list, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="sync_run_tenant_time")]
        verbose_name = _("synchronisation")
        verbose_name_plural = _("synchronisations")

    def __str__(self) -> str:
        return f"#{self.pk} {self.trigger} {self.status}"


class CommandState(models.TextChoices):
    """Google's ``commands.get`` states, plus ours for a command Google never accepted."""

    PENDING = "PENDING", _("En attente")
    SENT_TO_CLIENT = "SENT_TO_CLIENT", _("Envoyée au périphérique")
    ACKED_BY_CLIENT = "ACKED_BY_CLIENT", _("Reçue par le périphérique")
    EXECUTED_BY_CLIENT = "EXECUTED_BY_CLIENT", _("Exécutée")
    EXPIRED = "EXPIRED", _("Expirée")
    CANCELLED = "CANCELLED", _("Annulée")
    FAILED_TO_ISSUE = "FAILED_TO_ISSUE", _("Refusée par Google")


class DeviceCommand(TenantOwnedModel):
    """A remote command issued to a device through ``issueCommand`` and tracked through ``commands.get``."""

    device = models.ForeignKey(ChromeOSDevice, on_delete=models.CASCADE, related_name="commands")
    command_type = models.CharField(_("commande"), max_length=64)
    payload = models.JSONField(default=dict, blank=True)
    command_id = models.CharField(max_length=64, blank=True)
    state = models.CharField(
        _("état"), max_length=32, choices=CommandState.choices, default=CommandState.PENDING
    )
    result = models.CharField(_("résultat"), max_length=32, blank=True)
    result_detail = models.TextField(blank=True)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    issued_at = models.DateTimeField(_("émise le"), auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-issued_at", "-id"]
        verbose_name = _("commande à distance")
        verbose_name_plural = _("commandes à distance")

    def __str__(self) -> str:
        return f"{self.command_type} {self.state}"


class RemovalStatus(models.TextChoices):
    QUEUED = "queued", _("En attente")
    REVOKING = "revoking", _("Révocation du jeton Google")
    DELETING = "deleting", _("Suppression des données")
    SUCCEEDED = "succeeded", _("Terminée")
    FAILED = "failed", _("Échec")


REMOVAL_ACTIVE_STATUSES = (RemovalStatus.QUEUED, RemovalStatus.REVOKING, RemovalStatus.DELETING)


class RemovalRun(TenantOwnedModel):
    """One removal of a tenant's Google integration (see ``chromeos.services.removal``).

    Deliberately not linked to the integration: it is the record of what was deleted and must outlive it.
    It is the only model of this app that the removal keeps.
    """

    status = models.CharField(
        _("statut"), max_length=16, choices=RemovalStatus.choices, default=RemovalStatus.QUEUED
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Kept when the user is deleted: support needs to know who asked.
    requested_by_label = models.CharField(_("demandée par"), max_length=200, blank=True)
    retry_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    customer_id = models.CharField(_("ID client Google"), max_length=64, blank=True)
    domain = models.CharField(_("domaine"), max_length=255, blank=True)
    # The integration's status when the removal was asked, restored if revocation fails.
    previous_status = models.CharField(max_length=20, blank=True)
    # "revoked", "already_invalid" (Google no longer knew the token), or empty while not revoked.
    revocation = models.CharField(_("révocation"), max_length=20, blank=True)
    expected = models.JSONField(_("à supprimer"), default=dict, blank=True)
    deleted = models.JSONField(_("supprimés"), default=dict, blank=True)
    error = models.TextField(_("erreur"), blank=True)
    created_at = models.DateTimeField(_("demandée le"), auto_now_add=True)
    started_at = models.DateTimeField(_("démarrée le"), null=True, blank=True)
    finished_at = models.DateTimeField(_("terminée le"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="removal_run_tenant_time")]
        constraints = [
            # Two removals of one tenant at once would race each other's revocation and deletion.
            models.UniqueConstraint(
                fields=["tenant"],
                condition=models.Q(status__in=["queued", "revoking", "deleting"]),
                name="one_active_removal_per_tenant",
            )
        ]
        verbose_name = _("suppression de l'intégration Google")
        verbose_name_plural = _("suppressions de l'intégration Google")

    def __str__(self) -> str:
        return f"{self.support_reference} {self.status}"

    @property
    def support_reference(self) -> str:
        """What the admin quotes in a ticket: finds the run and its tenant at a glance."""
        return f"REM-{self.pk}-{self.tenant.slug}"

    @property
    def is_active(self) -> bool:
        return self.status in REMOVAL_ACTIVE_STATUSES
