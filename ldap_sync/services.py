"""Writes of the LDAP integration: configure the directory, test it, choose OUs, request and run syncs.

A sync reads the whole directory first (paged) into memory, then applies adds, changes and removals by
``entryUUID`` in one short transaction. Nothing is written while the directory is being read, so a failure
mid-listing (server down, size limit, bind refused...) leaves the previous import untouched; removals are
applied only when the server reported the end of a complete listing.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import OperationalError, transaction
from django.db.models import Count
from django.utils import timezone

from ldap_sync.backends import ROLE_ORDER, role_groups
from ldap_sync.client import (
    LdapClient,
    LdapEntry,
    LdapError,
    dn_rdns,
    normalize_dn,
)
from ldap_sync.diagnostics import ConnectionReport, check_connection
from ldap_sync.models import (
    DirectoryRevocation,
    LdapDirectory,
    LdapOrgUnit,
    LdapSyncRun,
    LdapUser,
    OuSelection,
    SyncStatus,
    SyncTrigger,
)
from mdm import jobs
from mdm.locks import AdvisoryLock, advisory_lock_held
from mdm.models import Tenant, User
from mdm.services import audit_record
from mdm.tenancy import tenant_context
from ops import metrics

logger = logging.getLogger(__name__)

# First key of the two-key advisory lock: "LDAP" in ASCII, so it cannot collide with another app's locks.
SYNC_LOCK_NAMESPACE = 0x4C444150
# A run log keeps every line up to this many; a directory full of broken entries must not bloat the row.
MAX_LOG_LINES = 500
BULK_BATCH = 1000


def _(message: str) -> str:  # marks msgids for makemessages; the run log is translated when displayed
    return message


# -- configuration ------------------------------------------------------------------------------------------------
def directory_save(*, directory: LdapDirectory, actor: User, changed_fields: list[str]) -> LdapDirectory:
    created = directory.pk is None
    with transaction.atomic():
        directory.save()
        audit_record(
            tenant=directory.tenant,
            actor=actor,
            action="ldap.directory.create" if created else "ldap.directory.update",
            target=directory.uri,
            # Field names only: the bind password's value never reaches the audit trail.
            details={"changed": sorted(changed_fields)},
        )
    return directory


def directory_test_connection(*, directory: LdapDirectory) -> ConnectionReport:
    """Try every step with the given (possibly unsaved) settings and report what works and what fails."""
    return check_connection(
        directory.connection_settings(),
        base_dn=directory.base_dn,
        ou_filter=directory.ou_filter,
        user_filter=directory.user_filter,
        id_attribute=directory.id_attribute,
        role_groups=role_groups(directory),
        group_type=directory.group_type,
        uid_attribute=directory.uid_attribute,
    )


def org_units_select(
    *, directory: LdapDirectory, actor: User, mode: str, selected_ids: list[int]
) -> LdapDirectory:
    """Choose which OUs are added: all of them, or the chosen ones with their sub-units."""
    with transaction.atomic():
        directory.ou_selection = mode
        directory.save(update_fields=["ou_selection", "updated_at"])
        units = LdapOrgUnit.unscoped.filter(tenant=directory.tenant)
        units.update(selected=False)
        if mode == OuSelection.SELECTED:
            units.filter(pk__in=selected_ids).update(selected=True)
        added = _recompute_added(directory)
        audit_record(
            tenant=directory.tenant,
            actor=actor,
            action="ldap.org_units.select",
            target=directory.base_dn,
            details={"mode": mode, "selected": len(selected_ids), "added": added},
        )
    return directory


def _recompute_added(directory: LdapDirectory) -> int:
    """An OU is added when the admin takes all OUs, or when it or one of its ancestors was chosen."""
    units = list(
        LdapOrgUnit.unscoped.filter(tenant=directory.tenant).only(
            "id", "parent_id", "selected", "added", "path", "missing_since"
        )
    )
    by_id = {unit.pk: unit for unit in units}
    take_all = directory.ou_selection == OuSelection.ALL
    effective: dict[int, bool] = {}

    def is_added(unit: LdapOrgUnit) -> bool:
        if unit.pk not in effective:
            parent = by_id.get(unit.parent_id) if unit.parent_id else None
            effective[unit.pk] = unit.missing_since is None and (
                take_all or unit.selected or (parent is not None and is_added(parent))
            )
        return effective[unit.pk]

    # Parents before children (paths sort that way), so the recursion above stays shallow.
    changed = []
    for unit in sorted(units, key=lambda u: u.path.count("/")):
        if unit.added != is_added(unit):
            unit.added = effective[unit.pk]
            changed.append(unit)
    LdapOrgUnit.unscoped.bulk_update(changed, ["added"], batch_size=BULK_BATCH)
    return sum(effective.values())


# -- sync requests ------------------------------------------------------------------------------------------------
def sync_request(
    *,
    directory: LdapDirectory,
    trigger: str,
    actor: User | None = None,
    confirmed_removals: list[str] | None = None,
) -> LdapSyncRun:
    """Write the run row, then queue the task once the row is committed. An unfinished run is reused."""
    from ldap_sync.tasks import ldap_sync_task

    for pending in LdapSyncRun.unscoped.filter(
        tenant=directory.tenant, status__in=[SyncStatus.QUEUED, SyncStatus.RUNNING]
    ).order_by("-created_at"):
        if ldap_sync_run_is_alive(pending):
            return pending
    ldap_sync_runs_reap(timezone.now(), tenant=directory.tenant)
    with transaction.atomic():
        run = LdapSyncRun.unscoped.create(
            tenant=directory.tenant,
            directory=directory,
            trigger=trigger,
            requested_by=actor.get_username() if actor else "",
            confirmed_removals=confirmed_removals,
        )
        if actor is not None:
            audit_record(
                tenant=directory.tenant,
                actor=actor,
                action="ldap.sync.request",
                target=directory.base_dn,
                details={"run_id": run.pk},
            )
        jobs.enqueue(ldap_sync_task.name, directory.tenant_id, run.pk, kind=RUN_KIND, object_id=run.pk)
    return run


RUN_KIND = "ldap_sync.ldapsyncrun"


def ldap_sync_run_waits_for_broker(run: LdapSyncRun) -> bool:
    """Queued, and its message still waits in the outbox (the broker refused it): the run page says why it waits."""
    return jobs.waits_for_broker(RUN_KIND, run.pk, queued=run.status == SyncStatus.QUEUED)


def _queued_timeout() -> timedelta:
    return timedelta(seconds=int(getattr(settings, "LDAP_SYNC_QUEUED_TIMEOUT_SECONDS", 600)))


def ldap_sync_run_is_alive(run: LdapSyncRun) -> bool:
    """RUNNING: its tenant's advisory lock is held (the lock dies with the worker's process, at once).
    QUEUED: taken by no worker for less than LDAP_SYNC_QUEUED_TIMEOUT_SECONDS, or waiting in the outbox for the
    broker to come back (then it is delayed, not lost)."""
    if run.status == SyncStatus.RUNNING:
        return advisory_lock_held(SYNC_LOCK_NAMESPACE, run.tenant_id)
    if run.status == SyncStatus.QUEUED:
        return timezone.now() - run.created_at < _queued_timeout() or jobs.publication_pending(
            RUN_KIND, run.pk
        )
    return False


def ldap_sync_runs_reap(now: datetime, *, tenant: Tenant | None = None) -> int:
    """The reaper of LDAP syncs (registered in ``mdm.jobs``, and run before a new request): a RUNNING run whose
    worker died, or a QUEUED run no worker took in time, is failed with the reason; the next one starts afresh."""
    qs = LdapSyncRun.unscoped.filter(status__in=[SyncStatus.QUEUED, SyncStatus.RUNNING])
    if tenant is not None:
        qs = qs.filter(tenant=tenant)
    reaped = 0
    for run in qs.order_by("pk")[:500]:
        if ldap_sync_run_is_alive(run):
            continue
        if run.status == SyncStatus.QUEUED:
            code, message = (
                "never_started",
                _(
                    "Aucun worker n'a pris cette synchronisation à temps (file des tâches arrêtée ?) : abandonnée. "
                    "Rien n'a été modifié ; relancez-la."
                ),
            )
        else:
            code, message = (
                "interrupted",
                _("Synchronisation interrompue (arrêt du processus) ; rien n'a été modifié."),
            )
        reaped += run.mark_failed(message, now=now, error_code=code)
    return reaped


class ConfirmationRefused(Exception):
    """The guarded run is no longer the one to confirm (a newer run finished, or it was not guarded)."""

    message = _("Ces suppressions ne sont plus en attente : vérifiez la dernière synchronisation.")


def sync_confirm_removals(*, directory: LdapDirectory, run: LdapSyncRun, actor: User) -> LdapSyncRun:
    """An admin confirms what a guarded run would remove: a new sync runs, allowed to remove exactly those
    entries (and, past the threshold, nothing else). It applies them from a fresh listing, never the old one."""
    latest = (
        LdapSyncRun.unscoped.filter(tenant=directory.tenant, finished_at__isnull=False)
        .order_by("-finished_at", "-id")
        .first()
    )
    if latest is None or latest.pk != run.pk or run.status != SyncStatus.GUARDED:
        raise ConfirmationRefused(ConfirmationRefused.message)
    pending = run.pending_removals or {}
    keys = [item["entry_uuid"] for kind in ("org_units", "users") for item in pending.get(kind, [])]
    with transaction.atomic():
        audit_record(
            tenant=directory.tenant,
            actor=actor,
            action="ldap.sync.confirm_removals",
            target=directory.base_dn,
            details={
                "guarded_run_id": run.pk,
                "org_units": len(pending.get("org_units", [])),
                "users": len(pending.get("users", [])),
            },
        )
        return sync_request(
            directory=directory, trigger=SyncTrigger.MANUAL, actor=actor, confirmed_removals=keys
        )


class CancelRefused(Exception):
    """The run cannot be cancelled (any more); ``message`` (a msgid, with ``params``) says why."""

    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(message)
        self.message = message
        self.params = params


class SyncCancelled(Exception):
    """The run was cancelled while it read the directory: its worker stops before applying anything."""


def sync_cancel(*, run: LdapSyncRun, actor: User) -> LdapSyncRun:
    """An operator cancels a queued or running LDAP sync.

    Queued: cancelled at once; the worker that gets its message later finds it finished. Running while it reads
    the directory (it writes nothing then): cancelled at once; the worker stops before its one apply step.
    Applying: the worker holds the run's row locked from the start of that step until its outcome is written,
    so the cancel is refused at once (``NOWAIT``) with the reason: a half-applied listing is not an option.
    """
    for _attempt in range(2):
        if run.status not in LdapSyncRun.ACTIVE_STATUSES:
            raise CancelRefused(
                _("La synchronisation est terminée (%(status)s) : rien à annuler."),
                status=run.get_status_display(),
            )
        try:
            with transaction.atomic():
                locked = LdapSyncRun.unscoped.select_for_update(nowait=True).get(pk=run.pk)
                run.status = locked.status
                entry = {
                    "at": timezone.now().isoformat(),
                    "level": "warning",
                    "msgid": _("Synchronisation annulée par %(user)s : rien n'a été modifié."),
                    "params": {"user": actor.display_name},
                }
                was = run.status
                if run.cancel(log=[*locked.log, entry], error=_("Synchronisation annulée.")):
                    audit_record(
                        tenant=run.tenant,
                        actor=actor,
                        action="ldap.sync.cancel",
                        target=run.directory.base_dn,
                        details={"run_id": run.pk, "was": str(was)},
                    )
                    return run
        except OperationalError:
            raise CancelRefused(
                _(
                    "La synchronisation applique déjà ses changements à la console : elle ne peut plus être "
                    "annulée et se termine dans un instant."
                )
            ) from None
        run.refresh_from_db()
    raise CancelRefused(_("La synchronisation vient de changer d'état : réessayez."))


def sync_dispatch_due(*, now: datetime | None = None, interval_minutes: int = 60) -> list[LdapSyncRun]:
    """Beat's hourly fan-out: a run for each directory whose first manual sync succeeded and that is due."""
    now = now or timezone.now()
    runs = []
    for directory in LdapDirectory.unscoped.filter(hourly_sync_enabled=True).select_related("tenant"):
        last = LdapSyncRun.unscoped.filter(tenant=directory.tenant).order_by("-created_at").first()
        if last is not None and (now - last.created_at).total_seconds() < interval_minutes * 60 - 30:
            continue
        runs.append(sync_request(directory=directory, trigger=SyncTrigger.SCHEDULED))
    return runs


