"""Run and lock: the run rows (requested, queued, running, finished), the per-tenant advisory lock, the run's
log, and the reaping of runs whose worker died or whose message was lost."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from chromeos.models import GoogleIntegration, IntegrationStatus, SyncRun, SyncStatus, SyncTrigger
from mdm import jobs
from mdm.locks import SharedAdvisoryLock, advisory_lock_held
from mdm.services import audit_record

if TYPE_CHECKING:
    from mdm.models import User

# The package's name, as before the split: log filters and dashboards keep matching.
logger = logging.getLogger("chromeos.services.sync")


# First key of the two-int advisory lock ("CROS"); the second is the tenant id.
LOCK_NAMESPACE = 0x43524F53
ACTIVE_STATUSES = (SyncStatus.QUEUED, SyncStatus.RUNNING)
FINISHED_STATUSES = (
    SyncStatus.SUCCEEDED,
    SyncStatus.PARTIAL,
    SyncStatus.GUARDED,
    SyncStatus.FAILED,
    SyncStatus.SKIPPED,
    SyncStatus.CANCELLED,
)
# Runs whose data is in: these move last_sync_at and the schedule.
COMPLETED_STATUSES = (SyncStatus.SUCCEEDED, SyncStatus.PARTIAL, SyncStatus.GUARDED)
MAX_LOG_LINES = 200
REDELIVERY_LOCK_WAIT = 10.0

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
    "parallel_listed": gettext_noop(
        "Liste en parallèle par unité organisationnelle : %(partitions)s partitions, %(threads)s fils, "
        "%(counts)s décomptes Google, complète (%(seconds)s s)."
    ),
    "parallel_unplanned": gettext_noop("Liste en parallèle impossible (%(reason)s) : liste en séquence."),
    "parallel_unproven": gettext_noop(
        "La liste en parallèle ne correspond pas aux décomptes de Google (%(reason)s) : reprise de la liste "
        "en séquence, aucun retrait sur sa foi."
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
    "cancelled": gettext_noop("Synchronisation annulée par %(user)s."),
    "too_long": gettext_noop(
        "Arrêtée après %(seconds)s s, au-delà de la durée maximale d'une synchronisation (%(limit)s s, "
        "CHROMEOS_SYNC_MAX_SECONDS) : les périphériques déjà fusionnés restent, aucun n'est retiré."
    ),
    "cancel_stopped": gettext_noop(
        "Arrêtée après %(pages)s pages : les périphériques déjà fusionnés restent, aucun n'est retiré "
        "(une liste interrompue ne prouve aucune absence)."
    ),
}


class SyncNotAllowed(Exception):
    """A sync cannot be requested now; ``message`` says why, for the page."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SyncCancelled(Exception):
    """The run was cancelled while it ran: the worker stops where it is, removes nothing, keeps what it merged."""


class SyncAborted(Exception):
    """Stop the run: ``key`` is a ``MSG`` key, logged as the run's error."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(MSG[key] % params)
        self.key = key
        self.params = params


def _queued_timeout() -> timedelta:
    return timedelta(seconds=int(getattr(settings, "CHROMEOS_SYNC_QUEUED_TIMEOUT_SECONDS", 1800)))


def _max_seconds() -> float:
    return float(getattr(settings, "CHROMEOS_SYNC_MAX_SECONDS", 10800))


def deadline_check(started: float) -> None:
    """Stop the run (failed, nothing removed) once it has run longer than ``CHROMEOS_SYNC_MAX_SECONDS`` since
    ``started`` (``time.monotonic()``): checked at each page and merge and before the final step, since the
    threads pool does not enforce Celery's time limits."""
    limit = _max_seconds()
    elapsed = time.monotonic() - started
    if limit > 0 and elapsed > limit:
        raise SyncAborted("too_long", seconds=round(elapsed, 1), limit=f"{limit:g}")


# -- the per-tenant lock ---------------------------------------------------------------------------------------
class SyncLock(SharedAdvisoryLock):
    """The per-tenant sync lock, held for the whole run on the process's one lock connection (see
    ``mdm.locks.LockSession``: a threads worker's 16 syncs share one connection, not 16)."""

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


def _log(run: SyncRun, level: str, key: str, *, write: bool = True, **params: Any) -> None:
    """Add a line to the run's log. ``write`` False: only in ``run.log``, for the caller's next write of the
    row (each write rewrites the whole log: one write instead of two, e.g. inside the final transaction, which
    saves the log with the run's outcome)."""
    run.log = [*run.log, _log_entry(level, key, **params)][-MAX_LOG_LINES:]
    if write:
        # A cancelled run's log is the canceller's (who, when) until its worker notices and adds its last line.
        SyncRun.unscoped.filter(pk=run.pk).exclude(status=SyncStatus.CANCELLED).update(log=run.log)
    getattr(logger, "warning" if level == "warning" else "error" if level == "error" else "info")(
        "sync tenant=%s run=%s %s", run.tenant_id, run.pk, MSG[key] % params
    )


