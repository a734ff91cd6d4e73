"""Removing a tenant's Google integration: revoke the grant at Google, then delete everything of this app.

What goes: every model listed in :data:`REMOVED_MODELS` (ChromeOS devices, their commands, the inventory and
assignment state, Google's OUs, sync runs, and the integration row itself — the "enrollment metadata": customer
id, domain, admin account, scopes, tokens). What stays: ``mdm`` Blueprints and apps, the audit trail, and the
:class:`~chromeos.models.RemovalRun` that records the removal. A test checks that every model of this app is
either in :data:`REMOVED_MODELS` or in :data:`KEPT_MODELS`, so a model added later cannot be forgotten.

The steps of one run (:func:`removal_run_execute`, in a Celery task):

1. :func:`removal_request` (the POST) marks the integration ``removing`` in its own committed transaction. From
   then on no new sync or action starts and :func:`integration_accepts_writes` answers False.
2. Revoke the refresh token at Google. ``invalid_token`` (already revoked, expired) counts as revoked. Any other
   failure: nothing is deleted, the integration gets its previous status back, the run fails with a support
   reference.
3. Delete, in ONE transaction, model by model in chunks (:func:`integration_data_delete`). A failure rolls the
   whole deletion back; the integration is then ``removal_failed`` (its token is already revoked) and a retry
   picks up from step 2, where Google answers ``invalid_token``.

Why removal always wins over a running sync (no device can reappear):

* A writer locks the integration row inside the transaction that writes and writes only if it is still
  ``active``: the sync's merge does it itself (``SELECT ... FOR UPDATE`` in ``services/sync/pipeline.py``); any other
  writer calls ``integration_accepts_writes(id)`` (``FOR SHARE``), and ``lock=False`` between pages to stop early.
* Step 1's status update and step 3's ``SELECT ... FOR UPDATE`` of the integration conflict with those locks:
  a merge that began before step 1 finishes first (and its rows are then deleted in step 3); a merge that
  begins after step 1 sees ``removing`` (or, after step 3 commits, no row) and writes nothing. A sync still
  listing meets the revoked grant at its next page and stops (``tests/chromeos/test_removal_race.py``).
* ``lock_timeout`` bounds the wait: a stuck writer makes the removal fail cleanly, not hang.

How a dead worker is noticed (:func:`removal_runs_reap`, registered in ``mdm.jobs``): the worker writes the
run's ``heartbeat_at`` at each step (start, each policy restored, before and after the revocation, before the
deletion), and holds the run's row locked (``SELECT ... FOR UPDATE``) for the whole deletion transaction, whose
chunks cannot commit a heartbeat. The reaper fails a run that gave no sign of life for
``JOB_HEARTBEAT_TIMEOUT_SECONDS`` and whose row is not locked (a killed worker's connection closes and releases
the lock), or that stayed queued ``REMOVAL_QUEUED_TIMEOUT_SECONDS`` with no message waiting in the outbox. The
reason tells the admin to retry and which reference to give support. A worker that was only slow stops at its
next step (``_set_status`` refuses a run that is no longer active).

Why chunks in one transaction: a single ``DELETE`` of 100,000 devices is one long statement that holds its
locks, builds all its trigger events and cannot report progress; Django's ``QuerySet.delete()`` would even load
every row in memory to cascade. Keyset chunks of :data:`CHUNK_SIZE` rows keep each statement short, report
progress, and touch only this tenant's rows, so other tenants are never blocked. The single transaction is what
the issue asks for: nothing half-deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import Model
from django.utils import timezone
from django.utils.translation import gettext as _

from chromeos.google.client import RevocationOutcome, revoke_token
from chromeos.google.errors import GoogleError
from chromeos.models import (
    REMOVAL_ACTIVE_STATUSES,
    ChromeOSDevice,
    DeviceActionItem,
    DeviceActionJob,
    DeviceChange,
    DeviceCommand,
    GoogleIntegration,
    IntegrationStatus,
    OrgUnit,
    PolicyAssignment,
    RemovalRun,
    RemovalStatus,
    SavedDeviceView,
    SyncRun,
)
from mdm import jobs
from mdm.fields import DecryptionError
from mdm.models import Tenant, User
from mdm.services import audit_record
from mdm.tenancy import TenantOwnedModel, tenant_context

logger = logging.getLogger(__name__)

# Children before parents: Django's foreign keys are checked at commit, but deleting referencing rows first
# keeps every intermediate state consistent and each FK check cheap.
REMOVED_MODELS: tuple[type[TenantOwnedModel], ...] = (
    DeviceChange,
    DeviceActionItem,
    DeviceCommand,
    DeviceActionJob,
    ChromeOSDevice,
    PolicyAssignment,
    OrgUnit,
    SyncRun,
    GoogleIntegration,
)
# Models of the chromeos app that a removal keeps: the record of the removal itself, and the users' saved views
# of the fleet table (filters as a query string, no link to Google's data: they mean the same again once the
# tenant connects Google anew, like its Blueprints and apps).
KEPT_MODELS: tuple[type[Model], ...] = (RemovalRun, SavedDeviceView)

CHUNK_SIZE = 5000
STALE_MARGIN_SECONDS = 5 * 60
# Integration statuses in which syncs and actions may write device data. Not "reauth_required" (its token no
# longer works, so nothing legitimate writes) nor "removing"/"removal_failed" (the data is on its way out).
WRITABLE_STATUSES = (IntegrationStatus.ACTIVE,)
# Statuses from which a removal may start (not while one is already removing).
REMOVABLE_STATUSES = (
    IntegrationStatus.ACTIVE,
    IntegrationStatus.REAUTH_REQUIRED,
    IntegrationStatus.REMOVAL_FAILED,
)


class RemovalError(Exception):
    """A removal cannot be requested (no integration, one already running...): the message is for the admin."""


@dataclass(frozen=True)
class ChunkReport:
    """One chunk of the deletion, for progress and for the benchmark's lock figures."""

    model: type[Model]
    deleted: int
    total_deleted: int
    seconds: float


