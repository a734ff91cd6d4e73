"""The ChromeOS sync: a tenant's Google OUs and ChromeOS devices, brought into the console.

A run (``devices_sync``), in order:

1. **Lock.** A per-tenant advisory lock (``SyncLock``, an ``mdm.locks.AdvisoryLock``) on a dedicated
   connection that lives exactly as long as the run. If the process dies, the lock dies with its connection,
   so "RUNNING but nobody holds the lock" always means "dead": that is how stale runs are recognised
   (``sync_run_is_alive``), without guessing from clocks.
   The loser of the lock race does nothing and says so in its run's log.
2. **OUs.** ``orgunits.list`` (every OU, the root included), matched by path to the tenant's LDAP OUs.
3. **Devices.** ``countChromeOsDevices``, then every page of ``chromeosdevices.list`` (projection FULL, the
   largest page size the API takes), each page streamed with ``COPY`` into a TEMP staging table (not
   WAL-logged, private to the run's connection). New or changed devices (their etag differs from the stored
   row, one indexed look-up per page) carry their columns and payload; unchanged ones carry only their id, so
   a no-change re-sync writes almost nothing. No transaction is open while Google is being paged.
4. **Merge.** Google's count again, then ONE short transaction: lock the integration row (a removal that
   won the race leaves nothing to write into), upsert OUs, record ``DeviceChange`` rows, upsert new and
   changed devices with one ``INSERT ... ON CONFLICT (tenant_id, device_id) DO UPDATE ... WHERE etag IS
   DISTINCT FROM``, then mark removed the devices absent from the listing — only if every page was fetched
   and the listing adds up (distinct devices listed = Google's count before = Google's count after), and
   only if that removes at most ``deletion_guard_percent`` of the tenant's devices (else the run is GUARDED
   and an admin confirms: ``sync_confirm_removals``). The run's final state commits in that transaction.

Any failure before the merge leaves the stored devices exactly as they were.

Settings: ``CHROMEOS_SYNC_INTERVAL_SECONDS`` (3600), ``CHROMEOS_SYNC_PAGE_SIZE`` (300, the discovery
document's maximum; a 400 on it falls back to Google's default of 100), ``CHROMEOS_SYNC_QUEUED_TIMEOUT_SECONDS``
(1800: a queued run never picked up is given up), ``CHROMEOS_SYNC_PROGRESS_SECONDS`` (0.25: how often progress
is written to the run row).
"""

# SQL below is composed only from model metadata, column-name constants and the run's integer id; every value
# is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import contextlib
import json
import logging
import math
import queue
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from chromeos.google.client import GoogleClient
from chromeos.google.errors import AuthRevoked, GoogleBadRequest, GoogleError
from chromeos.models import (
    AssignmentState,
    ChromeOSDevice,
    GoogleIntegration,
    IntegrationStatus,
    OrgUnit,
    PolicyAssignment,
    SyncRun,
    SyncStatus,
    SyncTrigger,
)
from chromeos.services.integration import integration_google_refused
from ldap_sync.models import LdapOrgUnit
from ldap_sync.services import google_org_unit_path
from mdm import jobs
from mdm.locks import AdvisoryLock, advisory_lock_held
from mdm.services import audit_record
from ops import metrics
from ops.logs import log_context

if TYPE_CHECKING:
    from mdm.models import User

logger = logging.getLogger(__name__)

# First key of the two-int advisory lock ("CROS"); the second is the tenant id.
LOCK_NAMESPACE = 0x43524F53
ACTIVE_STATUSES = (SyncStatus.QUEUED, SyncStatus.RUNNING)
FINISHED_STATUSES = (
    SyncStatus.SUCCEEDED,
    SyncStatus.PARTIAL,
    SyncStatus.GUARDED,
    SyncStatus.FAILED,
    SyncStatus.SKIPPED,
)
# Runs whose data is in: these move last_sync_at and the schedule.
COMPLETED_STATUSES = (SyncStatus.SUCCEEDED, SyncStatus.PARTIAL, SyncStatus.GUARDED)
MAX_LOG_LINES = 200
REDELIVERY_LOCK_WAIT = 10.0
FALLBACK_PAGE_SIZE = 100  # Google's documented default for chromeosdevices.list

# Log lines are stored as French message ids plus parameters and translated when shown (see selectors).
MSG = {
    "ou_recreated": gettext_noop(
        "Unité organisationnelle %(path)s recréée dans Google (identifiant %(old)s → %(new)s) : reconnue par "
        "son chemin, ses %(count)s affectation(s) sont conservées, à appliquer de nouveau."
    ),
    "ou_recreated_assignment": gettext_noop(
        "L'unité organisationnelle a été recréée dans Google : rien de cette affectation n'y est appliqué, "
        "appliquez-la de nouveau."
    ),
    "ou_missing": gettext_noop(
        "Unité organisationnelle %(path)s disparue de Google : ses affectations (%(assignments)s) sont "
        "conservées comme « OU disparue » jusqu'à ce qu'un administrateur les libère."
    ),
    "started": gettext_noop("Synchronisation démarrée (%(trigger)s)."),
    "lock_busy": gettext_noop("Une autre synchronisation de ce locataire est en cours : rien à faire."),
    "not_active": gettext_noop("Intégration non active (%(status)s) : synchronisation ignorée."),
    "reaped": gettext_noop(
        "Synchronisation n° %(number)s interrompue (processus arrêté) : marquée en échec."
    ),
    "resumed": gettext_noop("Reprise de la synchronisation n° %(number)s, interrompue."),
    "org_units": gettext_noop(
        "%(count)s unités organisationnelles lues, %(supported)s prises en charge (LDAP)."
    ),
    "expected": gettext_noop("Google annonce %(count)s périphériques."),
    "page_size_fallback": gettext_noop("Taille de page %(size)s refusée par Google : pages de %(fallback)s."),
    "listed": gettext_noop("%(devices)s périphériques lus en %(pages)s pages (%(seconds)s s)."),
    "quota_waits": gettext_noop(
        "Quota Google : %(count)s appels ont attendu leur tour, %(seconds)s s en tout (limites partagées par "
        "tous les tenants)."
    ),
    "skipped_devices": gettext_noop("%(count)s périphériques sans identifiant ignorés."),
    "incomplete": gettext_noop(
        "La liste ne correspond pas au décompte de Google (lus %(listed)s, avant %(before)s, après %(after)s) : "
        "aucun périphérique marqué retiré cette fois."
    ),
    "merged": gettext_noop(
        "%(added)s ajoutés, %(updated)s modifiés, %(unchanged)s inchangés, %(removed)s retirés."
    ),
    "guarded": gettext_noop(
        "%(count)s périphériques absents de Google (%(percent)s %% du parc, seuil %(threshold)s %%) : "
        "retraits suspendus jusqu'à confirmation."
    ),
    "confirmed": gettext_noop("Retraits confirmés par un administrateur : jusqu'à %(allowance)s autorisés."),
    "google_retry": gettext_noop("Google ralentit : nouvelle tentative dans %(seconds)s s."),
    "held": gettext_noop(
        "%(count)s périphériques absents de Google : retraits suspendus depuis le %(since)s, en attente de la "
        "confirmation d'un administrateur (aucune synchronisation ne les applique d'ici là)."
    ),
    "held_released": gettext_noop(
        "Plus aucun retrait en attente de confirmation (%(removed)s retirés) : la garde est levée."
    ),
    "integration_gone": gettext_noop(
        "L'intégration a été supprimée ou suspendue pendant la synchronisation."
    ),
    "auth_revoked": gettext_noop(
        "Google a refusé l'autorisation (%(reason)s) : réautorisation requise, synchronisation horaire suspendue."
    ),
    "google_error": gettext_noop("Erreur Google : %(error)s"),
    "database_error": gettext_noop("Erreur de base de données : %(error)s"),
    "internal_error": gettext_noop("Erreur interne : %(error)s"),
    "finished": gettext_noop("Terminée en %(seconds)s s."),
    "enqueue_failed": gettext_noop("La file des tâches est indisponible : synchronisation non lancée."),
    "never_started": gettext_noop("Jamais démarrée (tâche perdue) : abandonnée."),
}


