"""The Google side of a tenant: its integration, Google's OUs and ChromeOS devices, sync runs and commands.

Everything here is deleted when the integration is removed (see the removal service); Blueprints and apps,
which live in ``mdm``, are not.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import F, Value
from django.db.models.functions import Cast, Concat, Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from chromeos.policy_schemas import AppContext, InstallType
from mdm.display import search_fold
from mdm.fields import EncryptedTextField
from mdm.models import JobRun
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
    # Set by a run the deletion guard stopped: from then on no run removes any device, whoever starts it and
    # whatever the fleet's size, until an admin confirms the removals (or the absent devices come back).
    removals_held_since = models.DateTimeField(_("retraits suspendus depuis"), null=True, blank=True)
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
    # The run that created the row or last changed it (a run that lists it unchanged does not write it).
    last_seen_run_id = models.BigIntegerField(null=True)
    # The tenant's LDAP OU of the same path, linked by each sync. The guide supports only OUs imported from LDAP:
    # an OU without this link is listed but "non pris en charge" (no Blueprints or apps can target it).
    ldap_org_unit = models.ForeignKey(
        "ldap_sync.LdapOrgUnit",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="google_org_units",
        verbose_name=_("unité organisationnelle LDAP"),
    )
    # Set when Google stopped listing the OU (by id and by path) while assignments target it: the row and its
    # assignments are kept, shown "OU disparue", until an admin releases them or the OU comes back.
    missing_since = models.DateTimeField(_("disparue le"), null=True, blank=True)

    class Meta:
        ordering = ["path"]
        constraints = [models.UniqueConstraint(fields=["tenant", "org_unit_id"], name="org_unit_unique_id")]
        indexes = [models.Index(fields=["tenant", "path"], name="org_unit_path")]
        verbose_name = _("unité organisationnelle Google")
        verbose_name_plural = _("unités organisationnelles Google")

    def __str__(self) -> str:
        return self.path

    @property
    def supported(self) -> bool:
        """Backed by an LDAP OU: the only OUs the console manages ("prise en charge")."""
        return self.ldap_org_unit_id is not None


# (column, index name suffix) of the device list's sortable columns; see ChromeOSDevice.Meta.indexes.
# serial_number has its own (tenant, serial_number) index: serials are unique enough for an incremental sort.
DEVICE_SORT_INDEXES = (
    ("status", "status"),
    ("model", "model"),
    ("os_version", "os"),
    ("org_unit_path", "ou"),
    ("annotated_user", "user"),
    ("annotated_location", "loc"),
    ("annotated_asset_id", "asset"),
    ("recent_user", "recent"),
    ("mac_address", "mac"),
    ("last_sync", "sync"),
    ("auto_update_expiration", "aue"),
    ("notes", "notes"),
)


NOT_REMOVED = models.Q(removed_at__isnull=True)


class ChromeOSDevice(TenantOwnedModel):
    """A ChromeOS device of the tenant's Google domain: the columns admins filter on, and Google's full payload."""

    # No index of its own: every index of this table starts with the tenant (its unique device id first), and
    # each serves a look-up by tenant alone, the cascade of a tenant's deletion too. The foreign key's own index
    # was one more btree to maintain per device written (issue 18: a first sync of 100,000 devices, ~0.3 of
    # PostgreSQL's ~20 core-seconds) for no query.
    tenant = models.ForeignKey(
        "mdm.Tenant", on_delete=models.CASCADE, related_name="+", editable=False, db_index=False
    )
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

    # What the device list's search box matches (serial, asset id, annotated user, MACs, model, recent user),
    # lower-cased in one column so that one trigram GIN index answers a substring search over all of them.
    # Invisible formatting characters (mdm/display.py) are left out: they never decide a match.
    # Accents are folded too (« zoe » finds « Zoé »): the query is folded the same way.
    search_text = models.GeneratedField(
        expression=search_fold(
            Lower(
                Concat(
                    "serial_number",
                    Value("\n"),
                    "annotated_asset_id",
                    Value("\n"),
                    "annotated_user",
                    Value("\n"),
                    "mac_address",
                    Value("\n"),
                    "ethernet_mac_address",
                    Value("\n"),
                    "model",
                    Value("\n"),
                    "recent_user",
                    output_field=models.TextField(),
                )
            )
        ),
        output_field=models.TextField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["serial_number"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "device_id"], name="chromeos_device_unique_id")
        ]
        # The device list sorts on every column at 100,000 devices per tenant: each sortable column has a
        # (tenant, column, id) index so that page 1 in either direction is an index scan, never a sort.
        indexes = [
            models.Index(fields=["tenant", "serial_number"], name="chromeos_device_serial"),
            # Partial (the list hides removed devices): a filter's COUNT(*) is then an index-only scan that
            # never reads the wide rows (Google's payload lives in the row).
            *(
                models.Index(
                    fields=["tenant", column, "id"], name=f"cros_dev_sort_{short}", condition=NOT_REMOVED
                )
                for column, short in DEVICE_SORT_INDEXES
            ),
            # OU "with children": path = P OR path::text LIKE 'P/%' (prefix range on this index).
            models.Index(
                F("tenant"),
                OpClass(Cast("org_unit_path", models.TextField()), name="text_pattern_ops"),
                name="cros_dev_ou_prefix",
                condition=NOT_REMOVED,
            ),
            # tenant_id inside the GIN (btree_gin): a search never scans another tenant's matches.
            # A pending list of 16 MB instead of 4 (gin_pending_list_limit, in kB): a first sync's inserts are
            # merged into the index in 4× fewer, larger cleanups (12 % less insert CPU, issue 18); a search
            # reads the pending list too, which stays a few ms.
            GinIndex(
                F("tenant"),
                OpClass("search_text", name="gin_trgm_ops"),
                name="cros_dev_search_trgm",
                condition=NOT_REMOVED,
                gin_pending_list_limit=16384,
            ),
            models.Index(fields=["tenant", "removed_at"], name="cros_dev_removed"),
        ]
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
    # Devices added and updated, but nothing marked removed: the listing did not add up (Google's count
    # changed while paging), so absences prove nothing this time.
    PARTIAL = "partial", _("Réussie sans retraits (liste incomplète)")
    GUARDED = "guarded", _("Suppressions en attente de confirmation")
    FAILED = "failed", _("Échec")
    SKIPPED = "skipped", _("Ignorée")
    # Stopped by an operator: what was merged stays, nothing was removed (a cancelled listing proves nothing).
    CANCELLED = "cancelled", _("Annulée")


class SyncRun(JobRun):
    """One sync of a tenant's OUs and devices: the row is written first, then the task runs it."""

    ACTIVE_STATUSES = (SyncStatus.QUEUED, SyncStatus.RUNNING)

    integration = models.ForeignKey(GoogleIntegration, on_delete=models.CASCADE, related_name="sync_runs")
    trigger = models.CharField(_("déclenchement"), max_length=16, choices=SyncTrigger.choices)
    status = models.CharField(
        _("statut"), max_length=16, choices=SyncStatus.choices, default=SyncStatus.QUEUED
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    pages = models.PositiveIntegerField(_("pages"), default=0)
    devices_seen = models.PositiveIntegerField(_("périphériques lus"), default=0)
    added = models.PositiveIntegerField(_("ajoutés"), default=0)
    updated = models.PositiveIntegerField(_("modifiés"), default=0)
    unchanged = models.PositiveIntegerField(_("inchangés"), default=0)
    removed = models.PositiveIntegerField(_("retirés"), default=0)
    pending_removals = models.PositiveIntegerField(_("retraits en attente"), default=0)
    # Google's countChromeOsDevices when the listing started: the progress bar's total and the completeness check.
    expected_devices = models.PositiveIntegerField(_("périphériques attendus"), null=True, blank=True)
    # Devices of the listing that could not be stored (no deviceId): counted and logged, never fatal.
    devices_skipped = models.PositiveIntegerField(_("périphériques ignorés"), default=0)
    # Set when an admin confirmed the removals a guarded run held back: this run may remove up to this many.
    removal_allowance = models.PositiveIntegerField(null=True, blank=True)
    org_units = models.PositiveIntegerField(_("unités organisationnelles"), default=0)

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
    # The bulk job that issued it (devices area); null for commands issued otherwise.
    job = models.ForeignKey(
        "DeviceActionJob", on_delete=models.SET_NULL, null=True, blank=True, related_name="commands"
    )
    polls = models.PositiveIntegerField(default=0)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    # Set when Google reported a final state, or when tracking gave up (max age reached).
    finished_at = models.DateTimeField(_("terminée le"), null=True, blank=True)

    class Meta:
        ordering = ["-issued_at", "-id"]
        indexes = [models.Index(fields=["device", "-issued_at"], name="device_command_device_time")]
        verbose_name = _("commande à distance")
        verbose_name_plural = _("commandes à distance")

    def __str__(self) -> str:
        return f"{self.command_type} {self.state}"


class DeviceChange(TenantOwnedModel):
    """What changed on a device between two syncs (written by the sync's merge) or through a console action.

    ``changes`` maps a column name to ``[old, new]`` (JSON-friendly: dates as ISO strings).
    """

    device = models.ForeignKey(ChromeOSDevice, on_delete=models.CASCADE, related_name="changes")
    sync_run = models.ForeignKey(
        SyncRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="device_changes"
    )
    job = models.ForeignKey(
        "DeviceActionJob", on_delete=models.SET_NULL, null=True, blank=True, related_name="device_changes"
    )
    changes = models.JSONField(_("modifications"), default=dict)
    at = models.DateTimeField(_("le"), default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["device", "-at"], name="device_change_device_time")]
        verbose_name = _("modification de périphérique")
        verbose_name_plural = _("modifications de périphériques")

    def __str__(self) -> str:
        return f"{self.device_id} {sorted(self.changes)}"