ChunkCallback = Callable[[ChunkReport], None]


def model_key(model: type[Model]) -> str:
    """The stable key of a model in counts (``chromeosdevice``...)."""
    return model._meta.model_name or model.__name__.lower()


# -- the sync's side of the race --------------------------------------------------------------------------
def integration_accepts_writes(integration_id: int, *, lock: bool = True) -> bool:
    """May a sync or an action write device data for this integration now?

    Call it with ``lock=True`` INSIDE the transaction that writes (a sync's merge of one page): the integration
    row is then share-locked until that transaction ends, so a removal waits for the write and deletes it, or
    the write sees the removal and must be skipped. Call it with ``lock=False`` between listing pages to stop
    early. False when the integration is gone or is not in a writable status (removing, removal failed).
    """
    table = connection.ops.quote_name(GoogleIntegration._meta.db_table)
    sql = f"SELECT status FROM {table} WHERE id = %s"  # noqa: S608 - table name from the model, id bound
    if lock:
        if not connection.in_atomic_block:
            raise RuntimeError(
                "integration_accepts_writes(lock=True) must run inside the writing transaction."
            )
        sql += " FOR SHARE"
    with connection.cursor() as cursor:
        cursor.execute(sql, [integration_id])
        row = cursor.fetchone()
    return row is not None and row[0] in WRITABLE_STATUSES


# -- counts ------------------------------------------------------------------------------------------------
def removal_counts(tenant: Tenant) -> dict[str, int]:
    """How many rows of each removed model the tenant has (what a removal would delete)."""
    return {model_key(m): m.unscoped.filter(tenant=tenant).count() for m in REMOVED_MODELS}