class SyncNotAllowed(Exception):
    """A sync cannot be requested now; ``message`` says why, for the page."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SyncAborted(Exception):
    """Stop the run: ``key`` is a ``MSG`` key, logged as the run's error."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(MSG[key] % params)
        self.key = key
        self.params = params


# -- settings --------------------------------------------------------------------------------------------------
def sync_interval() -> int:
    return int(getattr(settings, "CHROMEOS_SYNC_INTERVAL_SECONDS", 3600))


def _page_size() -> int:
    return int(getattr(settings, "CHROMEOS_SYNC_PAGE_SIZE", 300))


def _queued_timeout() -> timedelta:
    return timedelta(seconds=int(getattr(settings, "CHROMEOS_SYNC_QUEUED_TIMEOUT_SECONDS", 1800)))


def _progress_seconds() -> float:
    return float(getattr(settings, "CHROMEOS_SYNC_PROGRESS_SECONDS", 0.25))


# -- the per-tenant lock ---------------------------------------------------------------------------------------
class SyncLock(AdvisoryLock):
    """The per-tenant sync lock, held on its own connection for the whole run (see ``mdm.locks``)."""

    def __init__(self, tenant_id: int) -> None:
        super().__init__(LOCK_NAMESPACE, tenant_id, application_name="mdm-sync-lock")
        self.tenant_id = tenant_id


def sync_lock_held(tenant_id: int) -> bool:
    """Does any session hold this tenant's sync lock right now?"""
    return advisory_lock_held(LOCK_NAMESPACE, tenant_id)


def sync_run_is_alive(run: SyncRun) -> bool:
    """A RUNNING run is alive iff its tenant's lock is held: the lock is taken before RUNNING is written and
    released after the final status is committed, and dies with the process."""
    if run.status == SyncStatus.QUEUED:
        # Waiting for the broker to come back is not lost: the outbox publishes it then.
        return timezone.now() - run.created_at < _queued_timeout() or jobs.publication_pending(
            SYNC_KIND, run.pk
        )
    if run.status == SyncStatus.RUNNING:
        return sync_lock_held(run.tenant_id)
    return False


# -- run bookkeeping -------------------------------------------------------------------------------------------
def _log_entry(level: str, key: str, **params: Any) -> dict[str, Any]:
    return {"at": timezone.now().isoformat(), "level": level, "msg": MSG[key], "params": params}


def _log(run: SyncRun, level: str, key: str, **params: Any) -> None:
    run.log = [*run.log, _log_entry(level, key, **params)][-MAX_LOG_LINES:]
    SyncRun.unscoped.filter(pk=run.pk).update(log=run.log)
    getattr(logger, "warning" if level == "warning" else "error" if level == "error" else "info")(
        "sync tenant=%s run=%s %s", run.tenant_id, run.pk, MSG[key] % params
    )


def _fail(run: SyncRun, key: str, **params: Any) -> None:
    run.status = SyncStatus.FAILED
    run.error = MSG[key] % params
    run.finished_at = timezone.now()
    run.log = [*run.log, _log_entry("error", key, **params)][-MAX_LOG_LINES:]
    SyncRun.unscoped.filter(pk=run.pk).update(
        status=run.status, error=run.error, finished_at=run.finished_at, log=run.log
    )
    logger.warning("sync tenant=%s run=%s failed: %s", run.tenant_id, run.pk, run.error)


def _reap_dead_runs(integration: GoogleIntegration, *, except_pk: int | None = None) -> list[SyncRun]:
    """Mark failed the RUNNING runs of a tenant whose lock we now hold: their process is gone."""
    dead = list(
        SyncRun.unscoped.filter(integration=integration, status=SyncStatus.RUNNING).exclude(pk=except_pk)
    )
    for run in dead:
        _fail(run, "reaped", number=run.pk)
    return dead


# -- requesting a sync -----------------------------------------------------------------------------------------
def sync_active_run(integration: GoogleIntegration) -> SyncRun | None:
    """The tenant's queued or running sync, if one is really alive; dead ones are marked failed on the way."""
    for run in SyncRun.unscoped.filter(integration=integration, status__in=ACTIVE_STATUSES).order_by("-pk"):
        if sync_run_is_alive(run):
            return run
        _fail(run, "never_started" if run.status == SyncStatus.QUEUED else "reaped", number=run.pk)
    return None


def sync_request(
    *,
    integration: GoogleIntegration,
    trigger: str,
    user: User | None = None,
    removal_allowance: int | None = None,
    enqueue: bool = True,
) -> tuple[SyncRun, bool]:
    """Create a queued run and enqueue it on commit; or return the run already under way (``created`` False).

    Raises ``SyncNotAllowed`` when the integration cannot sync (re-authorization required, being removed).
    """
    with transaction.atomic():
        # The integration row lock serialises two clicks: the second sees the first one's run.
        locked = GoogleIntegration.unscoped.select_for_update().filter(pk=integration.pk).first()
        if locked is None:
            raise SyncNotAllowed(str(_("L'intégration Google n'existe plus.")))
        active = sync_active_run(locked)
        if active is not None:
            return active, False
        if locked.status != IntegrationStatus.ACTIVE:
            raise SyncNotAllowed(
                str(_("Synchronisation impossible : %(status)s.") % {"status": locked.get_status_display()})
            )
        run = SyncRun.unscoped.create(
            tenant_id=locked.tenant_id,
            integration=locked,
            trigger=trigger,
            requested_by=user,
            removal_allowance=removal_allowance,
        )
        if trigger == SyncTrigger.MANUAL:
            audit_record(
                tenant=locked.tenant,
                actor=user,
                action="chromeos.sync.request",
                target=locked.domain,
                details={"sync_run_id": run.pk, "removal_allowance": removal_allowance},
            )
        if enqueue:
            _enqueue(run.pk)
    return run, True