def _fail(run: SyncRun, key: str, **params: Any) -> bool:
    """Fail the run if it is still in the active state this object saw (``JobRun.mark_failed``: a worker that
    finished between a reaper's read and its check keeps its result, two reapers do not both fail it). True if
    this call failed it; otherwise ``run`` is brought up to date."""
    error = MSG[key] % params
    log = [*run.log, _log_entry("error", key, **params)][-MAX_LOG_LINES:]
    if run.mark_failed(error, log=log):
        logger.warning("sync tenant=%s run=%s failed: %s", run.tenant_id, run.pk, run.error)
        return True
    # Finished meanwhile (its worker wins), or deleted with its integration by a removal: then what the caller
    # holds still says how it ended.
    fresh = SyncRun.unscoped.filter(pk=run.pk).first() or SyncRun(
        status=SyncStatus.FAILED, error=error, finished_at=timezone.now(), log=log
    )
    run.status, run.error, run.finished_at, run.log = fresh.status, fresh.error, fresh.finished_at, fresh.log
    return False


def _reap_dead_runs(integration: GoogleIntegration, *, except_pk: int | None = None) -> list[SyncRun]:
    """Mark failed the RUNNING runs of a tenant whose lock we now hold: their process is gone."""
    dead = list(
        SyncRun.unscoped.filter(integration=integration, status=SyncStatus.RUNNING).exclude(pk=except_pk)
    )
    return [run for run in dead if _fail(run, "reaped", number=run.pk)]


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
    """The reaper of ChromeOS syncs (registered in ``mdm.jobs``): see :func:`_reap_lost_runs`; then the staged
    rows of runs that are over go (``staging.discard_stale_stages``), and the staging tables are vacuumed
    (``staging.vacuum_stages``: their space is reused, whether autovacuum runs or not)."""
    from chromeos.services.sync.staging import discard_stale_stages, vacuum_stages

    reaped = _reap_lost_runs()
    discard_stale_stages()
    vacuum_stages()
    return reaped


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


def sync_cancel(*, integration: GoogleIntegration, run_id: int, user: User) -> SyncRun:
    """An operator cancels a queued or running sync (« Annuler la synchronisation »).

    Queued: cancelled at once; the worker that later gets its message finds it finished and does nothing.
    Running: cancelled at once too; its worker sees it at its next page or batch (or, at the latest, when it
    locks the run for the final merge) and stops: what it merged stays, nothing is removed. Raises
    ``SyncRun.DoesNotExist`` for a run that is not this tenant's, ``SyncNotAllowed`` for a finished one.
    """
    run = SyncRun.objects.get(integration=integration, pk=run_id)
    # Two tries: a queued run a worker takes between our read and our update is cancelled running.
    for _attempt in range(2):
        if run.status not in ACTIVE_STATUSES:
            raise SyncNotAllowed(
                str(
                    _("La synchronisation n° %(number)s est terminée (%(status)s) : rien à annuler.")
                    % {"number": run.pk, "status": run.get_status_display()}
                )
            )
        was = run.status
        entry = _log_entry("warning", "cancelled", user=user.display_name)
        if run.cancel(
            log=[*run.log, entry][-MAX_LOG_LINES:], error=MSG["cancelled"] % {"user": user.display_name}
        ):
            audit_record(
                tenant=integration.tenant,
                actor=user,
                action="chromeos.sync.cancel",
                target=integration.domain,
                details={"run_id": run.pk, "was": str(was), "pages": run.pages},
            )
            logger.info("sync tenant=%s run=%s cancelled (was %s)", run.tenant_id, run.pk, was)
            return run
        run.refresh_from_db()
    raise SyncNotAllowed(str(_("La synchronisation vient de changer d'état : réessayez.")))


def _reap_lost_runs() -> int:
    """Runs left RUNNING by a killed worker, or QUEUED by a lost message, are marked failed."""
    reaped = 0
    for run in SyncRun.unscoped.filter(status__in=ACTIVE_STATUSES).select_related("integration"):
        if not sync_run_is_alive(run) and _fail(
            run, "never_started" if run.status == SyncStatus.QUEUED else "reaped", number=run.pk
        ):
            reaped += 1
    return reaped