# -- request -----------------------------------------------------------------------------------------------
def removal_request(
    *, tenant: Tenant, actor: User, retry_of: RemovalRun | None = None, restore_policies: bool = False
) -> RemovalRun:
    """Mark the integration ``removing`` and queue the removal (the task starts after commit)."""
    from chromeos.tasks.removal import removal_run_task

    with transaction.atomic():
        # Waits for an in-flight merge holding the share lock: after this commits, no sync writes again.
        integration = (
            GoogleIntegration.unscoped.select_for_update(no_key=True)
            .only("id", "status", "customer_id", "domain")
            .filter(tenant=tenant)
            .first()
        )
        if integration is None:
            raise RemovalError(_("Aucune intégration Google à supprimer."))
        active = (
            RemovalRun.unscoped.select_for_update()
            .filter(tenant=tenant, status__in=REMOVAL_ACTIVE_STATUSES)
            .first()
        )
        if active is not None and not removal_run_is_stale(active):
            raise RemovalError(_("Une suppression de l'intégration Google est déjà en cours."))
        # Restored if revocation fails. After a failed deletion this is "removal_failed": the token is revoked.
        previous_status = integration.status
        if active is not None:
            _fail(active, _("Interrompue : la tâche de suppression ne s'est jamais terminée."))
            previous_status = (
                IntegrationStatus.REMOVAL_FAILED if active.revocation else active.previous_status
            )
        if previous_status == IntegrationStatus.REMOVING:
            # Left "removing" by a run that no longer exists: whether the grant was revoked is unknown.
            previous_status = IntegrationStatus.REMOVAL_FAILED
        if previous_status not in REMOVABLE_STATUSES:
            raise RemovalError(_("Une suppression de l'intégration Google est déjà en cours."))
        try:
            with transaction.atomic():
                run = RemovalRun.unscoped.create(
                    tenant=tenant,
                    requested_by=actor,
                    requested_by_label=actor.get_username(),
                    retry_of=retry_of,
                    customer_id=integration.customer_id,
                    domain=integration.domain,
                    previous_status=previous_status,
                    expected=removal_counts(tenant),
                    restore_policies=restore_policies,
                )
        except IntegrityError:  # a concurrent request won the one-active-removal constraint
            raise RemovalError(_("Une suppression de l'intégration Google est déjà en cours.")) from None
        GoogleIntegration.unscoped.filter(pk=integration.pk).update(
            status=IntegrationStatus.REMOVING, status_detail="", updated_at=timezone.now()
        )
        audit_record(
            tenant=tenant,
            actor=actor,
            action="google.remove_request",
            target=integration.domain,
            details={"reference": run.support_reference, "retry_of": retry_of.pk if retry_of else None},
        )
        jobs.enqueue(removal_run_task.name, run.pk, kind=RUN_KIND, object_id=run.pk)
    return run


RUN_KIND = "chromeos.removalrun"


def removal_runs_reap(now: datetime) -> int:
    """The reaper of removals (registered in ``mdm.jobs``): a run whose worker died is failed with a reason that
    says what to do, and the integration gets the status a retry needs. Returns how many were failed."""
    failed = 0
    candidates = list(
        jobs.stale_runs(RemovalRun, now, statuses=(RemovalStatus.REVOKING, RemovalStatus.DELETING))
    ) + list(
        jobs.stale_runs(
            RemovalRun, now, timeout=removal_queued_timeout(), statuses=(RemovalStatus.QUEUED,)
        ).filter(started_at__isnull=True)
    )
    for candidate in candidates:
        if candidate.status == RemovalStatus.QUEUED and jobs.publication_pending(RUN_KIND, candidate.pk):
            continue  # the broker is down: the outbox publishes it when it returns
        with transaction.atomic():
            # Locked by its worker for the whole deletion: alive, however long the deletion takes.
            run = (
                RemovalRun.unscoped.select_for_update(skip_locked=True, of=("self",))
                .select_related("tenant", "requested_by")
                .filter(pk=candidate.pk, status=candidate.status)
                .first()
            )
            if run is None:
                continue
            if run.status == RemovalStatus.QUEUED:
                reason = _(
                    "Aucun worker n'a pris cette suppression (file des tâches arrêtée ?) : rien n'a été fait. "
                    "Réessayez ; si cela se reproduit, donnez au support la référence %(reference)s."
                )
            else:
                reason = _(
                    "Interrompue : le worker s'est arrêté pendant la suppression (étape « %(step)s »). Rien n'a "
                    "été supprimé à moitié. Réessayez ; si cela se reproduit, donnez au support la référence "
                    "%(reference)s."
                )
            reason = reason % {"reference": run.support_reference, "step": run.get_status_display()}
            _release_integration(run)
            if _fail(run, reason, now=now):
                failed += 1
                logger.warning(
                    "removal %s reaped (worker died in %s)", run.support_reference, candidate.status
                )
    return failed