SYNC_TASK = "chromeos.tasks.devices_sync_task"
SYNC_KIND = "chromeos.syncrun"


def _enqueue(run_id: int) -> None:
    """Inside the transaction that wrote the run: through the outbox (mdm/jobs.py), so that a broker that is
    down delays the run (it stays queued, the page says so) instead of losing it or answering 500."""
    jobs.enqueue(SYNC_TASK, run_id, kind=SYNC_KIND, object_id=run_id)


def sync_runs_reap(now: datetime) -> int:
    """The reaper of ChromeOS syncs (registered in ``mdm.jobs``): see :func:`_reap_lost_runs`."""
    return _reap_lost_runs()


def sync_confirm_removals(*, integration: GoogleIntegration, run_id: int, user: User) -> tuple[SyncRun, bool]:
    """An admin confirms the removals a guarded run held back: a new sync runs, allowed to remove that many.

    The removals are applied on the strength of a fresh, complete listing, never of the old one.
    """
    latest = SyncRun.unscoped.filter(integration=integration).exclude(status__in=ACTIVE_STATUSES).first()
    if latest is None or latest.pk != run_id or latest.status != SyncStatus.GUARDED:
        raise SyncNotAllowed(
            str(
                _(
                    "Ces retraits ne sont plus en attente : la situation a changé, vérifiez la dernière synchronisation."
                )
            )
        )
    audit_record(
        tenant=integration.tenant,
        actor=user,
        action="chromeos.sync.confirm_removals",
        target=integration.domain,
        details={"guarded_run_id": latest.pk, "pending_removals": latest.pending_removals},
    )
    return sync_request(
        integration=integration,
        trigger=SyncTrigger.MANUAL,
        user=user,
        removal_allowance=latest.pending_removals,
    )


# -- the schedule ----------------------------------------------------------------------------------------------
def sync_offset_for(tenant_id: int, interval: int | None = None) -> int:
    """A tenant's fixed second in the hour: a hash spreads tenants evenly without any coordination."""
    return zlib.crc32(f"chromeos-sync:{tenant_id}".encode()) % (interval or 3600)


def next_slot(offset: int, after: datetime, interval: int | None = None) -> datetime:
    """The first time strictly after ``after`` that falls on this tenant's offset in the cycle."""
    interval = interval or sync_interval()
    offset %= interval
    k = math.floor((after.timestamp() - offset) / interval) + 1
    return datetime.fromtimestamp(k * interval + offset, UTC)


def sync_dispatch(now: datetime | None = None, *, enqueue: bool = True) -> list[SyncRun]:
    """Beat's tick: a scheduled run for each tenant that is due. Safe to run twice at once (two beats).

    Due rows are locked with SKIP LOCKED and moved to their next slot in the same transaction, so a second
    dispatcher either skips them (locked) or sees them not due any more (committed): each dispatched once.
    """
    now = now or timezone.now()
    interval = sync_interval()
    created: list[SyncRun] = []
    _reap_lost_runs()
    with transaction.atomic():
        due = list(
            GoogleIntegration.unscoped.select_for_update(skip_locked=True, of=("self",))
            .select_related("tenant")
            .filter(status=IntegrationStatus.ACTIVE, first_sync_at__isnull=False)
            .filter(next_sync_at__lte=now)
            .order_by("next_sync_at")[:500]
        )
        for integration in due:
            integration.next_sync_at = next_slot(integration.sync_offset_seconds, now, interval)
            integration.save(update_fields=["next_sync_at", "updated_at"])
            if sync_active_run(integration) is not None:
                continue  # the running one is this hour's sync
            run = SyncRun.unscoped.create(
                tenant_id=integration.tenant_id, integration=integration, trigger=SyncTrigger.SCHEDULED
            )
            created.append(run)
            if enqueue:
                _enqueue(run.pk)
    if created:
        logger.info("sync dispatch: %d scheduled runs", len(created))
    return created


def _reap_lost_runs() -> int:
    """Runs left RUNNING by a killed worker, or QUEUED by a lost message, are marked failed."""
    reaped = 0
    for run in SyncRun.unscoped.filter(status__in=ACTIVE_STATUSES).select_related("integration"):
        if not sync_run_is_alive(run):
            _fail(run, "never_started" if run.status == SyncStatus.QUEUED else "reaped", number=run.pk)
            reaped += 1
    return reaped


# -- reading Google --------------------------------------------------------------------------------------------
@dataclass
class Listing:
    pages: int = 0
    devices: int = 0
    skipped: int = 0
    fresh: int = 0
    progress_written: float = 0.0


class _DeferredClient(GoogleClient):
    """The client of the fetch thread, which must not touch the database (its writes would go through another
    connection, outside the run's): refreshed tokens are saved by the run's thread (``save_tokens``) and a
    refused grant is handled there (``devices_sync``)."""

    def persist_tokens(self) -> None:
        return

    def save_tokens(self) -> None:
        GoogleClient.persist_tokens(self)


_DONE = object()