# -- running a sync -----------------------------------------------------------------------------------------------
class RunLog:
    """Lines of a run's log: a msgid and its parameters, translated when shown."""

    def __init__(self, run: LdapSyncRun) -> None:
        self.run = run
        self.dropped = 0

    def add(self, level: str, msgid: str, **params: Any) -> None:
        if len(self.run.log) >= MAX_LOG_LINES:
            self.dropped += 1
            return
        self.run.log.append(
            {"at": timezone.now().isoformat(), "level": level, "msgid": msgid, "params": params}
        )

    def info(self, msgid: str, **params: Any) -> None:
        self.add("info", msgid, **params)

    def warning(self, msgid: str, **params: Any) -> None:
        self.add("warning", msgid, **params)

    def error(self, msgid: str, **params: Any) -> None:
        self.add("error", msgid, **params)

    def close(self) -> None:
        if self.dropped:
            self.run.log.append(
                {
                    "at": timezone.now().isoformat(),
                    "level": "warning",
                    "msgid": _("… et %(count)s autres lignes non conservées."),
                    "params": {"count": self.dropped},
                }
            )


SKIP_MESSAGES = {
    "missing_id": _("Entrée ignorée, identifiant « %(attribute)s » absent ou illisible : %(dn)s"),
    "missing_attribute": _("Utilisateur ignoré, attribut « %(attribute)s » absent : %(dn)s"),
    "too_long": _("Utilisateur ignoré, « %(attribute)s » dépasse %(limit)s caractères : %(dn)s"),
    "undecodable": _("Entrée ignorée, valeur illisible (ni UTF-8 ni texte) : %(dn)s"),
    "invalid_entry": _("Entrée ignorée, impossible à importer : %(dn)s"),
    "duplicate_email": _("Utilisateur ignoré, adresse e-mail en double : %(dn)s"),
}