def removal_cancel(*, run: RemovalRun, actor: User) -> RemovalRun:
    """An admin cancels a removal that no worker started: the run is cancelled and the integration gets its
    status from before the request back. Once the worker started (policies restored at Google, then the grant
    revoked, then the deletion), it is refused: a half-done removal is worse than a finished one."""
    with transaction.atomic():
        # The same lock order as the request (integration, then run); the worker's first step updates the
        # run's row, so it and this cancel cannot both win.
        GoogleIntegration.unscoped.select_for_update(no_key=True).filter(tenant=run.tenant).first()
        locked = RemovalRun.unscoped.select_for_update().select_related("tenant").get(pk=run.pk)
        if locked.status in (RemovalStatus.REVOKING, RemovalStatus.DELETING):
            raise RemovalError(_("La révocation a commencé : elle doit aller au bout."))
        if locked.status != RemovalStatus.QUEUED:
            raise RemovalError(
                _("Cette suppression est terminée (%(status)s) : rien à annuler.")
                % {"status": locked.get_status_display()}
            )
        locked.cancel(error=_("Annulée par %(user)s avant son début.") % {"user": actor.display_name})
        _release_integration(locked)
        audit_record(
            tenant=locked.tenant,
            actor=actor,
            action="google.remove_cancel",
            target=locked.domain,
            details={"reference": locked.support_reference},
        )
    return locked


def removal_queued_timeout() -> timedelta:
    return timedelta(seconds=int(getattr(settings, "REMOVAL_QUEUED_TIMEOUT_SECONDS", 600)))


def _release_integration(run: RemovalRun) -> None:
    """A dead run leaves the integration "removing": give it the status a retry starts from. Once the grant
    was revoked it is "removal_failed" (it cannot carry on); before, its status from before the removal."""
    status = IntegrationStatus.REMOVAL_FAILED if run.revocation else run.previous_status
    GoogleIntegration.unscoped.filter(tenant=run.tenant, status=IntegrationStatus.REMOVING).update(
        status=status or IntegrationStatus.REMOVAL_FAILED,
        status_detail=_("Suppression interrompue (référence %(reference)s).")
        % {"reference": run.support_reference}
        if status == IntegrationStatus.REMOVAL_FAILED or not status
        else "",
        updated_at=timezone.now(),
    )


def removal_run_is_stale(run: RemovalRun) -> bool:
    """An unfinished run that cannot be running any more: older than the task's hard time limit (the worker
    kills a task at that limit, and its deletion transaction rolls back), or queued that long (its message
    was lost). Such a run is shown as failed and may be retried."""
    if not run.is_active:
        return False
    limit = int(getattr(settings, "CELERY_TASK_TIME_LIMIT", 3600) or 3600) + STALE_MARGIN_SECONDS
    since = run.started_at or run.created_at
    return since is not None and (timezone.now() - since).total_seconds() > limit


# -- execution ---------------------------------------------------------------------------------------------
def progress_key(run_id: int) -> str:
    return f"chromeos:removal:{run_id}:progress"


def removal_progress(run_id: int) -> dict[str, Any] | None:
    """What the deletion has done so far (its transaction is not visible to others until it commits)."""
    value = cache.get(progress_key(run_id))
    return value if isinstance(value, dict) else None


def removal_run_execute(run_id: int) -> RemovalRun:
    """Run one removal to its end. Idempotent: a redelivered task re-runs an unfinished run from revocation."""
    run = RemovalRun.unscoped.select_related("tenant", "requested_by").get(pk=run_id)
    if not run.is_active:
        return run
    with tenant_context(run.tenant):
        return _execute(run)


class RunReaped(Exception):
    """The reaper failed this run while its worker was only slow: the worker stops where it is."""


def _execute(run: RemovalRun) -> RemovalRun:
    try:
        return _execute_steps(run)
    except RunReaped:
        logger.warning(
            "removal %s: failed by the reaper or cancelled meanwhile, stopping", run.support_reference
        )
        run.refresh_from_db()
        return run