class PageFetcher:
    """Pages Google in a background thread, one or two pages ahead of the run's thread, which stages them.

    Parsing Google's JSON (the fetch) and waiting on PostgreSQL (the COPY) then overlap; the bounded queue keeps
    memory flat whatever the number of devices. Errors in the thread are raised in the run's thread.
    """

    def __init__(
        self,
        integration: GoogleIntegration,
        *,
        depth: int = 2,
        on_retry: Callable[[float], None] | None = None,
    ) -> None:
        self.client = _DeferredClient(integration, sleep=self._backoff)
        self.integration = integration
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._fallbacks: list[tuple[int, int]] = []
        # Google's backoffs in the fetch thread, told to the run's thread (which alone writes the run's log)
        # while it waits for the next page: the progress stops, the log says why.
        self._retries: queue.SimpleQueue[float] = queue.SimpleQueue()
        self._on_retry = on_retry
        self._thread = threading.Thread(target=self._fetch, name="chromeos-sync-fetch", daemon=True)

    def _fetch(self) -> None:
        try:
            pages = list_device_pages(
                self.client, self.integration, on_fallback=lambda a, b: self._fallbacks.append((a, b))
            )
            for page in pages:
                if not self._put(page):
                    return
            self._put(_DONE)
        except BaseException as error:
            self._put(error)

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _backoff(self, seconds: float) -> None:
        self._retries.put(seconds)
        time.sleep(seconds)

    def _tell_retries(self) -> None:
        while self._on_retry is not None:
            try:
                seconds = self._retries.get_nowait()
            except queue.Empty:
                return
            self._on_retry(seconds)

    def take_fallbacks(self) -> list[tuple[int, int]]:
        taken, self._fallbacks = self._fallbacks, []
        return taken

    def __iter__(self) -> Iterator[list[Any]]:
        self._thread.start()
        while True:
            try:
                item = self._queue.get(timeout=0.5)
            except queue.Empty:
                self._tell_retries()
                continue
            self._tell_retries()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop the thread (after its current request) and save the tokens it refreshed."""
        self._stop.set()
        if self._thread.is_alive() or self._thread.ident is not None:
            self._thread.join(timeout=90)
        self.client.save_tokens()


def _customer(integration: GoogleIntegration) -> str:
    return integration.customer_id or "my_customer"


def _count_devices(client: GoogleClient, integration: GoogleIntegration) -> int:
    request = (
        client.directory()
        .customer()
        .devices()
        .chromeos()
        .countChromeOsDevices(customerId=_customer(integration))
    )
    return int(client.execute(request).get("count", 0))


def list_device_pages(
    client: GoogleClient,
    integration: GoogleIntegration,
    *,
    page_size: int | None = None,
    on_fallback: Callable[[int, int], None] | None = None,
) -> Iterator[list[Any]]:
    """Every page of the tenant's devices (projection FULL), as Google sends them. Used by the sync and by
    the benchmark's fetch-only floor."""
    size = page_size or _page_size()
    token: str | None = None
    first = True
    # One resource for every page: building it walks the discovery document (~1 ms per call).
    chromeosdevices = client.directory().chromeosdevices()
    while True:
        request = chromeosdevices.list(
            customerId=_customer(integration), projection="FULL", maxResults=size, pageToken=token
        )
        try:
            body = client.execute(request)
        except GoogleBadRequest:
            # Google has documented 100, 200 and 300 as the maximum over the years: never trust one number.
            if not first or size <= FALLBACK_PAGE_SIZE:
                raise
            if on_fallback is not None:
                on_fallback(size, FALLBACK_PAGE_SIZE)
            size = FALLBACK_PAGE_SIZE
            continue
        first = False
        devices = body.get("chromeosdevices") or []
        yield devices if isinstance(devices, list) else []
        token = body.get("nextPageToken")
        if not token:
            return


def _org_units(client: GoogleClient, integration: GoogleIntegration) -> list[dict[str, Any]]:
    request = client.directory().orgunits().list(customerId=_customer(integration), type="allIncludingParent")
    units = client.execute(request).get("organizationUnits") or []
    return [u for u in units if isinstance(u, dict) and u.get("orgUnitId") and u.get("orgUnitPath")]


# -- turning a Google device into a row -------------------------------------------------------------------------
# (column, Google field, max length): plain string columns. Anything that is not a string where a string is
# expected (a malformed or surprising payload) becomes empty in the column and stays intact in the payload.
STRING_COLUMNS: tuple[tuple[str, str, int | None], ...] = (
    ("serial_number", "serialNumber", 128),
    ("status", "status", 32),
    ("model", "model", 255),
    ("os_version", "osVersion", 64),
    ("platform_version", "platformVersion", 64),
    ("org_unit_path", "orgUnitPath", 1024),
    ("org_unit_id", "orgUnitId", 64),
    ("annotated_user", "annotatedUser", 255),
    ("annotated_location", "annotatedLocation", 255),
    ("annotated_asset_id", "annotatedAssetId", 255),
    ("notes", "notes", None),
    ("mac_address", "macAddress", 32),
    ("ethernet_mac_address", "ethernetMacAddress", 32),
    ("boot_mode", "bootMode", 32),
)
DATA_COLUMNS = (
    *(c for c, _f, _m in STRING_COLUMNS),
    "recent_user",
    "last_sync",
    "last_enrollment_time",
    "auto_update_expiration",
)
STAGE_COLUMNS = ("seq", "device_id", "etag", "fresh", *DATA_COLUMNS, "payload")
ANALYZED_COLUMNS = ("tenant_id", "device_id", "removed_at", "status", "org_unit_path", "model", "os_version")
# Columns whose changes are recorded as DeviceChange history (last_sync moves at every check-in: not history).
CHANGE_COLUMNS = tuple(c for c in DATA_COLUMNS if c not in ("last_sync", "platform_version", "org_unit_id"))