@dataclass
class ListedOrgUnit:
    entry_uuid: uuid.UUID
    dn: str
    name: str
    path: str


@dataclass
class ListedUser:
    entry_uuid: uuid.UUID
    dn: str
    uid: str
    email: str
    name: str
    disabled: bool = False


@dataclass
class Listing:
    """What one read of the directory found. ``complete``: the server reported the end of every listing and
    delegated nothing elsewhere; only then may rows missing from it be removed."""

    org_units: dict[uuid.UUID, ListedOrgUnit] = field(default_factory=dict)
    users: dict[uuid.UUID, ListedUser] = field(default_factory=dict)
    # Entries seen but not importable (missing attributes, duplicates): their rows are kept as they were.
    skipped: set[uuid.UUID] = field(default_factory=set)
    # The same entries by normalized DN (an entry without a readable id is matched to its row by DN), and what
    # ``ldap_sync --json`` reports: [{"dn", "reason"}].
    skipped_dns: set[str] = field(default_factory=set)
    skipped_entries: list[dict[str, str]] = field(default_factory=list)
    complete: bool = True
    # Role -> the listed users (normalized, casefolded DNs) its group grants; None when the group was unreadable.
    role_members: dict[str, set[str] | None] = field(default_factory=dict)

    def skip(
        self, dn: str, reason: str, log: RunLog | None, *, key: uuid.UUID | None = None, **params: Any
    ) -> None:
        """Skip one entry of the listing: its row (if any) stays as it was, and the log names it."""
        if key is not None:
            self.skipped.add(key)
        with contextlib.suppress(Exception):
            self.skipped_dns.add(normalize_dn(dn))
        self.skipped_entries.append({"dn": dn, "reason": reason})
        if log is not None:
            log.warning(SKIP_MESSAGES[reason], dn=dn, **params)


@dataclass
class SyncChanges:
    ous_added: list[str] = field(default_factory=list)
    ous_changed: list[tuple[str, str]] = field(default_factory=list)  # (old path, new path)
    ous_removed: list[str] = field(default_factory=list)
    users_added: list[str] = field(default_factory=list)
    users_changed: list[str] = field(default_factory=list)
    users_removed: list[str] = field(default_factory=list)


@dataclass
class SyncOutcome:
    run: LdapSyncRun
    changes: SyncChanges


def sync_lock(tenant: Tenant) -> AdvisoryLock:
    """One LDAP sync per tenant at a time (``with sync_lock(t) as acquired:``), non-blocking.

    Held for the whole run on its own connection (``mdm.locks``): the directory is read outside any
    transaction, and a worker that dies releases the lock with its session.
    """
    return AdvisoryLock(SYNC_LOCK_NAMESPACE, tenant.pk, application_name="mdm-ldap-sync-lock")


def ldap_sync_run(*, run: LdapSyncRun) -> SyncOutcome:
    """Run one queued sync to its end; the run row says how it went. Never raises for directory problems."""
    directory = run.directory
    log = RunLog(run)
    changes = SyncChanges()
    if run.is_finished:  # a redelivered task (acks_late) for a run that already ended
        return SyncOutcome(run, changes)
    with tenant_context(run.tenant), sync_lock(run.tenant) as acquired:
        if not acquired:
            log.warning(_("Une autre synchronisation de cet annuaire est en cours : celle-ci est ignorée."))
            _finish(run, log, SyncStatus.SKIPPED)
            return SyncOutcome(run, changes)
        _fail_abandoned_runs(run)
        run.refresh_from_db()
        if run.is_finished:  # the same run delivered twice: the other delivery finished it while we waited
            return SyncOutcome(run, changes)
        run.status = SyncStatus.RUNNING
        run.started_at = timezone.now()
        # Only a run still queued starts: one cancelled since we read it stays cancelled, untouched.
        if not LdapSyncRun.unscoped.filter(pk=run.pk, status=SyncStatus.QUEUED).update(
            status=run.status, started_at=run.started_at
        ):
            run.refresh_from_db()
            return SyncOutcome(run, changes)
        try:
            log.info(
                _("Lecture de l'annuaire %(uri)s à partir de %(base_dn)s."),
                uri=directory.uri,
                base_dn=directory.base_dn,
            )
            listing = directory_read(directory=directory, log=log)
            run.ous_seen, run.users_seen = len(listing.org_units), len(listing.users)
            with transaction.atomic():
                # The run's row stays locked from here until its outcome is written: a cancel that came
                # before stops the run here, before anything is written; one that comes now is refused.
                if not (
                    LdapSyncRun.unscoped.select_for_update()
                    .filter(pk=run.pk, status=SyncStatus.RUNNING)
                    .exists()
                ):
                    raise SyncCancelled
                changes, guarded = _apply_listing(run, listing, log)
                run.entries_skipped = len(listing.skipped_entries)
                run.skipped = listing.skipped_entries[:MAX_LOG_LINES]
                _count(run, changes)
                if guarded:
                    status = SyncStatus.GUARDED
                else:
                    status = SyncStatus.SUCCEEDED if listing.complete else SyncStatus.PARTIAL
                _finish(run, log, status)
        except SyncCancelled:
            _cancel_stopped(run, log)
            return SyncOutcome(run, SyncChanges())
        except LdapError as error:
            logger.warning(
                "ldap sync failed tenant=%s code=%s detail=%s", run.tenant.slug, error.code, error.detail
            )
            run.error_code, run.error = error.code, error.message
            log.error(error.message)
            if error.detail:
                log.error(_("Réponse du serveur : %(detail)s"), detail=error.detail)
            log.info(_("Aucune modification n'a été enregistrée."))
            _finish(run, log, SyncStatus.FAILED)
            return SyncOutcome(run, changes)
        except Exception:
            logger.exception("ldap sync crashed tenant=%s run=%s", run.tenant.slug, run.pk)
            run.error_code = "unexpected"
            run.error = _("Erreur interne pendant la synchronisation ; rien n'a été modifié.")
            log.error(run.error)
            _finish(run, log, SyncStatus.FAILED)
            return SyncOutcome(run, changes)
        if guarded:
            return SyncOutcome(run, changes)
        if run.trigger in (SyncTrigger.MANUAL, SyncTrigger.CLI) and not directory.hourly_sync_enabled:
            directory.hourly_sync_enabled = True
            directory.save(update_fields=["hourly_sync_enabled", "updated_at"])
    return SyncOutcome(run, changes)