class DeviceAction(models.TextChoices):
    """What a device action job does. ``cmd_*`` are remote commands sent through ``issueCommand``."""

    DISABLE = "disable", _("Désactiver")
    REENABLE = "reenable", _("Réactiver")
    DEPROVISION = "deprovision", _("Déprovisionner")
    MOVE = "move", _("Déplacer vers une unité organisationnelle")
    ANNOTATE = "annotate", _("Modifier les annotations")
    REBOOT = "cmd_reboot", _("Redémarrer")
    SCREENSHOT = "cmd_screenshot", _("Capture d'écran")
    SET_VOLUME = "cmd_set_volume", _("Régler le volume")
    WIPE_USERS = "cmd_wipe_users", _("Effacer les utilisateurs")
    POWERWASH = "cmd_remote_powerwash", _("Powerwash à distance")


class JobStatus(models.TextChoices):
    DRAFT = "draft", _("À confirmer")
    QUEUED = "queued", _("En attente")
    RUNNING = "running", _("En cours")
    SUCCEEDED = "succeeded", _("Réussie")
    PARTIAL = "partial", _("Réussie en partie")
    FAILED = "failed", _("Échec")
    CANCELLED = "cancelled", _("Annulée")


class DeviceActionJob(JobRun):
    """One action on a fixed set of devices, single or bulk. The row and its items are written when the admin
    asks (draft); confirming queues it; a Celery task runs it and records a result per device (the items)."""

    ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)
    UNSUBMITTED_STATUSES = (JobStatus.DRAFT,)

    action = models.CharField(_("action"), max_length=32, choices=DeviceAction.choices)
    params = models.JSONField(_("paramètres"), default=dict, blank=True)
    status = models.CharField(_("statut"), max_length=16, choices=JobStatus.choices, default=JobStatus.DRAFT)
    # How the device set was chosen ("selection" or the list's filter as a query string), for the record.
    selection = models.TextField(_("sélection"), blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("créée le"), auto_now_add=True)
    confirmed_at = models.DateTimeField(_("confirmée le"), null=True, blank=True)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("confirmée par"),
    )
    # « Relancer les échecs »: the job whose failed devices this one acts on again.
    retry_of = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="retries",
        verbose_name=_("relance de"),
    )
    total = models.PositiveIntegerField(_("périphériques"), default=0)
    succeeded = models.PositiveIntegerField(_("réussis"), default=0)
    failed = models.PositiveIntegerField(_("en échec"), default=0)
    # Counted when drafted: devices not ACTIVE then (Google refuses commands to them), for the confirmation.
    inactive_devices = models.PositiveIntegerField(default=0)
    # heartbeat_at (JobRun): the running worker's last sign of life (each chunk, each Google backoff), or when
    # the next one is due (a retry scheduled): older than JOB_HEARTBEAT_TIMEOUT_SECONDS means its worker died.
    # resumes (JobRun): times the reaper resumed the job after its worker died (failed past JOB_MAX_RESUMES).

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="device_job_tenant_time")]
        verbose_name = _("action sur des périphériques")
        verbose_name_plural = _("actions sur des périphériques")

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.status}"