def _clean(value: str) -> str:
    """A string PostgreSQL accepts: without NUL (text cannot hold it), and valid UTF-8 (a lone UTF-16 surrogate,
    which JSON's \\ud800 escapes can produce, becomes "?")."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            value = value.encode("utf-8", "replace").decode()
    return value


def _text(value: Any, limit: int | None) -> str:
    if not isinstance(value, str):
        return ""
    value = _clean(value)
    return value[:limit] if limit else value


def _timestamp(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None or not (1900 <= moment.year <= 9999):
        return None
    return value


def _aue_date(device: dict[str, Any]) -> str | None:
    """autoUpdateExpiration is int64 milliseconds as a string; a bad value leaves the column empty."""
    value = device.get("autoUpdateExpiration")
    try:
        millis = int(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
    except ValueError:
        millis = None
    if millis is None:
        return None
    try:
        # Google's instant is midnight UTC of the day it means: the date in UTC, never in the server's zone
        # (date.fromtimestamp would give the day before on a server west of Greenwich).
        if not 0 < millis < 253402214400000:
            return None
        return datetime.fromtimestamp(millis / 1000, UTC).date().isoformat()
    except (OverflowError, OSError, ValueError):
        return None


def _recent_user(device: dict[str, Any]) -> str:
    users = device.get("recentUsers")
    if isinstance(users, list):
        for entry in users:
            if isinstance(entry, dict) and isinstance(entry.get("email"), str):
                return _text(entry["email"], 255)
    return ""


def _payload_json(device: dict[str, Any]) -> str:
    """The device as jsonb text. orjson: 15x faster than json.dumps, which took a fifth of a full sync's
    listing; it writes NaN and Infinity (which jsonb refuses) as null."""
    try:
        text = orjson.dumps(device).decode()
    except orjson.JSONEncodeError:  # an integer past 64 bits (jsonb keeps it), a lone surrogate
        return _safe_json(device)
    if "\\u0000" in text:  # jsonb refuses \u0000: drop NULs from every string, keep the rest
        return _safe_json(device)
    return text


def _safe_json(device: dict[str, Any]) -> str:
    return json.dumps(_json_safe(device), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _json_safe(value: Any) -> Any:
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {_clean(str(k)): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def device_row(seq: int, device_id: str, etag: str, device: dict[str, Any]) -> tuple[Any, ...]:
    return (
        seq,
        device_id,
        etag,
        True,
        *(_text(device.get(field), limit) for _c, field, limit in STRING_COLUMNS),
        _recent_user(device),
        _timestamp(device.get("lastSync")),
        _timestamp(device.get("lastEnrollmentTime")),
        _aue_date(device),
        _payload_json(device),
    )


# -- staging ---------------------------------------------------------------------------------------------------
class Stage:
    """The run's TEMP staging table on Django's connection: filled page by page with COPY, read by the merge."""

    def __init__(self, run: SyncRun) -> None:
        self.run = run
        self.table = f"chromeos_sync_stage_{run.pk}"
        self.seq = 0

    def create(self) -> None:
        data_columns = ", ".join(
            f"{c} {'timestamptz' if c in ('last_sync', 'last_enrollment_time') else 'date' if c == 'auto_update_expiration' else 'text'}"
            for c in DATA_COLUMNS
        )
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.table}")
            cursor.execute(
                "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
            )
            row = cursor.fetchone()
            # lz4 compresses payloads several times faster than pglz; the merge copies them compressed as they
            # are, so the devices table gets lz4 payloads too (see migration 0007).
            compression = " COMPRESSION lz4" if row and row[0] else ""
            cursor.execute(
                f"CREATE TEMP TABLE {self.table} (seq integer NOT NULL, device_id text NOT NULL, "
                f"etag text NOT NULL, fresh boolean NOT NULL DEFAULT false, {data_columns}, "
                f"payload jsonb{compression})"
            )

    def analyze(self) -> None:
        """Autovacuum never analyzes TEMP tables: without statistics the merge's joins would be planned blind
        (a nested-loop anti-join over 100,000 rows each side takes minutes)."""
        with connection.cursor() as cursor:
            # The index is insurance: right after a tenant's first sync the devices table's statistics may still
            # say "empty", and the sweep's anti-join is then planned as a nested loop; without this index each
            # loop would scan the whole staging table (100,000 x 100,000 comparisons).
            cursor.execute(f"CREATE INDEX ON {self.table} (device_id)")
            cursor.execute(f"ANALYZE {self.table}")
            # A device listed twice (Google's paging shifted under a change) is kept once, its last copy. Done
            # here on the narrow columns, so that the merge never sorts rows with their payloads.
            cursor.execute(
                f"DELETE FROM {self.table} AS s USING {self.table} AS t "
                "WHERE s.device_id = t.device_id AND s.seq < t.seq"
            )

    def drop(self) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {self.table}")
        except DatabaseError:
            pass  # the connection is gone, and its TEMP table with it

    def write_page(self, devices: list[Any], tenant_id: int, listing: Listing) -> None:
        """COPY one page: full rows for new or changed devices, the bare id for the others."""
        page: list[tuple[str, str, dict[str, Any]]] = []
        for device in devices:
            device_id = device.get("deviceId") if isinstance(device, dict) else None
            if not isinstance(device_id, str) or not device_id or len(device_id) > 64:
                listing.skipped += 1
                continue
            etag = device.get("etag")
            page.append((device_id, etag if isinstance(etag, str) else "", device))
        listing.pages += 1
        listing.devices += len(page)
        if not page:
            return
        with connection.cursor() as django_cursor:
            cursor = django_cursor.cursor  # psycopg's own cursor: COPY is not in Django's API
            # LATERAL ... LIMIT 1 makes this one unique-index probe per device, whatever the statistics say: a
            # plain join is planned as a hash join over all the tenant's rows (100,000 rows read per page).
            cursor.execute(
                "SELECT u.id, d.etag FROM unnest(%s::text[]) AS u(id) CROSS JOIN LATERAL ("
                " SELECT etag FROM chromeos_chromeosdevice"
                " WHERE tenant_id = %s AND device_id = u.id AND removed_at IS NULL LIMIT 1) AS d",
                ([d for d, _e, _p in page], tenant_id),
            )
            stored = dict(cursor.fetchall())
            unchanged: list[tuple[int, str, str]] = []
            fresh: list[tuple[Any, ...]] = []
            for device_id, etag, device in page:
                self.seq += 1
                if etag and stored.get(device_id) == etag:
                    unchanged.append((self.seq, device_id, etag))
                else:
                    fresh.append(device_row(self.seq, device_id, etag, device))
            listing.fresh += len(fresh)
            # Unchanged devices travel as their id only (the other columns stay NULL): most pages of a re-sync.
            if unchanged:
                with cursor.copy(f"COPY {self.table} (seq, device_id, etag) FROM STDIN") as copy:
                    for row in unchanged:
                        copy.write_row(row)
            if fresh:
                with cursor.copy(f"COPY {self.table} ({', '.join(STAGE_COLUMNS)}) FROM STDIN") as copy:
                    for row in fresh:
                        copy.write_row(row)


# -- the merge -------------------------------------------------------------------------------------------------
@dataclass
class MergeResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    candidates: int = 0
    listed: int = 0
    present_before: int = 0


def _merge_devices(
    stage: Stage, integration: GoogleIntegration, run: SyncRun, *, may_remove: Callable[[int, int], bool]
) -> MergeResult:
    """Inside the merge transaction: history, upsert, then the sweep if ``may_remove(candidates, present)``."""
    table = stage.table
    device_table = ChromeOSDevice._meta.db_table
    change_table = "chromeos_devicechange"
    result = MergeResult()
    params = {"tenant": integration.tenant_id, "integration": integration.pk, "run": run.pk}
    set_columns = ", ".join(f"{c} = EXCLUDED.{c}" for c in DATA_COLUMNS)
    change_pairs = ", ".join(
        f"'{c}', CASE WHEN d.{c} IS DISTINCT FROM s.{c} THEN jsonb_build_array(d.{c}, s.{c}) END"
        for c in CHANGE_COLUMNS
    )
    change_filter = " OR ".join(f"d.{c} IS DISTINCT FROM s.{c}" for c in CHANGE_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {device_table} WHERE tenant_id = %(tenant)s AND removed_at IS NULL", params
        )
        result.present_before = cursor.fetchone()[0]
        cursor.execute(f"SELECT count(*) FROM {table}")  # distinct devices: Stage.analyze removed duplicates
        result.listed = cursor.fetchone()[0]
        fresh = f"(SELECT * FROM {table} WHERE fresh)"
        cursor.execute(
            f"""
            INSERT INTO {change_table} (tenant_id, device_id, sync_run_id, changes, at)
            SELECT d.tenant_id, d.id, %(run)s,
                   jsonb_strip_nulls(jsonb_build_object({change_pairs},
                       'removed', CASE WHEN d.removed_at IS NOT NULL THEN jsonb_build_array(true, false) END)),
                   now()
            FROM {fresh} s JOIN {device_table} d ON d.tenant_id = %(tenant)s AND d.device_id = s.device_id
            WHERE (d.etag IS DISTINCT FROM s.etag OR d.removed_at IS NOT NULL)
              AND ({change_filter} OR d.removed_at IS NOT NULL)
            """,
            params,
        )
        cursor.execute(
            f"""
            WITH upserted AS (
                INSERT INTO {device_table} AS d (tenant_id, integration_id, device_id, etag, {", ".join(DATA_COLUMNS)},
                    payload, first_seen_at, last_seen_at, last_seen_run_id, removed_at)
                SELECT %(tenant)s, %(integration)s, s.device_id, s.etag, {", ".join("s." + c for c in DATA_COLUMNS)},
                    s.payload, now(), now(), %(run)s, NULL
                FROM {fresh} s
                ON CONFLICT (tenant_id, device_id) DO UPDATE SET
                    etag = EXCLUDED.etag, {set_columns}, payload = EXCLUDED.payload,
                    integration_id = EXCLUDED.integration_id, last_seen_at = EXCLUDED.last_seen_at,
                    last_seen_run_id = EXCLUDED.last_seen_run_id, removed_at = NULL
                WHERE d.etag IS DISTINCT FROM EXCLUDED.etag OR d.removed_at IS NOT NULL
                    OR d.integration_id IS DISTINCT FROM EXCLUDED.integration_id
                RETURNING (xmax = 0) AS inserted
            )
            SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM upserted
            """,
            params,
        )
        result.added, result.updated = cursor.fetchone()
        result.unchanged = max(result.listed - result.added - result.updated, 0)
        absent = (
            f"FROM {device_table} d WHERE d.tenant_id = %(tenant)s AND d.removed_at IS NULL "
            f"AND NOT EXISTS (SELECT 1 FROM {table} s WHERE s.device_id = d.device_id)"
        )
        cursor.execute(f"SELECT count(*) {absent}", params)
        result.candidates = cursor.fetchone()[0]
        if result.candidates and may_remove(result.candidates, result.present_before):
            cursor.execute(
                f"""
                WITH gone AS (
                    UPDATE {device_table} AS target SET removed_at = now()
                    FROM (SELECT d.id {absent}) AS absent WHERE target.id = absent.id
                    RETURNING target.id, target.tenant_id
                ), history AS (
                    INSERT INTO {change_table} (tenant_id, device_id, sync_run_id, changes, at)
                    SELECT tenant_id, id, %(run)s, '{{"removed": [false, true]}}'::jsonb, now() FROM gone
                )
                SELECT count(*) FROM gone
                """,
                params,
            )
            result.removed = cursor.fetchone()[0]
    return result


def _merge_org_units(integration: GoogleIntegration, run: SyncRun, units: list[dict[str, Any]]) -> int:
    """Upsert the OUs Google listed (a complete answer: orgunits.list is not paged) and link each to the
    tenant's LDAP OU of the same path (matched case-insensitively, as Google compares paths).

    An OU is matched by Google's id, then by path: an OU deleted and recreated in Google with the same path
    (a new id) keeps its row, hence its assignments. An OU Google no longer lists is deleted, unless
    assignments target it: then it is kept as "OU disparue" (``missing_since``) with them, for an admin to
    release. Both are said in the run's log and the audit trail.
    """
    ldap_ids = _ldap_org_unit_ids(integration.tenant_id)
    existing = {ou.org_unit_id: ou for ou in OrgUnit.unscoped.filter(integration=integration)}
    listed_ids = {_strip_id(unit["orgUnitId"]) for unit in units}
    unlisted_by_path = {ou.path.casefold(): ou for ou_id, ou in existing.items() if ou_id not in listed_ids}
    seen: set[str] = set()
    to_create: list[OrgUnit] = []
    to_update: list[OrgUnit] = []
    fields = [
        "org_unit_id",
        "path",
        "name",
        "parent_org_unit_id",
        "description",
        "last_seen_run_id",
        "ldap_org_unit",
        "missing_since",
    ]
    for unit in units:
        org_unit_id = _strip_id(unit["orgUnitId"])
        if org_unit_id in seen:
            continue
        seen.add(org_unit_id)
        values: dict[str, Any] = {
            "path": _text(unit.get("orgUnitPath"), 1024),
            "name": _text(unit.get("name"), 255),
            "parent_org_unit_id": _strip_id(_text(unit.get("parentOrgUnitId"), 64)),
            "description": _text(unit.get("description"), None),
            "last_seen_run_id": run.pk,
            "missing_since": None,
        }
        values["ldap_org_unit_id"] = ldap_ids.get(values["path"].casefold())
        ou = existing.get(org_unit_id)
        if ou is None and (previous := unlisted_by_path.pop(values["path"].casefold(), None)) is not None:
            ou = previous
            _org_unit_recreated(integration, run, previous, org_unit_id)
            del existing[previous.org_unit_id]
            ou.org_unit_id = org_unit_id
            existing[org_unit_id] = ou
        if ou is None:
            to_create.append(
                OrgUnit(
                    tenant_id=integration.tenant_id,
                    integration=integration,
                    org_unit_id=org_unit_id,
                    **values,
                )
            )
        else:
            for key, value in values.items():
                setattr(ou, key, value)
            to_update.append(ou)
    OrgUnit.unscoped.bulk_update(to_update, fields, batch_size=2000)
    OrgUnit.unscoped.bulk_create(to_create, batch_size=2000)
    gone = [ou for ou_id, ou in existing.items() if ou_id not in seen]
    assigned = set(
        PolicyAssignment.unscoped.filter(org_unit__in=[ou.pk for ou in gone]).values_list(
            "org_unit_id", flat=True
        )
    )
    for ou in gone:
        if ou.pk in assigned and ou.missing_since is None:
            _org_unit_missing(integration, run, ou)
    OrgUnit.unscoped.filter(pk__in=[ou.pk for ou in gone if ou.pk not in assigned]).delete()
    return len(seen)


def _assignment_summary(ou: OrgUnit) -> list[dict[str, str]]:
    return [
        {
            "assignment": a.subject_label,
            "state": a.state,
            "schemas": ", ".join(sorted(a.applied_values or {})),
        }
        for a in PolicyAssignment.unscoped.filter(org_unit=ou).select_related("blueprint", "app")
    ]


def _org_unit_recreated(integration: GoogleIntegration, run: SyncRun, ou: OrgUnit, new_id: str) -> None:
    """Google's new OU holds none of what the console wrote on the old one: its assignments are kept but go
    back to "en attente" (nothing applied), for the admin to apply them again."""
    assignments = _assignment_summary(ou)
    PolicyAssignment.unscoped.filter(org_unit=ou).update(
        state=AssignmentState.PENDING,
        applied_values={},
        previous_values={},
        applied_at=None,
        google_error=str(MSG["ou_recreated_assignment"]),
        updated_at=timezone.now(),
    )
    _log(run, "warning", "ou_recreated", path=ou.path, old=ou.org_unit_id, new=new_id, count=len(assignments))
    audit_record(
        tenant=integration.tenant,
        actor=None,
        action="chromeos.org_unit.recreated",
        target=ou.path,
        details={"old_id": ou.org_unit_id, "new_id": new_id, "assignments": assignments, "run_id": run.pk},
    )


def _org_unit_missing(integration: GoogleIntegration, run: SyncRun, ou: OrgUnit) -> None:
    assignments = _assignment_summary(ou)
    OrgUnit.unscoped.filter(pk=ou.pk).update(missing_since=timezone.now())
    _log(
        run,
        "warning",
        "ou_missing",
        path=ou.path,
        assignments="; ".join(a["assignment"] for a in assignments),
    )
    audit_record(
        tenant=integration.tenant,
        actor=None,
        action="chromeos.org_unit.missing",
        target=ou.path,
        details={"org_unit_id": ou.org_unit_id, "assignments": assignments, "run_id": run.pk},
    )


def _strip_id(value: str) -> str:
    return value[3:] if value.startswith("id:") else value


def _ldap_org_unit_ids(tenant_id: int) -> dict[str, int]:
    """casefolded Google path → id of the tenant's LDAP OUs that were added to the console. The console's paths
    escape ``\\`` and ``/`` in names, Google's do not: an OU named ``Équipe \\ Réseau`` is matched by its Google
    path; one with a ``/`` in a name has none."""
    rows = LdapOrgUnit.unscoped.filter(tenant_id=tenant_id, added=True).values_list("path", "id")
    ids: dict[str, int] = {}
    for path, pk in rows:
        google_path = google_org_unit_path(path)
        if google_path is not None:
            ids[google_path.casefold()] = pk
    return ids


def _supported_count(units: list[dict[str, Any]], tenant_id: int) -> int:
    ldap_paths = _ldap_org_unit_ids(tenant_id)
    return sum(1 for u in units if str(u.get("orgUnitPath", "")).casefold() in ldap_paths)


# -- a run -----------------------------------------------------------------------------------------------------
ProgressCallback = Callable[[SyncRun], None]


def devices_sync(run: SyncRun, *, progress: ProgressCallback | None = None) -> SyncRun:
    """Run one queued sync (the task's body, and the CLI's). Returns the run, finished; its outcome counted in
    the metrics (ops/metrics.py) and the tenant's alerts re-evaluated."""
    if run.status in FINISHED_STATUSES:
        return _devices_sync(run, progress=progress)  # a redelivery of a finished run: nothing happens
    with log_context(run_id=run.pk):
        try:
            run = _devices_sync(run, progress=progress)
        finally:
            finished = None
            # PostgreSQL down: the task's retry matters, not counting.
            with contextlib.suppress(DatabaseError):
                finished = SyncRun.unscoped.filter(pk=run.pk).first()
            if finished is not None and finished.status in FINISHED_STATUSES:
                metrics.record_sync_run(finished)
                _alerts_evaluate(finished)
                logger.info(
                    "chromeos sync %s: %s",
                    finished.pk,
                    finished.status,
                    extra={
                        "status": finished.status,
                        "trigger": finished.trigger,
                        "devices_seen": finished.devices_seen,
                        "added": finished.added,
                        "updated": finished.updated,
                        "removed": finished.removed,
                    },
                )
    return run