def _fail_abandoned_runs(current: LdapSyncRun) -> None:
    """We hold the lock, so any other 'running' run of this tenant belongs to a worker that died."""
    LdapSyncRun.unscoped.filter(tenant=current.tenant, status=SyncStatus.RUNNING).exclude(
        pk=current.pk
    ).update(
        status=SyncStatus.FAILED,
        finished_at=timezone.now(),
        error_code="interrupted",
        error=_("Synchronisation interrompue (arrêt du processus) ; rien n'a été modifié."),
    )


def _count(run: LdapSyncRun, changes: SyncChanges) -> None:
    run.ous_added, run.ous_changed, run.ous_removed = (
        len(changes.ous_added),
        len(changes.ous_changed),
        len(changes.ous_removed),
    )
    run.users_added, run.users_changed, run.users_removed = (
        len(changes.users_added),
        len(changes.users_changed),
        len(changes.users_removed),
    )


def _finish(run: LdapSyncRun, log: RunLog, status: str) -> None:
    log.close()
    run.status = status
    run.finished_at = timezone.now()
    # A run cancelled meanwhile (while it read the directory, then failed) keeps its cancel and its log.
    values = {f.attname: getattr(run, f.attname) for f in run._meta.concrete_fields if not f.primary_key}
    if not LdapSyncRun.unscoped.filter(pk=run.pk).exclude(status=SyncStatus.CANCELLED).update(**values):
        run.refresh_from_db()
        return
    metrics.record_ldap_sync_run(run)


def _cancel_stopped(run: LdapSyncRun, log: RunLog) -> None:
    """The worker noticed the cancel before applying: its last line goes after the canceller's."""
    seen, users, worker_lines = run.ous_seen, run.users_seen, list(run.log)
    run.refresh_from_db()
    run.log = [*worker_lines, *(line for line in run.log if line not in worker_lines)]
    log.info(_("Arrêtée avant d'appliquer la liste : aucune modification enregistrée."))
    log.close()
    LdapSyncRun.unscoped.filter(pk=run.pk).update(log=run.log, ous_seen=seen, users_seen=users)
    run.ous_seen, run.users_seen = seen, users
    metrics.record_ldap_sync_run(run)


# -- reading the directory ----------------------------------------------------------------------------------------
def directory_read(*, directory: LdapDirectory, log: RunLog) -> Listing:
    """List every OU and user under the base DN into memory. Raises ``LdapError``; writes nothing.

    One bad entry (no id, an undecodable or oversized value...) is skipped and named, never fatal.
    """
    listing = Listing()
    base_rdns = dn_rdns(directory.base_dn)
    id_attribute = directory.id_attribute
    with LdapClient(directory.connection_settings()) as client:
        search = client.search(directory.base_dn, directory.ou_filter, ["ou", id_attribute])
        for entry in search:
            try:
                _read_org_unit(entry, base_rdns, listing, log, id_attribute)
            except Exception as exc:  # one entry the server sent must never abort the listing
                logger.warning("ldap entry skipped dn=%r error=%r", entry.dn, exc)
                listing.skip(entry.dn, "invalid_entry", log, key=_entry_uuid_or_none(entry, id_attribute))
        listing.complete &= _listing_complete(
            search,
            log,
            _("La liste des unités organisationnelles est incomplète : aucune suppression ne sera faite."),
        )
        log.info(_("%(count)s unités organisationnelles lues."), count=len(listing.org_units))

        attributes = [
            directory.uid_attribute,
            directory.email_attribute,
            directory.name_attribute,
            id_attribute,
        ]
        if directory.email_fallback_attribute:
            attributes.append(directory.email_fallback_attribute)
        search = client.search(directory.base_dn, directory.user_filter, attributes)
        for entry in search:
            try:
                _read_user(directory, entry, listing, log)
            except Exception as exc:
                logger.warning("ldap entry skipped dn=%r error=%r", entry.dn, exc)
                listing.skip(entry.dn, "invalid_entry", log, key=_entry_uuid_or_none(entry, id_attribute))
        listing.complete &= _listing_complete(
            search, log, _("La liste des utilisateurs est incomplète : aucune suppression ne sera faite.")
        )
        if directory.disabled_filter:
            _mark_disabled(directory, client, listing, log)
        listing.role_members = _read_role_members(client, directory, listing, log)
    _drop_duplicate_emails(listing, log)
    log.info(_("%(count)s utilisateurs lus."), count=len(listing.users))
    return listing


GROUP_ATTRIBUTES = ["member", "uniqueMember", "memberUid"]
MAX_GROUP_DEPTH = 8


def _read_role_members(
    client: LdapClient, directory: LdapDirectory, listing: Listing, log: RunLog
) -> dict[str, set[str] | None]:
    """Each role group's members among the listed users (normalized, casefolded DNs), through nested groups
    (groupOfNames, groupOfUniqueNames, posixGroup's memberUid). None: the group could not be read."""
    normalized = {key: normalize_dn(user.dn).casefold() for key, user in listing.users.items()}
    user_dns = set(normalized.values())
    by_uid = {user.uid.casefold(): normalized[key] for key, user in listing.users.items()}
    members: dict[str, set[str] | None] = {}
    for role, group_dn in role_groups(directory).items():
        found: set[str] = set()
        try:
            if not _collect_members(client, group_dn, user_dns, by_uid, found, set(), 0):
                log.warning(
                    _("Groupe de rôle introuvable : %(dn)s (les rôles ne sont pas modifiés)."), dn=group_dn
                )
                members[role] = None
                continue
        except LdapError as error:
            log.warning(
                _("Groupe de rôle illisible : %(dn)s (%(error)s) ; les rôles ne sont pas modifiés."),
                dn=group_dn,
                error=error.message,
            )
            members[role] = None
            continue
        members[role] = found
    return members