class ItemStatus(models.TextChoices):
    PENDING = "pending", _("En attente")
    # Marked (and committed) before the Google call, decided after it: an item a dead worker left "sending" may
    # have been applied at Google, so it is never sent again (it fails "résultat inconnu").
    SENDING = "sending", _("Envoi à Google")
    SUCCEEDED = "succeeded", _("Réussi")
    FAILED = "failed", _("Échec")


class DeviceActionItem(TenantOwnedModel):
    """One device of a job: fixed when the job is drafted, with Google's per-device answer once run.

    A table rather than a JSON column on the job: a bulk action on 100,000 devices records results chunk by
    chunk, which must not rewrite one ever-growing document.
    """

    job = models.ForeignKey(DeviceActionJob, on_delete=models.CASCADE, related_name="items")
    device = models.ForeignKey(
        ChromeOSDevice, on_delete=models.SET_NULL, null=True, blank=True, related_name="action_items"
    )
    # Copied when drafted: the confirmation lists these, and they survive the device's deletion.
    google_device_id = models.CharField(_("ID Google"), max_length=64)
    serial_number = models.CharField(_("numéro de série"), max_length=128, blank=True)
    status = models.CharField(
        _("résultat"), max_length=16, choices=ItemStatus.choices, default=ItemStatus.PENDING
    )
    message = models.TextField(_("détail"), blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["job", "google_device_id"], name="device_action_item_unique")
        ]
        indexes = [
            models.Index(fields=["job", "status", "id"], name="device_action_item_status"),
            # The confirmation's first 200 and the results' pages, in order, without sorting a 100,000-item job.
            models.Index(fields=["job", "id"], name="device_action_item_order"),
        ]
        verbose_name = _("périphérique d'une action")
        verbose_name_plural = _("périphériques d'une action")

    def __str__(self) -> str:
        return f"{self.job_id} {self.serial_number or self.google_device_id} {self.status}"