def _alerts_evaluate(run: SyncRun) -> None:
    from ops.alerts import alerts_evaluate

    try:
        alerts_evaluate(run.tenant)
    except Exception:
        # Telling people must never change what the sync did.
        logger.exception("alerts of tenant %s not evaluated", run.tenant_id)


def _devices_sync(run: SyncRun, *, progress: ProgressCallback | None = None) -> SyncRun:
    """Run one queued sync. Returns the run, finished.

    A run found RUNNING was interrupted (its worker died and the message came back): it is marked failed and a
    new run continues its work, so the history tells the truth.
    """
    run = SyncRun.unscoped.select_related("integration", "tenant").get(pk=run.pk)
    if run.status in FINISHED_STATUSES:
        return run
    lock = SyncLock(run.tenant_id)
    # A RUNNING run handed to us again is a redelivery after its worker died: PostgreSQL may take a moment to
    # notice the dead session and free its lock.
    if not lock.acquire(wait_seconds=REDELIVERY_LOCK_WAIT if run.status == SyncStatus.RUNNING else 0.0):
        if run.status == SyncStatus.QUEUED:
            run.status = SyncStatus.SKIPPED
            run.finished_at = timezone.now()
            SyncRun.unscoped.filter(pk=run.pk).update(status=run.status, finished_at=run.finished_at)
            _log(run, "info", "lock_busy")
        return run
    stage: Stage | None = None
    try:
        integration = run.integration
        _reap_dead_runs(integration, except_pk=run.pk)
        if run.status == SyncStatus.RUNNING:
            interrupted = run
            _fail(interrupted, "reaped", number=interrupted.pk)
            run = SyncRun.unscoped.create(
                tenant_id=interrupted.tenant_id,
                integration=integration,
                trigger=interrupted.trigger,
                requested_by=interrupted.requested_by,
                removal_allowance=interrupted.removal_allowance,
            )
            run = SyncRun.unscoped.select_related("integration", "tenant").get(pk=run.pk)
            run.log = [_log_entry("info", "resumed", number=interrupted.pk)]
        integration.refresh_from_db()
        if integration.status != IntegrationStatus.ACTIVE:
            run.status = SyncStatus.SKIPPED
            run.finished_at = timezone.now()
            SyncRun.unscoped.filter(pk=run.pk).update(status=run.status, finished_at=run.finished_at)
            _log(run, "warning", "not_active", status=integration.get_status_display())
            return run
        run.status = SyncStatus.RUNNING
        run.started_at = run.heartbeat_at = timezone.now()
        run.log = [*run.log, _log_entry("info", "started", trigger=run.get_trigger_display())]
        SyncRun.unscoped.filter(pk=run.pk).update(
            status=run.status, started_at=run.started_at, heartbeat_at=run.heartbeat_at, log=run.log
        )
        stage = Stage(run)
        _run(run, integration, lock, stage, progress)
    except GoogleError as error:
        if isinstance(error, AuthRevoked):
            _mark_reauth_required(run, error)
        else:
            _fail(run, "google_error", error=str(error)[:500])
    except SyncAborted as abort:
        _fail(run, abort.key, **abort.params)
    except DatabaseError as error:
        # PostgreSQL may be the thing that is down: record if we can, and let the task retry later.
        with contextlib.suppress(DatabaseError):
            _fail(run, "database_error", error=str(error)[:500])
        raise
    except Exception as error:
        _fail(run, "internal_error", error=f"{type(error).__name__}: {error}"[:500])
        raise
    finally:
        if stage is not None:
            stage.drop()
        lock.release()
    return run


