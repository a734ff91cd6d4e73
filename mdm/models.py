from __future__ import annotations

import functools
import uuid
import zoneinfo
from datetime import datetime, timedelta
from pathlib import PurePath
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mdm.tenancy import TenantOwnedModel


def default_time_zone() -> str:
    return str(settings.TIME_ZONE)


@functools.cache
def time_zone_names() -> frozenset[str]:
    """The IANA zone names of the zone database (read once: listing them walks the database, ~0.15 s)."""
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value: str) -> None:
    """An IANA zone name the system's zone database knows (``Europe/Paris``, ``America/New_York``)."""
    if value not in time_zone_names():
        raise ValidationError(
            _("« %(value)s » n'est pas un fuseau horaire connu (ex. : Europe/Paris)."),
            code="unknown_time_zone",
            params={"value": value[:64]},
        )


class Tenant(models.Model):
    """A customer organisation of the MDM service. Everything an admin sees belongs to one tenant."""

    slug = models.SlugField(_("identifiant"), max_length=63, unique=True)
    name = models.CharField(_("nom"), max_length=200)
    created_at = models.DateTimeField(_("créé le"), auto_now_add=True)
    # The zone the tenant's pages, exports and support views show times in (the database stores UTC).
    time_zone = models.CharField(
        _("fuseau horaire"), max_length=64, default=default_time_zone, validators=[validate_time_zone]
    )

    class Meta:
        ordering = ["slug"]
        verbose_name = _("locataire")
        verbose_name_plural = _("locataires")

    def __str__(self) -> str:
        return self.slug

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        """The tenant's zone; the console's if the stored name is no longer known (a zone database update)."""
        try:
            return zoneinfo.ZoneInfo(self.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return zoneinfo.ZoneInfo(settings.TIME_ZONE)


class Role(models.TextChoices):
    ADMIN = "admin", _("Administrateur")
    OPERATOR = "operator", _("Opérateur")
    READ_ONLY = "read_only", _("Lecture seule")


class User(AbstractUser):
    """A console user. Tenant users have a tenant and a role; support staff (is_staff) have neither."""

    tenant = models.ForeignKey(
        Tenant,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="users",
        verbose_name=_("locataire"),
    )
    role = models.CharField(_("rôle"), max_length=16, choices=Role.choices, blank=True)

    class Meta(AbstractUser.Meta):
        constraints = [
            models.CheckConstraint(
                name="user_tenant_has_role",
                condition=(
                    models.Q(tenant__isnull=True, role="")
                    | models.Q(tenant__isnull=False) & ~models.Q(role="")
                ),
                violation_error_message=_("Un utilisateur de locataire a exactement un rôle."),
            )
        ]

    @property
    def is_tenant_admin(self) -> bool:
        return self.tenant_id is not None and self.role == Role.ADMIN

    def has_role(self, *roles: str) -> bool:
        return self.tenant_id is not None and self.role in roles

    @property
    def display_name(self) -> str:
        """What people read: the full name, else the login without the ``<tenant>:`` prefix of LDAP accounts."""
        full = self.get_full_name().strip()
        if full:
            return full
        name = self.get_username()
        return name.split(":", 1)[1] if ":" in name else name


class AuditEvent(TenantOwnedModel):
    """Who did what, when, to what. Written through ``mdm.services.audit_record``; never holds secrets.

    Events of no tenant (support staff signing in, a sign-in attempt with an unknown user name or organisation)
    have an empty tenant: no tenant sees them, support does in /support/."""

    tenant = models.ForeignKey(  # type: ignore[assignment]
        "mdm.Tenant", on_delete=models.CASCADE, related_name="+", editable=False, null=True, blank=True
    )
    actor = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("acteur")
    )
    # Kept after the user is deleted, and for system actors (beat, worker) that have no user row.
    actor_label = models.CharField(_("acteur"), max_length=200)
    action = models.CharField(_("action"), max_length=100, db_index=True)
    target = models.CharField(_("cible"), max_length=300, blank=True)
    details = models.JSONField(_("détails"), default=dict, blank=True)
    created_at = models.DateTimeField(_("date"), auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="audit_tenant_time")]
        verbose_name = _("événement d'audit")
        verbose_name_plural = _("journal d'audit")

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.target}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # An event may belong to no tenant: never filled in from the current tenant (audit_record passes it).
        models.Model.save(self, *args, **kwargs)