class RemovalStatus(models.TextChoices):
    QUEUED = "queued", _("En attente")
    REVOKING = "revoking", _("Révocation du jeton Google")
    DELETING = "deleting", _("Suppression des données")
    SUCCEEDED = "succeeded", _("Terminée")
    FAILED = "failed", _("Échec")
    # Cancelled by an admin while queued: nothing was done at Google nor here.
    CANCELLED = "cancelled", _("Annulée")


REMOVAL_ACTIVE_STATUSES = (RemovalStatus.QUEUED, RemovalStatus.REVOKING, RemovalStatus.DELETING)


class RemovalRun(JobRun):
    """One removal of a tenant's Google integration (see ``chromeos.services.removal``).

    Deliberately not linked to the integration: it is the record of what was deleted and must outlive it.
    It is the only model of this app that the removal keeps.
    """

    ACTIVE_STATUSES = REMOVAL_ACTIVE_STATUSES

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
    # "revoked", "already_invalid" (Google no longer knew the token), "token_unreadable" (no key decrypts it: not
    # revoked), or empty while not revoked.
    revocation = models.CharField(_("révocation"), max_length=20, blank=True)
    expected = models.JSONField(_("à supprimer"), default=dict, blank=True)
    # The admin's choice on the confirmation: put the OUs the console wrote policies on back to inherited
    # before revoking; ``policies`` is the outcome per assignment ([{"assignment", "org_unit", "outcome",
    # "detail"}]), in the removal's report.
    restore_policies = models.BooleanField(_("rétablir l'héritage des règles"), default=False)
    policies = models.JSONField(_("règles rétablies"), default=list, blank=True)
    deleted = models.JSONField(_("supprimés"), default=dict, blank=True)

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


# -- policies: Blueprints and apps assigned to org units, applied through the Chrome Policy API -------------
class AssignmentState(models.TextChoices):
    PENDING = "pending", _("En attente")
    APPLYING = "applying", _("Application en cours")
    APPLIED = "applied", _("Appliquée")
    FAILED = "failed", _("Échec")
    REMOVING = "removing", _("Retrait en cours")
    REMOVAL_FAILED = "removal_failed", _("Échec du retrait")


class UnassignMode(models.TextChoices):
    RESTORE = "restore", _("Rétablir les valeurs d'avant l'affectation")
    INHERIT = "inherit", _("Hériter de l'unité organisationnelle parente")