def _run(
    run: SyncRun,
    integration: GoogleIntegration,
    lock: SyncLock,
    stage: Stage,
    progress: ProgressCallback | None,
) -> None:
    started = time.monotonic()
    client = GoogleClient(integration)
    units = _org_units(client, integration)
    run.org_units = len(units)
    _log(run, "info", "org_units", count=len(units), supported=_supported_count(units, integration.tenant_id))

    count_before = _count_devices(client, integration)
    run.expected_devices = count_before
    SyncRun.unscoped.filter(pk=run.pk).update(org_units=run.org_units, expected_devices=count_before)
    _log(run, "info", "expected", count=count_before)

    stage.create()
    listing = Listing()

    fetcher = PageFetcher(
        integration, on_retry=lambda seconds: _log(run, "warning", "google_retry", seconds=round(seconds))
    )
    try:
        for devices in fetcher:
            for size, smaller in fetcher.take_fallbacks():
                _log(run, "warning", "page_size_fallback", size=size, fallback=smaller)
            _write_page(run, stage, devices, listing, progress)
    finally:
        fetcher.close()
    count_after = _count_devices(client, integration)
    _log(
        run,
        "info",
        "listed",
        devices=listing.devices,
        pages=listing.pages,
        seconds=round(time.monotonic() - started, 1),
    )
    quota_waits = client.quota_waits + fetcher.client.quota_waits
    if quota_waits:
        waited = client.quota_wait_seconds + fetcher.client.quota_wait_seconds
        _log(run, "info", "quota_waits", count=quota_waits, seconds=round(waited, 1))
    if listing.skipped:
        _log(run, "warning", "skipped_devices", count=listing.skipped)
    if not lock.held():
        raise SyncAborted("database_error", error="lost the sync lock")

    guard_percent = integration.deletion_guard_percent
    allowance = run.removal_allowance
    decision: dict[str, Any] = {}

    def may_remove(candidates: int, present: int) -> bool:
        decision["candidates"] = candidates
        if not complete:
            return False
        if allowance is not None and candidates <= allowance:
            return True
        if decision.get("held_since") is not None:
            # The guard is a state: removals held back by an earlier run wait for an admin, whoever started
            # this run and whatever share of a (maybe grown) fleet they are now.
            decision["guarded"] = decision["held"] = True
            decision["percent"] = round(candidates * 100 / max(present, 1), 1)
            return False
        if candidates * 100 > present * guard_percent:
            decision["guarded"] = True
            decision["percent"] = round(candidates * 100 / max(present, 1), 1)
            return False
        return True

    stage.analyze()
    with transaction.atomic():
        locked = GoogleIntegration.unscoped.select_for_update().filter(pk=integration.pk).first()
        if locked is None or locked.status != IntegrationStatus.ACTIVE:
            raise SyncAborted("integration_gone")
        decision["held_since"] = locked.removals_held_since
        _merge_org_units(locked, run, units)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {stage.table}")
            listed = cursor.fetchone()[0]
        complete = listed == count_before == count_after
        result = _merge_devices(stage, locked, run, may_remove=may_remove)
        if allowance is not None:
            _log(run, "info", "confirmed", allowance=allowance)
        if not complete:
            status = SyncStatus.PARTIAL
            _log(run, "warning", "incomplete", listed=listed, before=count_before, after=count_after)
        elif decision.get("held"):
            status = SyncStatus.GUARDED
            _log(
                run,
                "warning",
                "held",
                count=result.candidates,
                since=timezone.localtime(decision["held_since"]).strftime("%Y-%m-%d %H:%M"),
            )
        elif decision.get("guarded"):
            status = SyncStatus.GUARDED
            _log(
                run,
                "warning",
                "guarded",
                count=result.candidates,
                percent=decision["percent"],
                threshold=guard_percent,
            )
        else:
            status = SyncStatus.SUCCEEDED
        if status == SyncStatus.GUARDED and locked.removals_held_since is None:
            locked.removals_held_since = timezone.now()
            locked.save(update_fields=["removals_held_since", "updated_at"])
        elif status == SyncStatus.SUCCEEDED and locked.removals_held_since is not None:
            # Confirmed and applied, or every absent device came back: nothing is held any more.
            _log(run, "info", "held_released", removed=result.removed)
            locked.removals_held_since = None
            locked.save(update_fields=["removals_held_since", "updated_at"])
        _log(
            run,
            "info",
            "merged",
            added=result.added,
            updated=result.updated,
            unchanged=result.unchanged,
            removed=result.removed,
        )
        finished = timezone.now()
        elapsed = round(time.monotonic() - started, 1)
        run.log = [*run.log, _log_entry("info", "finished", seconds=elapsed)][-MAX_LOG_LINES:]
        run.status = status
        run.finished_at = run.heartbeat_at = finished
        run.added, run.updated, run.unchanged, run.removed = (
            result.added,
            result.updated,
            result.unchanged,
            result.removed,
        )
        run.pending_removals = result.candidates if status == SyncStatus.GUARDED else 0
        run.save(
            update_fields=[
                "status",
                "finished_at",
                "heartbeat_at",
                "pages",
                "devices_seen",
                "devices_skipped",
                "added",
                "updated",
                "unchanged",
                "removed",
                "pending_removals",
                "org_units",
                "expected_devices",
                "log",
            ]
        )
        _schedule_after(locked, run, finished)
    if result.added + result.removed > max(result.present_before, 1000) // 10:
        # Autovacuum analyzes later; until then plans over this tenant's devices would use stale row counts.
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {ChromeOSDevice._meta.db_table} ({', '.join(ANALYZED_COLUMNS)})")
    if progress is not None:
        progress(run)