def _collect_members(
    client: LdapClient,
    group_dn: str,
    user_dns: set[str],
    by_uid: dict[str, str],
    found: set[str],
    seen: set[str],
    depth: int,
) -> bool:
    """Add the users of ``group_dn`` (and of the groups inside it) to ``found``; False if it does not exist."""
    key = normalize_dn(group_dn).casefold()
    if key in seen or depth > MAX_GROUP_DEPTH:
        return True
    seen.add(key)
    entry = client.read_entry(group_dn, GROUP_ATTRIBUTES)
    if entry is None:
        return False
    for value in entry.get("member") + [v.split("#", 1)[0] for v in entry.get("uniqueMember")]:
        try:
            member = normalize_dn(value).casefold()
        except Exception:  # a member value that is not a DN grants nothing
            logger.info("ldap group %r has a member that is not a DN: %r", group_dn, value)
            continue
        if member in user_dns:
            found.add(member)
        elif member not in seen:  # not a listed user: maybe a nested group
            _collect_members(client, value, user_dns, by_uid, found, seen, depth + 1)
    for uid in entry.get("memberUid"):
        if uid.casefold() in by_uid:
            found.add(by_uid[uid.casefold()])
    return True


def ou_path_segment(name: str) -> str:
    r"""A name as one segment of a console path: ``/`` and ``\`` escaped, so an OU named ``3e/4e`` (path
    ``/3e\/4e``) never shares the path of the OU ``3e > 4e`` (``/3e/4e``), nor links to Google's ``/3e/4e``."""
    return name.replace("\\", "\\\\").replace("/", "\\/")


def google_org_unit_path(path: str) -> str | None:
    r"""A console OU path (``ou_path_segment``'s escapes) as Google writes it: names as they are, ``/`` between
    them (``/Équipe \\ Réseau`` → ``/Équipe \ Réseau``). None when a name holds a ``/``: Google's path for it
    would be another OU's (``3e/4e`` and ``3e > 4e`` are both ``/3e/4e`` at Google), so that OU never links."""
    names: list[str] = []
    name: list[str] = []
    characters = iter(path.removeprefix("/"))
    for character in characters:
        if character == "\\":
            escaped = next(characters, "")
            if escaped == "/":
                return None
            name.append(escaped)
        elif character == "/":
            names.append("".join(name))
            name = []
        else:
            name.append(character)
    names.append("".join(name))
    return "/" + "/".join(names)


def _read_org_unit(
    entry: LdapEntry, base_rdns: list[tuple[str, str]], listing: Listing, log: RunLog, id_attribute: str
) -> None:
    relative = _relative_rdns(entry.dn, base_rdns)
    if not relative:  # the base entry itself is the root, "/"
        return
    key = _entry_uuid_or_none(entry, id_attribute)
    if key is None:
        listing.skip(entry.dn, "missing_id", log, attribute=id_attribute)
        return
    if _unstorable(entry.dn):
        listing.skip(entry.dn, "undecodable", log, key=key)
        return
    listing.org_units[key] = ListedOrgUnit(
        entry_uuid=key,
        dn=entry.dn,
        name=relative[0][1][:255],
        path="/" + "/".join(ou_path_segment(value) for _attr, value in reversed(relative)),
    )


def _listing_complete(search: Any, log: RunLog, incomplete_message: str) -> bool:
    if search.references:
        for reference in search.references[:20]:
            log.warning(
                _("Sous-arbre délégué à un autre serveur, non suivi : %(reference)s"), reference=reference
            )
        log.warning(incomplete_message)
        return False
    return bool(search.complete)


def _relative_rdns(dn: str, base_rdns: list[tuple[str, str]]) -> list[tuple[str, str]]:
    rdns = dn_rdns(dn)
    return rdns[: len(rdns) - len(base_rdns)]


def _entry_uuid_or_none(entry: LdapEntry, id_attribute: str) -> uuid.UUID | None:
    """The entry's identity (entryUUID, objectGUID read as its canonical GUID text), or None."""
    value = entry.first(id_attribute)
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def _unstorable(*values: str) -> bool:
    """Bytes that were not UTF-8 (decoded as U+FFFD) or a NUL, which PostgreSQL text cannot hold."""
    return any("\ufffd" in value or "\x00" in value for value in values)


def _mark_disabled(directory: LdapDirectory, client: LdapClient, listing: Listing, log: RunLog) -> None:
    """Users the disabled filter selects (server-side: AD's bit test, ppolicy's lock...) are imported as such."""
    id_attribute = directory.id_attribute
    search = client.search(
        directory.base_dn, f"(&{directory.user_filter}{directory.disabled_filter})", [id_attribute]
    )
    disabled = {_entry_uuid_or_none(entry, id_attribute) for entry in search}
    for key, user in listing.users.items():
        user.disabled = key in disabled
    log.info(_("%(count)s comptes désactivés."), count=sum(user.disabled for user in listing.users.values()))


def _read_user(directory: LdapDirectory, entry: LdapEntry, listing: Listing, log: RunLog) -> None:
    entry_uuid = _entry_uuid_or_none(entry, directory.id_attribute)
    if entry_uuid is None:
        listing.skip(entry.dn, "missing_id", log, attribute=directory.id_attribute)
        return
    email = (entry.first(directory.email_attribute) or "").strip().lower()
    if not email and directory.email_fallback_attribute:
        email = (entry.first(directory.email_fallback_attribute) or "").strip().lower()
    if not email:
        listing.skip(entry.dn, "missing_attribute", log, key=entry_uuid, attribute=directory.email_attribute)
        return
    uid = entry.first(directory.uid_attribute) or ""
    name = entry.first(directory.name_attribute) or dn_rdns(entry.dn)[0][1]
    if _unstorable(entry.dn, uid, email, name):
        listing.skip(entry.dn, "undecodable", log, key=entry_uuid)
        return
    # Truncating an identifier or an address would sign in or mail someone else: such entries are skipped.
    for attribute, value, limit in (
        (directory.uid_attribute, uid, 255),
        (directory.email_attribute, email, 320),
    ):
        if len(value) > limit:
            listing.skip(entry.dn, "too_long", log, key=entry_uuid, attribute=attribute, limit=limit)
            return
    listing.users[entry_uuid] = ListedUser(
        entry_uuid=entry_uuid,
        dn=entry.dn,
        uid=uid,
        email=email,
        name=name[:255],
    )


def _drop_duplicate_emails(listing: Listing, log: RunLog) -> None:
    """Two entries claiming one address: neither is trusted. Both are skipped (existing rows kept)."""
    owners: dict[str, list[ListedUser]] = defaultdict(list)
    for user in listing.users.values():
        owners[user.email].append(user)
    for email, users in owners.items():
        if len(users) < 2:
            continue
        log.warning(
            _("Adresse e-mail en double, %(count)s utilisateurs ignorés : %(email)s (%(dns)s)"),
            count=len(users),
            email=email,
            dns="; ".join(user.dn for user in users),
        )
        for user in users:
            del listing.users[user.entry_uuid]
            listing.skip(user.dn, "duplicate_email", None, key=user.entry_uuid)