class PolicyAssignment(TenantOwnedModel):
    """A Blueprint, or an app with an install type, assigned to a Google org unit.

    Deleted with its integration or org unit (CASCADE), and with its Blueprint or app: an assignment without
    its configuration means nothing, and deleting a Blueprint must never be blocked by the Google side. The
    Blueprint and the app themselves are never deleted from here.

    ``previous_values`` is what the org unit held, per schema, before the console first wrote there
    (``{schema: {"direct": bool, "value": {...}}}``): the "restore" of an unassignment. ``applied_values`` is
    what Google holds from this assignment (``{schema: {field: value}}``), updated namespace by namespace, so
    an unassignment touches exactly what was written even after a partial failure or a later Blueprint edit.
    """

    integration = models.ForeignKey(
        GoogleIntegration, on_delete=models.CASCADE, related_name="policy_assignments"
    )
    org_unit = models.ForeignKey(
        OrgUnit,
        on_delete=models.CASCADE,
        related_name="policy_assignments",
        verbose_name=_("unité organisationnelle"),
    )
    blueprint = models.ForeignKey(
        "mdm.Blueprint",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="chromeos_assignments",
        verbose_name=_("configuration (Blueprint)"),
    )
    app = models.ForeignKey(
        "mdm.App",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="chromeos_assignments",
        verbose_name=_("appli"),
    )
    app_context = models.CharField(_("contexte"), max_length=16, choices=AppContext.choices, blank=True)
    install_type = models.CharField(
        _("type d'installation"), max_length=16, choices=InstallType.choices, blank=True
    )
    state = models.CharField(
        _("état"), max_length=16, choices=AssignmentState.choices, default=AssignmentState.PENDING
    )
    google_error = models.TextField(_("erreur Google"), blank=True)
    previous_values = models.JSONField(default=dict, blank=True)
    applied_values = models.JSONField(default=dict, blank=True)
    removal_mode = models.CharField(
        _("mode de retrait"), max_length=16, choices=UnassignMode.choices, blank=True
    )
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("affectée le"), auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    apply_requested_at = models.DateTimeField(null=True, blank=True)
    # What « Annuler » needs to know of the apply or removal requested last: the state the assignment had before
    # the request (what a cancel puts back), and when a worker first took the request (from then on settings may
    # have reached Google, and the request can no longer be withdrawn). A task retry keeps ``request_taken_at``.
    request_state_before = models.CharField(max_length=16, choices=AssignmentState.choices, blank=True)
    request_taken_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(_("appliquée le"), null=True, blank=True)

    class Meta:
        ordering = ["org_unit__path", "id"]
        constraints = [
            models.CheckConstraint(
                name="policy_assignment_blueprint_xor_app",
                condition=(
                    models.Q(blueprint__isnull=False, app__isnull=True, app_context="", install_type="")
                    | models.Q(blueprint__isnull=True, app__isnull=False)
                    & ~models.Q(app_context="")
                    & ~models.Q(install_type="")
                ),
            ),
            models.UniqueConstraint(
                fields=["org_unit", "blueprint"],
                condition=models.Q(blueprint__isnull=False),
                name="policy_assignment_unique_blueprint",
            ),
            # One install type per app, context and org unit: Google holds one value there.
            models.UniqueConstraint(
                fields=["org_unit", "app", "app_context"],
                condition=models.Q(app__isnull=False),
                name="policy_assignment_unique_app",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "state"], name="policy_assignment_state")]
        verbose_name = _("affectation ChromeOS")
        verbose_name_plural = _("affectations ChromeOS")

    def __str__(self) -> str:
        return f"{self.subject_label} → {self.org_unit.path}"

    @property
    def subject_label(self) -> str:
        if self.blueprint is not None:
            return self.blueprint.name
        assert self.app is not None
        return f"{self.app.name} ({self.get_install_type_display()}, {self.get_app_context_display()})"


class SavedDeviceView(TenantOwnedModel):
    """A named view of the fleet table: its filters and sort (the list's query string) and its columns.

    Its owner's alone, or shared with the tenant (« partagée »): every user of the tenant then finds it in the
    « Vues » menu; only the owner or an admin changes or deletes a shared view."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("propriétaire")
    )
    name = models.CharField(_("nom"), max_length=80)
    # The list's query string (filters and sort only, normalised by the form), e.g. "status=ACTIVE&sort=model".
    query = models.CharField(_("filtres"), max_length=2000, blank=True)
    columns = models.JSONField(_("colonnes"), default=list, blank=True)
    shared = models.BooleanField(_("partagée avec l'organisation"), default=False)
    created_at = models.DateTimeField(_("créée le"), auto_now_add=True)
    updated_at = models.DateTimeField(_("modifiée le"), auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "owner", "name"], name="saved_device_view_unique_name")
        ]
        indexes = [models.Index(fields=["tenant", "shared"], name="saved_device_view_shared")]
        verbose_name = _("vue enregistrée")
        verbose_name_plural = _("vues enregistrées")

    def __str__(self) -> str:
        return self.name