class Platform(models.TextChoices):
    CHROMEOS = "chromeos", "ChromeOS"
    ANDROID = "android", "Android"
    IOS = "ios", "iOS"
    MACOS = "macos", "macOS"
    WINDOWS = "windows", "Windows"


class Blueprint(TenantOwnedModel):
    """A named configuration for a platform. Platform-agnostic: it outlives any integration."""

    name = models.CharField(_("nom"), max_length=200)
    platform = models.CharField(
        _("plateforme"), max_length=16, choices=Platform.choices, default=Platform.CHROMEOS
    )
    description = models.TextField(_("description"), blank=True)
    settings = models.JSONField(_("paramètres"), default=dict, blank=True)
    created_at = models.DateTimeField(_("créé le"), auto_now_add=True)
    updated_at = models.DateTimeField(_("modifié le"), auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="blueprint_unique_name")]
        verbose_name = _("configuration (Blueprint)")
        verbose_name_plural = _("configurations (Blueprints)")

    def __str__(self) -> str:
        return self.name


class AppKind(models.TextChoices):
    CHROME = "chrome", _("Extension ou appli web Chrome")
    ANDROID = "android", _("Appli Android")
    UPLOADED = "uploaded", _("Fichier téléchargé")


def app_upload_path(instance: App, filename: str) -> str:
    """A random name: the uploader's name (kept in ``file_name``) never reaches the file system."""
    extension = PurePath(filename).suffix.lower()
    return f"apps/{instance.tenant_id}/{uuid.uuid4().hex}{extension}"


class App(TenantOwnedModel):
    """An application admins distribute. Uploaded apps survive the removal of any integration."""

    name = models.CharField(_("nom"), max_length=200)
    kind = models.CharField(_("type"), max_length=16, choices=AppKind.choices)
    identifier = models.CharField(
        _("identifiant"),
        max_length=255,
        help_text=_("ID d'extension Chrome (32 lettres a–p), nom de paquet Android ou nom du fichier."),
    )
    file = models.FileField(_("fichier"), upload_to=app_upload_path, blank=True)
    # The uploaded package's own name, size and digest (mdm/uploads.py checks the file before it is stored).
    file_name = models.CharField(_("nom du fichier"), max_length=255, blank=True)
    file_size = models.PositiveBigIntegerField(_("taille du fichier"), null=True, blank=True)
    file_sha256 = models.CharField(_("empreinte SHA-256"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("créé le"), auto_now_add=True)
    updated_at = models.DateTimeField(_("modifié le"), auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "kind", "identifier"], name="app_unique_identifier")
        ]
        verbose_name = _("appli")
        verbose_name_plural = _("applis")

    def __str__(self) -> str:
        return self.name


class OutboxMessage(models.Model):
    """A Celery message written in the same transaction as the job row it starts (transactional outbox).

    Published right after the commit and deleted once the broker took it; a message whose publish failed
    (broker down) or never ran (the process died between commit and publish) stays here and the reaper
    (``mdm.jobs.jobs_reap``) publishes it again. So committed work is always eventually published. See
    ``mdm/jobs.py``.
    """

    task_name = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    # The job row the message starts ("chromeos.devicesync", pk), so a reaper knows it is still coming.
    kind = models.CharField(max_length=64)
    object_id = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["kind", "object_id"], name="outbox_kind_object")]
        verbose_name = _("message en attente de publication")
        verbose_name_plural = _("messages en attente de publication")

    def __str__(self) -> str:
        return f"{self.task_name}{self.args} ({self.attempts})"