def _write_page(
    run: SyncRun, stage: Stage, devices: list[Any], listing: Listing, progress: ProgressCallback | None
) -> None:
    stage.write_page(devices, run.tenant_id, listing)
    run.pages, run.devices_seen, run.devices_skipped = listing.pages, listing.devices, listing.skipped
    now = time.monotonic()
    if now - listing.progress_written >= _progress_seconds():
        listing.progress_written = now
        run.heartbeat_at = timezone.now()
        SyncRun.unscoped.filter(pk=run.pk).update(
            pages=run.pages,
            devices_seen=run.devices_seen,
            devices_skipped=run.devices_skipped,
            heartbeat_at=run.heartbeat_at,
        )
    if progress is not None:
        progress(run)


def _schedule_after(integration: GoogleIntegration, run: SyncRun, finished: datetime) -> None:
    """After a completed run: last sync time, the first-sync mark, and the next hourly slot."""
    interval = sync_interval()
    fields = ["last_sync_at", "updated_at"]
    integration.last_sync_at = finished
    if integration.first_sync_at is None:
        integration.first_sync_at = finished
        integration.sync_offset_seconds = sync_offset_for(integration.tenant_id)
        fields += ["first_sync_at", "sync_offset_seconds"]
    if run.trigger == SyncTrigger.MANUAL or integration.next_sync_at is None:
        # A manual sync pushes the next scheduled one to the tenant's first slot at least an interval away.
        integration.next_sync_at = next_slot(
            integration.sync_offset_seconds, finished + timedelta(seconds=interval - 1), interval
        )
        fields.append("next_sync_at")
    integration.save(update_fields=fields)


def _mark_reauth_required(run: SyncRun, error: AuthRevoked) -> None:
    """Google refused the grant: pause the hourly sync, ask for re-authorization (if the grant that failed is
    still the stored one); nothing is deleted."""
    _fail(run, "auth_revoked", reason=error.reason or "invalid_grant")
    integration_google_refused(integration=run.integration, error=error)