def _execute_steps(run: RemovalRun) -> RemovalRun:
    tenant = run.tenant
    _set_status(run, RemovalStatus.REVOKING, started_at=run.started_at or timezone.now())
    # Not the tokens yet: reading them is the revocation's business (and may find them unreadable).
    integration = GoogleIntegration.unscoped.only("id", "status").filter(tenant=tenant).first()
    if integration is None:
        # Already gone (a redelivered task whose deletion had committed): nothing left to do.
        return _succeed(run, deleted={}, revocation=run.revocation or RevocationOutcome.ALREADY_INVALID)

    if run.restore_policies and not run.policies and not run.revocation:
        # While the grant still works: afterwards nothing the console wrote at Google can be undone from here.
        from chromeos.services.policies import policy_assignments_restore_all

        try:
            full = GoogleIntegration.unscoped.select_related("tenant").get(pk=integration.pk)
        except DecryptionError:
            # The token is unreadable: Google cannot be reached for this tenant, so nothing can be restored.
            run.policies = [{"outcome": TOKEN_UNREADABLE}]
        else:
            run.policies = policy_assignments_restore_all(full, on_each=lambda: _beat(run)) or [
                {"outcome": "none"}
            ]
        RemovalRun.unscoped.filter(pk=run.pk).update(policies=run.policies)
        _beat(run)

    revocation: str
    try:
        revocation = _revoke(integration)
    except DecryptionError as exc:
        # No configured key reads the token (a key lost or left out of MDM_ENCRYPTION_KEYS): nobody can use it,
        # and the console cannot revoke it either. The admin asked for the removal and must be able to get it:
        # the data goes, the run says the grant was not revoked (the error page told the admin to remove the
        # console's access in Google Admin).
        logger.warning("removal %s: token unreadable, not revoked: %s", run.support_reference, exc)
        revocation = TOKEN_UNREADABLE
    except GoogleError as exc:
        message = _("Google n'a pas pu révoquer l'accès : %(error)s") % {"error": _error_text(exc)}
        logger.warning("removal %s: revocation failed: %s", run.support_reference, exc)
        # Nothing was deleted and the grant still works: the integration carries on as before.
        GoogleIntegration.unscoped.filter(pk=integration.pk, status=IntegrationStatus.REMOVING).update(
            status=run.previous_status or IntegrationStatus.ACTIVE, updated_at=timezone.now()
        )
        _fail(run, message)
        return run

    # A redelivered task finds the grant already revoked by its first attempt: keep what that attempt saw.
    run.revocation = run.revocation or revocation
    _set_status(run, RemovalStatus.DELETING)
    try:
        with transaction.atomic():
            # The row stays locked until the deletion commits or rolls back: the reaper sees a live worker
            # (its chunks cannot commit a heartbeat), and a worker killed meanwhile releases it at once.
            if not RemovalRun.unscoped.select_for_update().filter(pk=run.pk, status=RemovalStatus.DELETING):
                raise RunReaped
            deleted = integration_data_delete(tenant, on_chunk=lambda report: _report_progress(run, report))
            run.status = RemovalStatus.SUCCEEDED
            run.deleted = deleted
            run.finished_at = timezone.now()
            run.error = ""
            run.save(update_fields=["status", "deleted", "finished_at", "error", "revocation"])
            _audit_success(run)
    except RunReaped:
        raise
    except Exception as exc:  # any failure: the transaction is rolled back, the run must say so
        logger.exception("removal %s: deletion failed, rolled back", run.support_reference)
        message = _("La suppression des données a échoué et a été annulée : %(error)s") % {
            "error": str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        }
        # The grant is revoked, so the integration cannot carry on: it waits for a retry (which will find the
        # token already invalid and go straight to the deletion).
        GoogleIntegration.unscoped.filter(pk=integration.pk).update(
            status=IntegrationStatus.REMOVAL_FAILED,
            status_detail=_("Suppression incomplète (référence %(reference)s).")
            % {"reference": run.support_reference},
            updated_at=timezone.now(),
        )
        _fail(run, message)
        return run
    finally:
        cache.delete(progress_key(run.pk))
    logger.info("removal %s succeeded: %s", run.support_reference, run.deleted)
    return run


# RemovalRun.revocation when the stored token could not be decrypted, so was not revoked at Google.
TOKEN_UNREADABLE = "token_unreadable"  # noqa: S105 (an outcome, not a secret)


def _revoke(integration: GoogleIntegration) -> RevocationOutcome:
    tokens = GoogleIntegration.unscoped.only("refresh_token", "access_token").get(pk=integration.pk)
    token = tokens.refresh_token or tokens.access_token
    if not token:
        return RevocationOutcome.ALREADY_INVALID
    return revoke_token(token)