class JobRun(TenantOwnedModel):
    """The shape every background job row shares: ``SyncRun``, ``LdapSyncRun``, ``RemovalRun`` and
    ``DeviceActionJob`` (NetBox's ``Job`` idea, one table per kind because each kind has its own counts).

    A row is written first (queued, in the transaction that enqueues it through ``mdm.jobs.enqueue``), moved by
    its worker (started, heartbeats, finished) and, when its worker died, by its kind's reaper (``mdm.jobs``).
    Each kind names its states (``status`` with its own choices) and says which of them are still being worked
    on (``ACTIVE_STATUSES``) and which one means failed (``FAILED_STATUS``); the behaviour below is the same for
    all. Policy jobs are not runs (a ``PolicyAssignment`` is a long-lived assignment whose ``state`` is the policy's
    state at Google, applied and removed again over its life) and keep their own fields.
    """

    ACTIVE_STATUSES: ClassVar[tuple[str, ...]] = ("queued", "running")
    # States before the row was handed to a worker at all (a device job's draft): neither active nor finished.
    UNSUBMITTED_STATUSES: ClassVar[tuple[str, ...]] = ()
    FAILED_STATUS: ClassVar[str] = "failed"
    CANCELLED_STATUS: ClassVar[str] = "cancelled"

    # Each kind redeclares it with its choices and default.
    status = models.CharField(_("statut"), max_length=16, default="queued")
    created_at = models.DateTimeField(_("demandée le"), auto_now_add=True)
    started_at = models.DateTimeField(_("démarrée le"), null=True, blank=True)
    finished_at = models.DateTimeField(_("terminée le"), null=True, blank=True)
    # Written by the worker while it works (per page, chunk or step): the reaper's sign of life.
    heartbeat_at = models.DateTimeField(_("dernier signe de vie"), null=True, blank=True)
    # How many times a reaper handed the row to a new worker after its worker died.
    resumes = models.PositiveSmallIntegerField(_("reprises"), default=0)
    # Why it failed (or what the admin should know), in the admin's words.
    error = models.TextField(_("erreur"), blank=True)
    log = models.JSONField(_("journal"), default=list, blank=True)

    class Meta(TenantOwnedModel.Meta):
        abstract = True

    @property
    def is_active(self) -> bool:
        """Queued or being worked on: not finished (and, for device jobs, not a draft either)."""
        return self.status in self.ACTIVE_STATUSES

    @property
    def is_finished(self) -> bool:
        return not self.is_active and self.status not in self.UNSUBMITTED_STATUSES

    @property
    def last_sign_of_life(self) -> datetime | None:
        """The latest of the heartbeat, the start and the request: what the reaper compares to its timeout."""
        times = [t for t in (self.heartbeat_at, self.started_at, self.created_at) if t is not None]
        return max(times) if times else None

    def is_stale(self, timeout: timedelta, now: datetime | None = None) -> bool:
        """Active, and no sign of life for longer than ``timeout``: its worker is presumed dead."""
        last = self.last_sign_of_life
        return self.is_active and last is not None and (now or timezone.now()) - last > timeout

    def beat(self, now: datetime | None = None) -> bool:
        """Record a sign of life (only while the row is active: a reaped row stays reaped)."""
        now = now or timezone.now()
        self.heartbeat_at = now
        return bool(
            type(self)
            ._base_manager.filter(pk=self.pk, status__in=self.ACTIVE_STATUSES)
            .update(heartbeat_at=now)
        )

    def mark_failed(self, reason: str, *, now: datetime | None = None, **fields: Any) -> bool:
        """Fail the row with ``reason`` if it is still in the state this object saw (or any active state when
        it saw none), in one conditional UPDATE: a worker that finished meanwhile wins, and two reapers do not
        both fail it. ``fields`` are the kind's own extras (``error_code``...). True if this call failed it."""
        now = now or timezone.now()
        seen = (self.status,) if self.status in self.ACTIVE_STATUSES else self.ACTIVE_STATUSES
        values = {"status": self.FAILED_STATUS, "finished_at": now, "error": str(reason), **fields}
        done = type(self)._base_manager.filter(pk=self.pk, status__in=seen).update(**values)
        if done:
            for name, value in values.items():
                setattr(self, name, value)
        return bool(done)

    def cancel(self, *, now: datetime | None = None, **fields: Any) -> bool:
        """Cancel the row if it is still in the active state this object saw, in one conditional UPDATE: a
        worker that took or finished it meanwhile wins (the caller reads it again and decides). The worker of
        a running row notices the state at its next check and stops. True if this call cancelled it."""
        if self.status not in self.ACTIVE_STATUSES:
            return False
        now = now or timezone.now()
        values = {"status": self.CANCELLED_STATUS, "finished_at": now, **fields}
        done = type(self)._base_manager.filter(pk=self.pk, status=self.status).update(**values)
        if done:
            for name, value in values.items():
                setattr(self, name, value)
        return bool(done)
