"""A tenant's LDAP directory, the OUs and users imported from it, and the record of every sync run.

Imported rows are keyed by ``(tenant, entry_uuid)``: the directory's ``entryUUID`` survives renames and moves,
so an OU renamed in LDAP keeps its identity (and whatever the console attached to it) here.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ldap_sync.client import DEFAULT_NETWORK_TIMEOUT, DEFAULT_OPERATION_TIMEOUT, ConnectionSettings
from ldap_sync.kinds import OPENLDAP_DISABLED_FILTER, DirectoryKind, GroupType
from mdm.fields import EncryptedTextField
from mdm.models import JobRun
from mdm.tenancy import TenantOwnedModel

DEFAULT_OU_FILTER = "(objectClass=organizationalUnit)"
DEFAULT_USER_FILTER = "(objectClass=inetOrgPerson)"


class OuSelection(models.TextChoices):
    ALL = "all", _("Toutes les unités organisationnelles")
    SELECTED = "selected", _("Seulement les unités organisationnelles choisies (et leurs sous-unités)")


class LdapDirectory(TenantOwnedModel):
    """The tenant's directory server and how to read it. One per tenant.

    ``kind`` only chose the defaults of the attributes and filters (``ldap_sync.kinds``); each stays editable.
    """

    kind = models.CharField(
        _("type d'annuaire"), max_length=32, choices=DirectoryKind.choices, default=DirectoryKind.OPENLDAP
    )
    uri = models.CharField(
        _("adresse du serveur"), max_length=300, help_text=_("ldap://hôte:389 ou ldaps://hôte:636")
    )
    start_tls = models.BooleanField(_("StartTLS"), default=False)
    ca_certificate = models.TextField(
        _("certificat de l'autorité (PEM)"),
        blank=True,
        help_text=_("Pour vérifier le certificat du serveur en ldaps:// ou StartTLS."),
    )
    bind_dn = models.CharField(_("DN de liaison"), max_length=500, blank=True)
    bind_password = EncryptedTextField(_("mot de passe de liaison"), blank=True)
    base_dn = models.CharField(_("DN de base"), max_length=500)
    ou_filter = models.CharField(
        _("filtre des unités organisationnelles"), max_length=1000, default=DEFAULT_OU_FILTER
    )
    user_filter = models.CharField(_("filtre des utilisateurs"), max_length=1000, default=DEFAULT_USER_FILTER)
    id_attribute = models.CharField(
        _("attribut d'identité"),
        max_length=64,
        default="entryUUID",
        help_text=_("Stable malgré les renommages : entryUUID (OpenLDAP), objectGUID (Active Directory)."),
    )
    uid_attribute = models.CharField(_("attribut d'identifiant"), max_length=64, default="uid")
    login_attributes = models.CharField(
        _("attributs de connexion"),
        max_length=200,
        default="uid",
        help_text=_("Séparés par des espaces, par exemple : sAMAccountName userPrincipalName."),
    )
    email_attribute = models.CharField(_("attribut d'adresse e-mail"), max_length=64, default="mail")
    email_fallback_attribute = models.CharField(
        _("attribut d'adresse e-mail de repli"),
        max_length=64,
        blank=True,
        help_text=_("Lu quand l'adresse e-mail est vide (Active Directory : userPrincipalName)."),
    )
    name_attribute = models.CharField(_("attribut du nom"), max_length=64, default="cn")
    disabled_filter = models.CharField(
        _("filtre des comptes désactivés"),
        max_length=1000,
        blank=True,
        default=OPENLDAP_DISABLED_FILTER,
        help_text=_(
            "Les utilisateurs qu'il retient sont importés comme désactivés et ne peuvent pas se connecter."
        ),
    )
    group_type = models.CharField(
        _("type des groupes"), max_length=32, choices=GroupType.choices, default=GroupType.GROUP_OF_NAMES
    )
    group_base_dn = models.CharField(
        _("DN de base des groupes"),
        max_length=500,
        blank=True,
        help_text=_("Laissez vide pour chercher les groupes sous le DN de base."),
    )
    network_timeout = models.PositiveSmallIntegerField(
        _("délai de connexion (s)"), default=int(DEFAULT_NETWORK_TIMEOUT)
    )
    operation_timeout = models.PositiveSmallIntegerField(
        _("délai par opération (s)"), default=int(DEFAULT_OPERATION_TIMEOUT)
    )
    admin_group_dn = models.CharField(_("groupe des administrateurs (DN)"), max_length=500, blank=True)
    operator_group_dn = models.CharField(_("groupe des opérateurs (DN)"), max_length=500, blank=True)
    readonly_group_dn = models.CharField(_("groupe lecture seule (DN)"), max_length=500, blank=True)
    ou_selection = models.CharField(
        _("unités organisationnelles ajoutées"),
        max_length=16,
        choices=OuSelection.choices,
        default=OuSelection.ALL,
    )
    # A setting mistake (base DN, filter, ACL) must not wipe the import: a run that would remove more than this
    # share of the OUs or of the users, and at least the minimum, stops "à confirmer" and removes nothing.
    removal_guard_percent = models.PositiveSmallIntegerField(
        _("seuil de suppression (%)"),
        default=10,
        help_text=_(
            "Une synchronisation qui supprimerait plus que cette part des OU ou des utilisateurs s'arrête et "
            "attend la confirmation d'un administrateur."
        ),
    )
    removal_guard_minimum = models.PositiveIntegerField(
        _("seuil de suppression (entrées)"),
        default=5,
        help_text=_("En dessous de ce nombre de suppressions, aucune confirmation n'est demandée."),
    )
    # OUs and users that leave the listing keep their row (and what hangs on it) this long before being purged.
    missing_grace_days = models.PositiveSmallIntegerField(
        _("délai de conservation des entrées disparues (jours)"),
        default=30,
        help_text=_(
            "Une OU ou un utilisateur absent de l'annuaire est conservé (masqué) pendant ce délai : s'il "
            "réapparaît, il retrouve son choix, ses liens Google et ses affectations."
        ),
    )
    # Set by the first successful manual sync: from then on beat keeps the directory synced hourly.
    hourly_sync_enabled = models.BooleanField(_("synchronisation horaire"), default=False)
    created_at = models.DateTimeField(_("créé le"), auto_now_add=True)
    updated_at = models.DateTimeField(_("modifié le"), auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant"], name="ldap_directory_one_per_tenant")]
        verbose_name = _("annuaire LDAP")
        verbose_name_plural = _("annuaires LDAP")

    def __str__(self) -> str:
        return f"{self.uri} ({self.base_dn})"

    def connection_settings(self, **overrides: Any) -> ConnectionSettings:
        values: dict[str, Any] = {
            "uri": self.uri,
            "bind_dn": self.bind_dn,
            "bind_password": self.bind_password or "",
            "start_tls": self.start_tls,
            "ca_cert_pem": self.ca_certificate,
            "network_timeout": float(self.network_timeout),
            "operation_timeout": float(self.operation_timeout),
            "domain_scope": self.kind == DirectoryKind.ACTIVE_DIRECTORY,
        }
        values.update(overrides)
        return ConnectionSettings(**values)

    @property
    def is_configured(self) -> bool:
        return bool(self.uri and self.base_dn and (not self.bind_dn or self.bind_password))

    @property
    def login_attribute_list(self) -> list[str]:
        return self.login_attributes.split() or [self.uid_attribute]

    @property
    def groups_search_base(self) -> str:
        return self.group_base_dn or self.base_dn


class LdapOrgUnit(TenantOwnedModel):
    """An organisational unit of the directory, with its Google-style path (``/Paris/Ventes``)."""

    directory = models.ForeignKey(LdapDirectory, on_delete=models.CASCADE, related_name="org_units")
    entry_uuid = models.UUIDField(_("entryUUID"))
    dn = models.TextField(_("DN"))
    name = models.CharField(_("nom"), max_length=255)
    path = models.TextField(_("chemin"), db_index=True)
    parent = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="children",
        verbose_name=_("parent"),
    )
    # The admin's explicit choice (the root of an added subtree) and its effect (this OU is added).
    selected = models.BooleanField(_("choisie"), default=False)
    added = models.BooleanField(_("ajoutée"), default=True, db_index=True)
    # Gone from the directory's listing since then: hidden, not added, purged after the grace period.
    missing_since = models.DateTimeField(_("absente de l'annuaire depuis"), null=True, blank=True)
    created_at = models.DateTimeField(_("importée le"), auto_now_add=True)
    updated_at = models.DateTimeField(_("modifiée le"), default=timezone.now)

    class Meta:
        ordering = ["path"]
        constraints = [models.UniqueConstraint(fields=["tenant", "entry_uuid"], name="ldap_ou_unique_uuid")]
        verbose_name = _("unité organisationnelle LDAP")
        verbose_name_plural = _("unités organisationnelles LDAP")

    def __str__(self) -> str:
        return self.path

    @property
    def depth(self) -> int:
        return self.path.count("/")


class LdapUser(TenantOwnedModel):
    directory = models.ForeignKey(LdapDirectory, on_delete=models.CASCADE, related_name="users")
    entry_uuid = models.UUIDField(_("entryUUID"))
    dn = models.TextField(_("DN"))
    uid = models.CharField(_("identifiant"), max_length=255, blank=True)
    email = models.CharField(_("adresse e-mail"), max_length=320)
    name = models.CharField(_("nom"), max_length=255)
    disabled = models.BooleanField(_("désactivé"), default=False)
    org_unit = models.ForeignKey(
        LdapOrgUnit,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="users",
        verbose_name=_("OU"),
    )
    # Gone from the directory's listing since then: hidden, purged after the grace period.
    missing_since = models.DateTimeField(_("absent de l'annuaire depuis"), null=True, blank=True)
    # The console account of this directory user: keyed to the entry's id, so a renamed login (uid) keeps it.
    console_user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="ldap_entry",
        verbose_name=_("compte de la console"),
    )
    created_at = models.DateTimeField(_("importé le"), auto_now_add=True)
    updated_at = models.DateTimeField(_("modifié le"), default=timezone.now)

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "entry_uuid"], name="ldap_user_unique_uuid"),
            # Deferred: one sync may swap two users' addresses; uniqueness holds again at commit.
            models.UniqueConstraint(
                fields=["tenant", "email"],
                name="ldap_user_unique_email",
                deferrable=models.Deferrable.DEFERRED,
            ),
        ]
        verbose_name = _("utilisateur LDAP")
        verbose_name_plural = _("utilisateurs LDAP")

    def __str__(self) -> str:
        return self.email


class SyncTrigger(models.TextChoices):
    MANUAL = "manual", _("Manuelle")
    SCHEDULED = "scheduled", _("Planifiée")
    CLI = "cli", _("Ligne de commande")


class SyncStatus(models.TextChoices):
    QUEUED = "queued", _("En attente")
    RUNNING = "running", _("En cours")
    SUCCEEDED = "succeeded", _("Réussie")
    PARTIAL = "partial", _("Réussie sans suppressions (liste incomplète)")
    GUARDED = "guarded", _("À confirmer (trop de suppressions)")
    FAILED = "failed", _("Échouée")
    SKIPPED = "skipped", _("Ignorée (une autre synchronisation était en cours)")
    # Stopped by an operator before it applied anything (a run applies its listing in one step, at the end).
    CANCELLED = "cancelled", _("Annulée")


FINISHED_STATUSES = (
    SyncStatus.SUCCEEDED,
    SyncStatus.PARTIAL,
    SyncStatus.GUARDED,
    SyncStatus.FAILED,
    SyncStatus.SKIPPED,
    SyncStatus.CANCELLED,
)


class LdapSyncRun(JobRun):
    """One sync of a directory: written first (queued), then filled in by the worker."""

    ACTIVE_STATUSES = (SyncStatus.QUEUED, SyncStatus.RUNNING)

    directory = models.ForeignKey(LdapDirectory, on_delete=models.CASCADE, related_name="runs")
    trigger = models.CharField(_("déclenchement"), max_length=16, choices=SyncTrigger.choices)
    status = models.CharField(_("état"), max_length=16, choices=SyncStatus.choices, default=SyncStatus.QUEUED)
    requested_by = models.CharField(_("demandée par"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("demandée le"), auto_now_add=True, db_index=True)
    ous_seen = models.PositiveIntegerField(_("OU lues"), default=0)
    ous_added = models.PositiveIntegerField(_("OU ajoutées"), default=0)
    ous_changed = models.PositiveIntegerField(_("OU modifiées"), default=0)
    ous_removed = models.PositiveIntegerField(_("OU supprimées"), default=0)
    users_seen = models.PositiveIntegerField(_("utilisateurs lus"), default=0)
    users_added = models.PositiveIntegerField(_("utilisateurs ajoutés"), default=0)
    users_changed = models.PositiveIntegerField(_("utilisateurs modifiés"), default=0)
    users_removed = models.PositiveIntegerField(_("utilisateurs supprimés"), default=0)
    entries_skipped = models.PositiveIntegerField(_("entrées ignorées"), default=0)
    error_code = models.CharField(_("code d'erreur"), max_length=64, blank=True)
    # Entries of the listing that could not be imported: [{"dn", "reason"}] (``ldap_sync --json``'s ``skipped``).
    skipped = models.JSONField(_("entrées ignorées (détail)"), default=list, blank=True)
    # A guarded run: exactly what it would have removed, {"org_units": [{"entry_uuid", "dn", "path"}],
    # "users": [{"entry_uuid", "dn", "email"}]}, for the admin to confirm.
    pending_removals = models.JSONField(_("suppressions en attente"), default=dict, blank=True)
    # A run an admin queued by confirming a guarded run: the entryUUIDs it may remove past the threshold.
    confirmed_removals = models.JSONField(_("suppressions confirmées"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="ldap_run_tenant_time")]
        verbose_name = _("synchronisation LDAP")
        verbose_name_plural = _("synchronisations LDAP")

    def __str__(self) -> str:
        return f"{self.get_trigger_display()} {self.created_at:%Y-%m-%d %H:%M} {self.get_status_display()}"

    @property
    def error_message(self) -> str:
        """The reason, under the name this model gave it before the shared shape (``error``)."""
        return self.error

    @error_message.setter
    def error_message(self, value: str) -> None:
        self.error = value

    @property
    def duration(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class DirectoryRevocation(TenantOwnedModel):
    """A console account the directory no longer grants (entry deleted, in no role group): the sync
    deactivated it. Only these accounts are reactivated when the directory grants access again; an account
    deactivated by support has no such row and stays deactivated."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="directory_revocation"
    )
    reason = models.CharField(_("raison"), max_length=32)
    revoked_at = models.DateTimeField(_("retiré le"), default=timezone.now)

    class Meta:
        verbose_name = _("accès retiré par l'annuaire")
        verbose_name_plural = _("accès retirés par l'annuaire")

    def __str__(self) -> str:
        return f"{self.user} ({self.reason})"