# -- applying a listing -------------------------------------------------------------------------------------------
def _apply_listing(run: LdapSyncRun, listing: Listing, log: RunLog) -> tuple[SyncChanges, bool]:
    """Apply a listing in one transaction. Returns the changes and whether the removal guard stopped the run
    (then nothing at all was written: a listing that loses that much is suspect as a whole)."""
    directory = run.directory
    changes = SyncChanges()
    now = timezone.now()
    with transaction.atomic():
        if listing.complete:
            pending = _removal_guard(run, listing, log)
            if pending is not None:
                run.pending_removals = pending
                return changes, True
        org_unit_ids = _apply_org_units(directory, listing, changes, now)
        _report_assignments_at_risk(directory, changes, log)
        _apply_users(directory, listing, org_unit_ids, changes, now, log)
        _purge_expired(directory, now, log)
        _recompute_added(directory)
        _follow_renamed_logins(directory, log)
        _apply_console_access(directory, listing, log)
    if not listing.complete:
        log.warning(_("Liste incomplète : les entrées absentes ont été conservées."))
    log.info(
        _(
            "OU : %(ous_added)s ajoutées, %(ous_changed)s modifiées, %(ous_removed)s supprimées. Utilisateurs : "
            "%(users_added)s ajoutés, %(users_changed)s modifiés, %(users_removed)s supprimés."
        ),
        ous_added=len(changes.ous_added),
        ous_changed=len(changes.ous_changed),
        ous_removed=len(changes.ous_removed),
        users_added=len(changes.users_added),
        users_changed=len(changes.users_changed),
        users_removed=len(changes.users_removed),
    )
    return changes, False


def _is_unlisted(key: uuid.UUID, dn: str, listed: Any, listing: Listing) -> bool:
    """A row whose entry the listing neither returned nor skipped (by id, or by DN for an entry without id)."""
    if key in listed or key in listing.skipped:
        return False
    try:
        return normalize_dn(dn) not in listing.skipped_dns
    except Exception:
        return True


def _removal_guard(run: LdapSyncRun, listing: Listing, log: RunLog) -> dict[str, Any] | None:
    """What this listing would remove, when that is more than the directory's threshold; else None.

    Removals an admin confirmed (``run.confirmed_removals``) do not count against the threshold.
    """
    directory = run.directory
    confirmed = {str(key) for key in run.confirmed_removals or []}
    present_units = LdapOrgUnit.unscoped.filter(tenant=directory.tenant, missing_since__isnull=True)
    units = [
        {"entry_uuid": str(key), "dn": dn, "path": path}
        for key, dn, path in present_units.values_list("entry_uuid", "dn", "path")
        if _is_unlisted(key, dn, listing.org_units, listing)
    ]
    present_users = LdapUser.unscoped.filter(tenant=directory.tenant, missing_since__isnull=True)
    users = [
        {"entry_uuid": str(key), "dn": dn, "email": email}
        for key, dn, email in present_users.values_list("entry_uuid", "dn", "email")
        if _is_unlisted(key, dn, listing.users, listing)
    ]

    def too_many(gone: list[dict[str, str]], present: int) -> bool:
        unconfirmed = sum(1 for item in gone if item["entry_uuid"] not in confirmed)
        return (
            unconfirmed >= directory.removal_guard_minimum
            and unconfirmed * 100 > present * directory.removal_guard_percent
        )

    if not (too_many(units, present_units.count()) or too_many(users, present_users.count())):
        if confirmed:
            log.info(_("Suppressions confirmées par un administrateur."))
        return None
    log.warning(
        _(
            "Cette synchronisation supprimerait %(ous)s OU sur %(ous_present)s et %(users)s utilisateurs sur "
            "%(users_present)s (seuil : %(percent)s %%) : elle est arrêtée et rien n'a été modifié. Vérifiez "
            "le DN de base, les filtres et les droits du compte de liaison, puis synchronisez à nouveau, ou "
            "confirmez ces suppressions."
        ),
        ous=len(units),
        ous_present=present_units.count(),
        users=len(users),
        users_present=present_users.count(),
        percent=directory.removal_guard_percent,
    )
    units.sort(key=lambda item: item["path"])
    users.sort(key=lambda item: item["email"])
    return {"org_units": units, "users": users}


def _apply_org_units(
    directory: LdapDirectory, listing: Listing, changes: SyncChanges, now: datetime
) -> dict[str, int]:
    """Upsert OUs by entryUUID, link parents, mark the missing. Returns normalized DN -> row id.

    An OU that leaves the listing keeps its row (``missing_since``) for the grace period: if it comes back,
    the admin's choice, the Google OUs linked to it and their assignments are still there.
    """
    existing = {unit.entry_uuid: unit for unit in LdapOrgUnit.unscoped.filter(tenant=directory.tenant)}
    if listing.complete:
        gone = [
            unit
            for key, unit in existing.items()
            if unit.missing_since is None and _is_unlisted(key, unit.dn, listing.org_units, listing)
        ]
        changes.ous_removed = sorted(unit.path for unit in gone)
        LdapOrgUnit.unscoped.filter(pk__in=[unit.pk for unit in gone]).update(
            missing_since=now, added=False, parent=None, updated_at=now
        )

    new_units = []
    for key, listed in listing.org_units.items():
        unit = existing.get(key)
        if unit is None:
            new_units.append(
                LdapOrgUnit(
                    tenant=directory.tenant,
                    directory=directory,
                    entry_uuid=key,
                    dn=listed.dn,
                    name=listed.name,
                    path=listed.path,
                    added=directory.ou_selection == OuSelection.ALL,
                    updated_at=now,
                )
            )
            changes.ous_added.append(listed.path)
    created = LdapOrgUnit.unscoped.bulk_create(new_units, batch_size=BULK_BATCH)
    units = {unit.entry_uuid: unit for unit in created}
    units.update({key: unit for key, unit in existing.items() if key in listing.org_units})

    ids_by_dn = {normalize_dn(listing.org_units[key].dn): unit.pk for key, unit in units.items()}
    # OUs kept without being listed (skipped, or listing incomplete) still hold sub-units and users.
    for key, unit in existing.items():
        kept = key not in listing.org_units and unit.missing_since is None
        if kept and (not listing.complete or not _is_unlisted(key, unit.dn, listing.org_units, listing)):
            ids_by_dn.setdefault(normalize_dn(unit.dn), unit.pk)
    base_depth = len(dn_rdns(directory.base_dn))
    to_update, to_link = [], []
    for key, unit in units.items():
        listed = listing.org_units[key]
        parent_id = _nearest_ancestor_id(listed.dn, ids_by_dn, base_depth)
        if key not in existing:  # just created: only its parent (known once every OU has an id) is missing
            if parent_id is not None:
                unit.parent_id = parent_id
                to_link.append(unit)
            continue
        if unit.missing_since is not None:  # back within the grace period: same row, same links
            changes.ous_added.append(listed.path)
        elif (unit.dn, unit.name, unit.path, unit.parent_id) != (
            listed.dn,
            listed.name,
            listed.path,
            parent_id,
        ):
            changes.ous_changed.append((unit.path, listed.path))
        else:
            continue
        unit.dn, unit.name, unit.path, unit.parent_id, unit.updated_at = (
            listed.dn,
            listed.name,
            listed.path,
            parent_id,
            now,
        )
        unit.missing_since = None
        to_update.append(unit)
    LdapOrgUnit.unscoped.bulk_update(
        to_update, ["dn", "name", "path", "parent", "updated_at", "missing_since"], batch_size=BULK_BATCH
    )
    # One column, not six: Django builds a CASE per row and column, which dominated a first import's time.
    LdapOrgUnit.unscoped.bulk_update(to_link, ["parent"], batch_size=BULK_BATCH)
    return ids_by_dn