def integration_data_delete(
    tenant: Tenant, *, chunk_size: int = CHUNK_SIZE, on_chunk: ChunkCallback | None = None
) -> dict[str, int]:
    """Delete every row of :data:`REMOVED_MODELS` owned by ``tenant``; returns the count per model.

    Must run inside the caller's transaction (it is all or nothing). The integration row is locked first, so
    that a sync's share-locked merge finishes before the deletion starts, and no merge starts after.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("integration_data_delete must run inside a transaction.")
    timeout_ms = int(getattr(settings, "CHROMEOS_REMOVAL_LOCK_TIMEOUT_MS", 10_000))
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{timeout_ms}ms"])
    list(GoogleIntegration.unscoped.select_for_update().filter(tenant=tenant).values_list("id", flat=True))
    deleted: dict[str, int] = {}
    for model in REMOVED_MODELS:
        deleted[model_key(model)] = _delete_chunked(model, tenant.pk, chunk_size, on_chunk)
    return deleted


def _delete_chunked(
    model: type[Model], tenant_id: int, chunk_size: int, on_chunk: ChunkCallback | None
) -> int:
    qn = connection.ops.quote_name
    pk_column = model._meta.pk.column if model._meta.pk is not None else None
    assert pk_column, model
    table, pk = qn(model._meta.db_table), qn(pk_column)
    # Keyset on the primary key: each chunk starts where the last ended instead of re-scanning the rows this
    # transaction already deleted (still in the index until commit).
    sql = (
        f"DELETE FROM {table} WHERE {pk} IN ("  # noqa: S608 - identifiers from the model, values bound
        f"SELECT {pk} FROM {table} WHERE tenant_id = %s AND {pk} > %s ORDER BY {pk} LIMIT %s"
        f") RETURNING {pk}"
    )
    total, after = 0, -1
    while True:
        started = timezone.now()
        with connection.cursor() as cursor:
            cursor.execute(sql, [tenant_id, after, chunk_size])
            ids = [row[0] for row in cursor.fetchall()]
        seconds = (timezone.now() - started).total_seconds()
        if not ids:
            return total
        total += len(ids)
        after = max(ids)
        if on_chunk is not None:
            on_chunk(ChunkReport(model=model, deleted=len(ids), total_deleted=total, seconds=seconds))
        if len(ids) < chunk_size:
            return total


def _report_progress(run: RemovalRun, report: ChunkReport) -> None:
    key = model_key(report.model)
    cache.set(
        progress_key(run.pk),
        {"model": key, "done": report.total_deleted, "total": run.expected.get(key, 0)},
        timeout=3600,
    )


def _set_status(run: RemovalRun, status: str, **fields: Any) -> None:
    """Move the run to its next step (with a heartbeat), unless the reaper failed it meanwhile."""
    now = timezone.now()
    values = {"status": status, "revocation": run.revocation, "heartbeat_at": now, **fields}
    if not RemovalRun.unscoped.filter(pk=run.pk, status__in=RemovalRun.ACTIVE_STATUSES).update(**values):
        raise RunReaped
    for name, value in values.items():
        setattr(run, name, value)


def _beat(run: RemovalRun) -> None:
    if not run.beat():
        raise RunReaped


def _succeed(run: RemovalRun, *, deleted: dict[str, int], revocation: str) -> RemovalRun:
    run.status = RemovalStatus.SUCCEEDED
    run.deleted = deleted
    run.revocation = revocation
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "deleted", "revocation", "finished_at"])
    _audit_success(run)
    return run


def _audit_success(run: RemovalRun) -> None:
    audit_record(
        tenant=run.tenant,
        actor=run.requested_by,
        actor_label=run.requested_by_label or None,
        action="google.remove",
        target=run.domain,
        details={
            "reference": run.support_reference,
            "customer_id": run.customer_id,
            "revocation": run.revocation,
            "deleted": run.deleted,
        },
    )


def _fail(run: RemovalRun, message: str, *, now: datetime | None = None) -> bool:
    """Fail the run (if still active: a reaper and a late worker do not both fail it) and audit it."""
    if not run.mark_failed(message, now=now, revocation=run.revocation):
        run.refresh_from_db()
        return False
    audit_record(
        tenant=run.tenant,
        actor=run.requested_by,
        actor_label=run.requested_by_label or None,
        action="google.remove_failed",
        target=run.domain,
        details={"reference": run.support_reference, "error": message, "revocation": run.revocation},
    )
    return True


def _error_text(exc: Exception) -> str:
    if isinstance(exc, GoogleError):
        status = f"HTTP {exc.status}, " if exc.status else ""
        reason = exc.reason or type(exc).__name__
        return f"{status}{reason} — {exc.message}"[:300]
    return str(exc)[:300]