def _nearest_ancestor_id(dn: str, ids_by_dn: dict[str, int], base_depth: int) -> int | None:
    import ldap.dn

    rdns = ldap.dn.str2dn(dn)
    for start in range(1, len(rdns) - base_depth):
        ancestor = normalize_dn(ldap.dn.dn2str(rdns[start:]))
        if ancestor in ids_by_dn:
            return ids_by_dn[ancestor]
    return None


def _apply_users(
    directory: LdapDirectory,
    listing: Listing,
    org_unit_ids: dict[str, int],
    changes: SyncChanges,
    now: datetime,
    log: RunLog,
) -> None:
    existing = {user.entry_uuid: user for user in LdapUser.unscoped.filter(tenant=directory.tenant)}
    # Rows kept as they are (skipped entries, or everything unlisted when the listing is incomplete) keep their
    # address: a listed user claiming it is a duplicate too.
    kept = {
        user.email: key
        for key, user in existing.items()
        if user.missing_since is None
        and key not in listing.users
        and (not listing.complete or not _is_unlisted(key, user.dn, listing.users, listing))
    }
    for key, listed in list(listing.users.items()):
        if listed.email in kept and kept[listed.email] != key:
            log.warning(
                _("Adresse e-mail en double, utilisateur ignoré : %(email)s (%(dn)s)"),
                email=listed.email,
                dn=listed.dn,
            )
            del listing.users[key]
            listing.skip(listed.dn, "duplicate_email", None, key=key)

    base_depth = len(dn_rdns(directory.base_dn))
    gone_ids = []
    if listing.complete:
        gone = [
            user
            for key, user in existing.items()
            if user.missing_since is None and _is_unlisted(key, user.dn, listing.users, listing)
        ]
        changes.users_removed = sorted(user.email for user in gone)
        gone_ids = [user.pk for user in gone]
        LdapUser.unscoped.filter(pk__in=gone_ids).update(missing_since=now, updated_at=now)
    # A row kept for its grace period gives up its address to the entry that now holds it (an account deleted
    # and re-created in the directory gets a new entryUUID but keeps its address).
    claimed = {listed.email: key for key, listed in listing.users.items()}
    superseded = [
        user.pk
        for key, user in existing.items()
        if key not in listing.users
        and (user.missing_since is not None or user.pk in gone_ids)
        and claimed.get(user.email, key) != key
    ]
    LdapUser.unscoped.filter(pk__in=superseded).delete()
    new_users, to_update = [], []
    for key, listed in listing.users.items():
        org_unit_id = _nearest_ancestor_id(listed.dn, org_unit_ids, base_depth)
        values = (listed.dn, listed.uid, listed.email, listed.name, org_unit_id, listed.disabled)
        user = existing.get(key)
        if user is None:
            new_users.append(
                LdapUser(
                    tenant=directory.tenant,
                    directory=directory,
                    entry_uuid=key,
                    dn=listed.dn,
                    uid=listed.uid,
                    email=listed.email,
                    name=listed.name,
                    disabled=listed.disabled,
                    org_unit_id=org_unit_id,
                    updated_at=now,
                )
            )
            changes.users_added.append(listed.email)
        elif (
            user.missing_since is not None
            or (
                user.dn,
                user.uid,
                user.email,
                user.name,
                user.org_unit_id,
                user.disabled,
            )
            != values
        ):
            if user.missing_since is not None:
                changes.users_added.append(listed.email)
            else:
                changes.users_changed.append(listed.email)
            user.dn, user.uid, user.email, user.name, user.org_unit_id, user.disabled = values
            user.missing_since = None
            user.updated_at = now
            to_update.append(user)
    # The email constraint is deferred: two users swapping addresses is valid once the transaction ends.
    LdapUser.unscoped.bulk_update(
        to_update,
        ["dn", "uid", "email", "name", "org_unit", "disabled", "updated_at", "missing_since"],
        batch_size=BULK_BATCH,
    )
    LdapUser.unscoped.bulk_create(new_users, batch_size=BULK_BATCH)


# Why an LDAP OU stops backing the Google OU of its path, as the run log and the audit trail say it.
AT_RISK_MESSAGES = {
    "deleted": _(
        "L'unité LDAP %(ldap_path)s a disparu de l'annuaire : l'unité Google %(google_path)s porte "
        "%(assignments)s affectation(s) (configurations ou applis), toujours appliquées chez Google. Recréez "
        "l'unité, ou réaffectez ou retirez ses affectations depuis Affectations ChromeOS."
    ),
    "renamed": _(
        "L'unité LDAP %(google_path)s a été renommée en %(ldap_path)s : l'unité Google %(google_path)s porte "
        "%(assignments)s affectation(s) et ne sera plus prise en charge à la prochaine synchronisation Google. "
        "Réaffectez-les depuis Affectations ChromeOS."
    ),
    "purged": _(
        "L'unité LDAP %(ldap_path)s est supprimée définitivement : l'unité Google %(google_path)s perd son lien "
        "avec l'annuaire et porte %(assignments)s affectation(s), toujours appliquées chez Google. Réaffectez ou "
        "retirez-les depuis Affectations ChromeOS."
    ),
}


def _assignments_at_risk(
    directory: LdapDirectory, units: Any, reason: str, log: RunLog, *, renamed: bool = False
) -> None:
    """Say, in the run log and the audit trail, which Google OUs carrying Blueprint or app assignments lose the
    LDAP OU that made them supported (the link drops with the row, or the paths part): never silently."""
    rows = (
        units.filter(google_org_units__policy_assignments__isnull=False)
        .values("path", "google_org_units__path")
        .annotate(assignments=Count("google_org_units__policy_assignments"))
        .order_by("path")
    )
    for row in rows:
        google_path = row["google_org_units__path"]
        if renamed and google_path == row["path"]:
            continue  # the Google OU already follows the new path
        params = {"ldap_path": row["path"], "google_path": google_path, "assignments": row["assignments"]}
        log.warning(AT_RISK_MESSAGES[reason], **params)
        audit_record(
            tenant=directory.tenant,
            actor=None,
            action="ldap.org_unit.assignments_at_risk",
            target=google_path,
            details={"reason": reason, **params},
        )


def _report_assignments_at_risk(directory: LdapDirectory, changes: SyncChanges, log: RunLog) -> None:
    units = LdapOrgUnit.unscoped.filter(tenant=directory.tenant)
    if changes.ous_removed:
        _assignments_at_risk(
            directory, units.filter(path__in=changes.ous_removed, missing_since__isnull=False), "deleted", log
        )
    moved = [new for old, new in changes.ous_changed if old != new]
    if moved:
        _assignments_at_risk(directory, units.filter(path__in=moved), "renamed", log, renamed=True)


def _purge_expired(directory: LdapDirectory, now: datetime, log: RunLog) -> None:
    """Rows missing from the directory for longer than the grace period are deleted for good."""
    limit = now - timedelta(days=directory.missing_grace_days)
    users, _detail = LdapUser.unscoped.filter(tenant=directory.tenant, missing_since__lt=limit).delete()
    expired = LdapOrgUnit.unscoped.filter(tenant=directory.tenant, missing_since__lt=limit)
    _assignments_at_risk(directory, expired, "purged", log)
    units, _detail = expired.delete()
    if users or units:
        log.info(
            _(
                "Délai de conservation écoulé : %(ous)s OU et %(users)s utilisateurs supprimés définitivement."
            ),
            ous=units,
            users=users,
        )


# -- console access follows the directory ---------------------------------------------------------------------
def _directory_role(dn: str, role_members: dict[str, set[str] | None]) -> str | None:
    key = normalize_dn(dn).casefold()
    for role in ROLE_ORDER:
        members = role_members.get(role)
        if members is not None and key in members:
            return role
    return None


def _follow_renamed_logins(directory: LdapDirectory, log: RunLog) -> None:
    """Console accounts are keyed to the directory id: an entry whose login (uid) changed keeps its account, renamed
    ``<tenant>:<new uid>``. Accounts not linked yet are linked by their current name."""
    tenant = directory.tenant
    prefix = f"{tenant.slug}:"
    entries = list(
        LdapUser.unscoped.filter(tenant=tenant, missing_since__isnull=True)
        .exclude(uid="")
        .select_related("console_user")
    )
    linked = {entry.console_user_id for entry in entries if entry.console_user_id}
    accounts = {
        account.username: account
        for account in User.objects.filter(tenant=tenant, username__startswith=prefix).exclude(pk__in=linked)
    }
    for entry in entries:
        wanted = f"{prefix}{entry.uid.lower()}"[:150]
        account = entry.console_user
        if account is None:
            unlinked = accounts.pop(wanted, None)
            if unlinked is not None:
                # A row kept for its grace period may still hold it: the listed entry of that name takes it.
                LdapUser.unscoped.filter(console_user=unlinked).update(console_user=None)
                entry.console_user = unlinked
                entry.save(update_fields=["console_user"])
            continue
        if account.username != wanted and not User.objects.filter(username=wanted).exists():
            log.info(
                _("Identifiant renommé dans l'annuaire : %(old)s → %(new)s."),
                old=account.username,
                new=wanted,
            )
            account.username = wanted
            account.save(update_fields=["username"])


def _apply_console_access(directory: LdapDirectory, listing: Listing, log: RunLog) -> None:
    """Console accounts of directory users follow this listing: an entry deleted (or gone from the listing),
    disabled, or in no role group is deactivated; a changed group changes the role. Open sessions end at their
    next request (the session's user is re-read then). Roles are left alone when a role group is unreadable."""
    tenant = directory.tenant
    prefix = f"{tenant.slug}:"
    accounts = list(User.objects.filter(tenant=tenant, username__startswith=prefix))
    if not accounts:
        return
    entries = list(
        LdapUser.unscoped.filter(tenant=tenant, missing_since__isnull=True).only(
            "uid", "dn", "disabled", "console_user_id"
        )
    )
    # An account follows the entry it is linked to (the directory id); unlinked ones, the entry of their name.
    by_account = {entry.console_user_id: entry for entry in entries if entry.console_user_id}
    by_uid = {(entry.uid or "").lower(): entry for entry in entries}
    roles_known = bool(listing.role_members) and all(
        members is not None for members in listing.role_members.values()
    )
    revoked = set(DirectoryRevocation.unscoped.filter(tenant=tenant).values_list("user_id", flat=True))
    for account in accounts:
        entry = by_account.get(account.pk) or by_uid.get(account.username[len(prefix) :])
        if entry is None:
            if listing.complete:
                _revoke(account, "deleted", log, revoked)
            continue
        if entry.disabled:
            _revoke(account, "disabled", log, revoked)
            continue
        if not roles_known:
            continue
        role = _directory_role(entry.dn, listing.role_members)
        if role is None:
            _revoke(account, "no_role", log, revoked)
            continue
        if account.pk in revoked:  # the directory grants access again
            DirectoryRevocation.unscoped.filter(user=account).delete()
            account.is_active = True
            log.info(_("Accès rétabli par l'annuaire : %(user)s."), user=account.username)
        if account.role != role:
            log.info(
                _("Rôle modifié par l'annuaire : %(user)s, %(old)s → %(new)s."),
                user=account.username,
                old=account.role,
                new=role,
            )
            audit_record(
                tenant=tenant,
                actor=None,
                action="ldap.account.role",
                target=account.username,
                details={"from": account.role, "to": role},
            )
            account.role = role
        account.save(update_fields=["is_active", "role"])


def _revoke(account: User, reason: str, log: RunLog, revoked: set[int]) -> None:
    if account.pk in revoked or not account.is_active:
        return
    account.is_active = False
    account.save(update_fields=["is_active"])
    DirectoryRevocation.unscoped.create(tenant=account.tenant, user=account, reason=reason)
    audit_record(
        tenant=account.tenant,
        actor=None,
        action="ldap.account.revoke",
        target=account.username,
        details={"reason": reason},
    )
    log.warning(
        _("Accès retiré par l'annuaire (%(reason)s) : %(user)s ; ses sessions sont fermées."),
        reason=reason,
        user=account.username,
    )
