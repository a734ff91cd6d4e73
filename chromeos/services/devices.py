"""Device actions and remote commands: drafted with a fixed device list, confirmed, run against Google in
Celery, with a result per device, and audited.

Lifecycle of a :class:`DeviceActionJob`::

    device_action_prepare   → draft: the job row and one item per device, fixed now (what the confirmation lists)
    device_action_confirm   → queued: parameters checked, audited, task enqueued on commit
    device_action_job_run   → running → succeeded / partial / failed, chunk by chunk, resumable
    device_commands_poll    → remote commands followed through ``commands.get`` until a final state

Google calls and their limits:

| action                         | Google method                                  | per call            |
|--------------------------------|------------------------------------------------|---------------------|
| disable / re-enable / deprov.  | ``customer.devices.chromeos.batchChangeStatus`` | ≤ 50 devices, result per device |
| move to OU                     | ``chromeosdevices.moveDevicesToOu``             | ≤ 50 devices, all or nothing (a refused batch is retried device by device to find the culprit) |
| annotations                    | ``chromeosdevices.patch``                       | 1 device            |
| remote commands                | ``customer.devices.chromeos.issueCommand``      | 1 device            |
| command state                  | ``customer.devices.chromeos.commands.get``      | 1 command           |

Errors (the taxonomy of ``chromeos.google.errors``): transient errors are retried by the client, then by the
task (``TransientGoogleError`` propagates; the job resumes where it stopped since finished items are kept);
``AuthRevoked`` marks the integration "réautorisation requise" and fails the remaining devices;
``QuotaExhausted`` and ``GooglePermissionDenied`` fail the remaining devices with Google's message;
``GoogleNotFound`` and ``GoogleBadRequest`` fail only the devices concerned.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from chromeos.google.client import GoogleClient
from chromeos.google.errors import (
    AuthRevoked,
    GoogleBadRequest,
    GoogleError,
    GoogleNotFound,
    GoogleOutcomeUnknown,
    GooglePermissionDenied,
    GoogleUnsupported,
    QuotaExhausted,
    TransientGoogleError,
)
from chromeos.google.explain import error_detail
from chromeos.models import (
    ChromeOSDevice,
    CommandState,
    DeviceAction,
    DeviceActionItem,
    DeviceActionJob,
    DeviceChange,
    DeviceCommand,
    GoogleIntegration,
    IntegrationStatus,
    ItemStatus,
    JobStatus,
    OrgUnit,
)
from chromeos.selectors.devices import DeviceFilter, devices_filtered, devices_sorted
from chromeos.services.integration import integration_google_refused
from chromeos.services.removal import integration_accepts_writes
from mdm import jobs
from mdm.models import Tenant, User
from mdm.services import audit_record
from mdm.tenancy import current_tenant

logger = logging.getLogger(__name__)

# Google's limit of devices per batchChangeStatus / moveDevicesToOu call.
GOOGLE_BATCH_LIMIT = 50
# Above this many devices a destructive action asks the admin to type the number of devices.
TYPED_CONFIRMATION_THRESHOLD = 50
# The confirmation page lists this many devices, then says how many more.
CONFIRMATION_PREVIEW = 200
# A draft not confirmed within this delay must be prepared again: the device list it fixed may be stale.
DRAFT_TTL = timedelta(hours=1)
# One task run works this long, then hands over to a fresh task: runs stay far below the broker's
# visibility timeout and the time limits, whatever the number of devices.
RUN_SLICE_SECONDS = 60.0
# Commands are polled at these delays after issue (then every COMMAND_POLL_MAX_DELAY), until a final
# state or COMMAND_TRACKING_MAX_AGE. All far below the Redis visibility timeout (2 h).
COMMAND_POLL_DELAYS = (5, 10, 20, 40, 60, 120)
COMMAND_POLL_MAX_DELAY = 300
COMMAND_TRACKING_MAX_AGE = timedelta(hours=24)

DESTRUCTIVE_ACTIONS = frozenset(
    {DeviceAction.DISABLE, DeviceAction.DEPROVISION, DeviceAction.WIPE_USERS, DeviceAction.POWERWASH}
)
STATUS_ACTIONS = {
    DeviceAction.DISABLE: ("CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_DISABLE", "DISABLED"),
    DeviceAction.REENABLE: ("CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_REENABLE", "ACTIVE"),
    DeviceAction.DEPROVISION: ("CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_DEPROVISION", "DEPROVISIONED"),
}
COMMAND_TYPES = {
    DeviceAction.REBOOT: "REBOOT",
    DeviceAction.SCREENSHOT: "TAKE_A_SCREENSHOT",
    DeviceAction.SET_VOLUME: "SET_VOLUME",
    DeviceAction.WIPE_USERS: "WIPE_USERS",
    DeviceAction.POWERWASH: "REMOTE_POWERWASH",
}
# Google's current (non-deprecated) reasons, in the words of its Admin console.
DEPROVISION_REASONS = {
    "DEPROVISION_REASON_SAME_MODEL_REPLACEMENT": gettext_lazy("Remplacement par un modèle identique"),
    "DEPROVISION_REASON_DIFFERENT_MODEL_REPLACEMENT": gettext_lazy("Remplacement par un autre modèle"),
    "DEPROVISION_REASON_RETIRING_DEVICE": gettext_lazy("Mise hors service du périphérique"),
    "DEPROVISION_REASON_UPGRADE_TRANSFER": gettext_lazy("Transfert de licence de mise à niveau"),
    "DEPROVISION_REASON_NOT_REQUIRED": gettext_lazy("Plus nécessaire"),
    "DEPROVISION_REASON_REPAIR_CENTER": gettext_lazy("Envoi en réparation"),
}
# Google's limits on annotations (the API refuses longer values).
ANNOTATION_LIMITS = {
    "annotated_user": 100,
    "annotated_location": 200,
    "annotated_asset_id": 200,
    "notes": 500,
}
ANNOTATION_GOOGLE_FIELDS = {
    "annotated_user": "annotatedUser",
    "annotated_location": "annotatedLocation",
    "annotated_asset_id": "annotatedAssetId",
    "notes": "notes",
}
FINAL_COMMAND_STATES = frozenset(
    {
        CommandState.EXECUTED_BY_CLIENT,
        CommandState.EXPIRED,
        CommandState.CANCELLED,
        CommandState.FAILED_TO_ISSUE,
    }
)


def is_destructive(action: str) -> bool:
    return action in DESTRUCTIVE_ACTIONS


def is_command(action: str) -> bool:
    return action in COMMAND_TYPES


class ActionError(Exception):
    """A request the service refuses, with a message for the admin."""


# -- drafting and confirming ------------------------------------------------------------------------------
def device_action_prepare(
    *,
    actor: User,
    action: str,
    device_pks: Iterable[int] | None = None,
    flt: DeviceFilter | None = None,
    selection: str = "",
    params: dict[str, Any] | None = None,
) -> DeviceActionJob:
    """Draft a job on the chosen devices of the current tenant: the checked rows, or every device the list's
    filter matches. The device list is fixed here, in one INSERT … SELECT, and never recomputed."""
    if action not in DeviceAction.values:
        raise ActionError(_("Action inconnue."))
    tenant = current_tenant()
    if flt is not None:
        qs = devices_sorted(devices_filtered(flt), flt)
    else:
        pks = sorted({int(pk) for pk in device_pks or []})
        qs = ChromeOSDevice.objects.filter(pk__in=pks).order_by("serial_number", "id")
    # Devices Google no longer lists cannot be acted on.
    qs = qs.filter(removed_at__isnull=True)
    _drafts_purge(tenant)
    with transaction.atomic():
        _check_integration_open(tenant)
        job = DeviceActionJob.objects.create(
            tenant=tenant,
            action=action,
            params=params or {},
            selection=selection[:4000],
            requested_by=actor,
        )
        source = qs.values_list("tenant_id", "id", "device_id", "serial_number")
        sql, sql_params = source.query.sql_with_params()
        item_table = DeviceActionItem._meta.db_table
        with connection.cursor() as cursor:
            # The SELECT's order is the list's order: items' ids (and the confirmation) follow it.
            cursor.execute(
                f"INSERT INTO {item_table} (tenant_id, device_id, google_device_id, serial_number, job_id, "  # noqa: S608
                f"status, message) SELECT s.*, %s, %s, '' FROM ({sql}) AS s",
                (job.pk, ItemStatus.PENDING, *sql_params),
            )
            total = cursor.rowcount
        if total == 0:
            transaction.set_rollback(True)
            raise ActionError(_("Aucun périphérique à traiter : la sélection est vide."))
        job.total = total
        # An index-only count on the partial status index, once, rather than a join at every confirmation view.
        job.inactive_devices = qs.exclude(status="ACTIVE").order_by().count() if is_command(action) else 0
        job.save(update_fields=["total", "inactive_devices"])
    return job


def _check_integration_open(tenant: Tenant) -> None:
    """Refuse a draft or a confirmation once a removal started. Called inside the writing transaction: the
    share lock it takes makes a concurrent ``removal_request`` wait for this job's commit (the removal then
    deletes it) or this check see the removal."""
    integration = GoogleIntegration.unscoped.filter(tenant=tenant).only("id").first()
    if integration is None or not integration_accepts_writes(integration.pk):
        raise ActionError(
            _(
                "L'intégration Google est en cours de suppression (ou n'existe plus) : "
                "aucune action sur les périphériques n'est possible."
            )
        )


def _drafts_purge(tenant: Tenant) -> None:
    """Drafts the admin walked away from: deleted after a day (their items with them)."""
    DeviceActionJob.unscoped.filter(
        tenant=tenant, status=JobStatus.DRAFT, created_at__lt=timezone.now() - timedelta(days=1)
    ).delete()


def draft_expired(job: DeviceActionJob) -> bool:
    return job.created_at < timezone.now() - DRAFT_TTL


def device_action_confirm(*, job: DeviceActionJob, actor: User, params: dict[str, Any]) -> DeviceActionJob:
    """The admin confirmed: record the parameters, audit, and queue the job (through the outbox)."""
    with transaction.atomic():
        job = DeviceActionJob.objects.select_for_update().get(pk=job.pk)
        if job.status != JobStatus.DRAFT:
            raise ActionError(_("Cette action a déjà été confirmée ou annulée."))
        _check_integration_open(job.tenant)
        if draft_expired(job):
            raise ActionError(_("Cette confirmation a expiré : préparez l'action à nouveau."))
        _check_params(job.action, params)
        job.params = params
        job.status = JobStatus.QUEUED
        job.confirmed_at = timezone.now()
        job.confirmed_by = actor
        job.save(update_fields=["params", "status", "confirmed_at", "confirmed_by"])
        audit_record(
            tenant=job.tenant,
            actor=actor,
            action=f"device.{job.action}",
            target=_("%(count)s périphérique(s)") % {"count": job.total},
            details={
                "job_id": job.pk,
                "devices": job.total,
                "params": params,
                "selection": job.selection[:300],
            },
        )
        jobs.enqueue(RUN_TASK, job.pk, kind=JOB_KIND, object_id=job.pk)
    return job


def device_action_retry_failed(*, job: DeviceActionJob, actor: User) -> DeviceActionJob:
    """« Relancer les échecs »: a new DRAFT of the same action and parameters on the job's failed devices only
    (those Google still lists), to go through the normal confirmation. Audited."""
    if job.status not in (JobStatus.PARTIAL, JobStatus.FAILED, JobStatus.CANCELLED) or not job.failed:
        raise ActionError(_("Cette action n'a pas d'échec à relancer."))
    failed = (
        DeviceActionItem.objects.filter(job=job, status=ItemStatus.FAILED, device__isnull=False)
        .order_by("id")
        .values_list("device_id", flat=True)
    )
    retry = device_action_prepare(
        actor=actor,
        action=job.action,
        device_pks=list(failed),
        selection=f"retry:{job.pk}",
        params=job.params,
    )
    DeviceActionJob.objects.filter(pk=retry.pk).update(retry_of=job)
    retry.retry_of = job
    audit_record(
        tenant=retry.tenant,
        actor=actor,
        action="device.retry_failed",
        target=_("%(count)s périphérique(s)") % {"count": retry.total},
        details={"job_id": retry.pk, "source_job_id": job.pk, "devices": retry.total, "action": job.action},
    )
    return retry


def device_action_cancel(*, job: DeviceActionJob, actor: User) -> None:
    """Cancel a job that is not finished: a draft, a queued job, or a running one (devices not yet sent to
    Google are left alone; a chunk being sent finishes and keeps Google's answer)."""
    with transaction.atomic():
        job = DeviceActionJob.objects.select_for_update().get(pk=job.pk)
        if job.status not in (JobStatus.DRAFT, JobStatus.QUEUED, JobStatus.RUNNING):
            raise ActionError(_("Cette action est déjà terminée : elle ne peut plus être annulée."))
        was = job.status
        now = timezone.now()
        DeviceActionItem.objects.filter(job=job, status=ItemStatus.PENDING).update(
            status=ItemStatus.FAILED, message=_("Annulée avant l'envoi à Google."), finished_at=now
        )
        if was != JobStatus.DRAFT:
            _recount(job)
        job.status = JobStatus.CANCELLED
        job.finished_at = now
        job.save(update_fields=["status", "finished_at", "succeeded", "failed"])
        if was != JobStatus.DRAFT:
            audit_record(
                tenant=job.tenant,
                actor=actor,
                action=f"device.{job.action}.cancel",
                target=_("%(count)s périphérique(s)") % {"count": job.total},
                details={"job_id": job.pk, "was": was, "succeeded": job.succeeded},
            )


def _check_params(action: str, params: dict[str, Any]) -> None:
    """Second line of defence behind the form: the task trusts what is stored."""
    if action == DeviceAction.DEPROVISION and params.get("deprovision_reason") not in DEPROVISION_REASONS:
        raise ActionError(_("Google exige un motif pour déprovisionner."))
    if action == DeviceAction.MOVE:
        path = params.get("org_unit_path") or ""
        if not OrgUnit.objects.filter(
            path=path, ldap_org_unit__isnull=False, missing_since__isnull=True
        ).exists():
            raise ActionError(
                _("Unité organisationnelle inconnue ou non prise en charge : %(path)s") % {"path": path}
            )
    if action == DeviceAction.SET_VOLUME and not (0 <= int(params.get("volume", -1)) <= 100):
        raise ActionError(_("Le volume doit être compris entre 0 et 100."))
    if action == DeviceAction.ANNOTATE:
        annotations = params.get("annotations") or {}
        if not annotations or set(annotations) - set(ANNOTATION_LIMITS):
            raise ActionError(_("Cochez au moins un champ à modifier."))
        for name, value in annotations.items():
            if len(value) > ANNOTATION_LIMITS[name]:
                raise ActionError(_("Valeur trop longue pour Google."))


def move_target_org_units() -> list[str]:
    """OUs a device may be moved to: the supported (LDAP-backed) ones once the sync records that link."""
    qs = OrgUnit.objects.filter(ldap_org_unit__isnull=False, missing_since__isnull=True).order_by("path")
    return list(qs.values_list("path", flat=True)[:5000])


# -- running ---------------------------------------------------------------------------------------------
RUN_TASK = "chromeos.tasks.actions.device_action_job_run_task"
JOB_KIND = "chromeos.deviceactionjob"


def device_action_job_run(job_pk: int, *, clock: Callable[[], float] = time.monotonic) -> bool:
    """Run (or resume) a confirmed job for up to RUN_SLICE_SECONDS. Returns True when the job is finished.

    Chunk by chunk: a short transaction takes the next pending items under the job's row lock and marks them
    ``sending`` (committed, with a heartbeat), then Google is called outside any transaction, then the items'
    results are saved. So a duplicate delivery of the task never takes the same devices, and a worker killed
    mid-job leaves finished items recorded, the rest pending, and at most one chunk ``sending`` whose outcome at
    Google is unknown: the reaper fails those (never sends them twice) and resumes the job.
    Raises ``TransientGoogleError`` when Google stays unavailable (the chunk goes back to pending: Google
    answered an error, nothing was done): the task retries later.
    """
    started = clock()
    job = DeviceActionJob.unscoped.select_related("tenant").filter(pk=job_pk).first()
    if job is None:  # deleted with its integration while the task waited (a retry): nothing left to do
        return True
    if job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
        return True
    if job.status == JobStatus.QUEUED:
        now = timezone.now()
        DeviceActionJob.unscoped.filter(pk=job.pk, status=JobStatus.QUEUED).update(
            status=JobStatus.RUNNING, started_at=now, heartbeat_at=now
        )
    integration = GoogleIntegration.unscoped.filter(tenant=job.tenant).first()
    if integration is None or integration.status != IntegrationStatus.ACTIVE:
        _abort(job, _("L'intégration Google n'est pas active : réautorisez-la puis recommencez."))
        return True
    client = GoogleClient(integration, sleep=_beating_sleep(job.pk))
    runner = _RUNNERS[DeviceAction(job.action)]
    # Per-device calls run one device per chunk: a refusal of the whole job (grant revoked) then never
    # loses the record of a command Google already accepted.
    chunk_size = GOOGLE_BATCH_LIMIT if job.action in (*STATUS_ACTIONS, DeviceAction.MOVE) else 1
    while True:
        with transaction.atomic():
            locked = (
                DeviceActionJob.unscoped.select_for_update(skip_locked=True)
                .filter(pk=job.pk, status=JobStatus.RUNNING)
                .select_related("tenant")
                .first()
            )
            if locked is None:  # finished or cancelled, or another worker is claiming its chunk
                return True
            items = list(
                DeviceActionItem.unscoped.filter(job=job, status=ItemStatus.PENDING)
                .select_related("device")
                .order_by("id")[:chunk_size]
            )
            if not items:
                if not DeviceActionItem.unscoped.filter(job=job, status=ItemStatus.SENDING).exists():
                    _finish(locked)
                # else: another delivery is sending the last chunk and finishes the job.
                return True
            DeviceActionItem.unscoped.filter(pk__in=[i.pk for i in items]).update(status=ItemStatus.SENDING)
            DeviceActionJob.unscoped.filter(pk=job.pk).update(heartbeat_at=timezone.now())
        try:
            runner(client, locked, items)
        except TransientGoogleError:
            _release(items)
            raise
        except AuthRevoked as exc:
            integration_google_refused(integration=integration, error=exc)
            _abort(job, _("Google a révoqué l'autorisation : réautorisation requise."))
            return True
        except (QuotaExhausted, GooglePermissionDenied, GoogleUnsupported) as exc:
            _abort(job, _("Google a refusé : %(reason)s") % {"reason": _error_text(exc)})
            return True
        _save_items(locked, items)
        if clock() - started > RUN_SLICE_SECONDS:
            return False


def _release(items: list[DeviceActionItem]) -> None:
    """Google answered a transient error for this chunk: nothing was applied, the items go back to pending."""
    DeviceActionItem.unscoped.filter(pk__in=[i.pk for i in items], status=ItemStatus.SENDING).update(
        status=ItemStatus.PENDING
    )


def _beating_sleep(job_pk: int) -> Callable[[float], None]:
    """The client's backoff sleep, which first says when the job will next show a sign of life."""

    def sleep(seconds: float) -> None:
        device_action_job_waiting(job_pk, seconds)
        time.sleep(seconds)

    return sleep


def device_action_job_waiting(job_pk: int, seconds: float) -> None:
    """The job waits (a Google backoff, a task retry): its heartbeat is due after that wait, not before, and
    the job page says so (« Google ralentit : nouvelle tentative dans N s »)."""
    until = timezone.now() + timedelta(seconds=seconds)
    DeviceActionJob.unscoped.filter(pk=job_pk, status=JobStatus.RUNNING).update(heartbeat_at=until)
    try:
        cache.set(_retry_key(job_pk), until.isoformat(), timeout=int(seconds) + 30)
    except Exception:  # the notice is a courtesy: Redis being down must not break the retry itself
        logger.warning("device job %s: could not record the retry notice", job_pk)


def _retry_key(job_pk: int) -> str:
    return f"chromeos:device-job:{job_pk}:retry-at"


def device_action_job_waits_for_broker(job: DeviceActionJob) -> bool:
    """Queued, and its message still waits in the outbox (the broker refused it): the page says why it waits."""
    return jobs.waits_for_broker(JOB_KIND, job.pk, queued=job.status == JobStatus.QUEUED)


def device_action_job_retry_in(job: DeviceActionJob) -> int | None:
    """Seconds until the next attempt while Google is being retried, for the job page; None otherwise."""
    if job.status != JobStatus.RUNNING:
        return None
    try:
        value = cache.get(_retry_key(job.pk))
    except Exception:
        return None
    moment = parse_datetime(value) if isinstance(value, str) else None
    if moment is None:
        return None
    return max(0, round((moment - timezone.now()).total_seconds()))


def device_action_job_resume(job_pk: int, *, now: datetime | None = None) -> str:
    """The reaper found the job's worker dead (no heartbeat): fail the items it was sending (their outcome at
    Google is unknown and they must not be sent twice), then queue the job again so its pending items continue,
    or fail the rest once it was resumed JOB_MAX_RESUMES times. Returns what was done."""
    now = now or timezone.now()
    with transaction.atomic():
        job = (
            DeviceActionJob.unscoped.select_for_update(skip_locked=True)
            .select_related("tenant")
            .filter(pk=job_pk, status=JobStatus.RUNNING)
            .first()
        )
        if job is None:
            return "busy"
        if not job.is_stale(jobs.heartbeat_timeout(), now=now):
            # Judged again under the lock: the worker beat since the reaper's query, or another reaper (two beat
            # schedulers, a manual run) resumed it first. A live job is not resumed twice.
            return "busy"
        DeviceActionItem.unscoped.filter(job=job, status=ItemStatus.SENDING).update(
            status=ItemStatus.FAILED,
            message=_(
                "Interrompu pendant l'envoi à Google (arrêt du worker) : résultat inconnu, non renvoyé. "
                "Vérifiez le périphérique."
            ),
            finished_at=now,
        )
        job.resumes += 1
        job.heartbeat_at = now
        job.save(update_fields=["resumes", "heartbeat_at"])
        if job.resumes > int(getattr(settings, "JOB_MAX_RESUMES", 5)):
            reason = _("Le worker s'est arrêté %(count)s fois pendant cette action : abandonnée.") % {
                "count": job.resumes
            }
            _abort(job, reason)
            return "failed"
        jobs.enqueue(RUN_TASK, job.pk, kind=JOB_KIND, object_id=job.pk)
    logger.warning("device job %s resumed after its worker died (resume %d)", job_pk, job.resumes)
    return "resumed"


def device_jobs_reap(now: datetime) -> int:
    """The reaper of device jobs (registered in ``mdm.jobs``): RUNNING without a heartbeat for
    JOB_HEARTBEAT_TIMEOUT_SECONDS are resumed; QUEUED that long with nothing left in the outbox (the broker lost
    the message, or a worker died holding it) are published again (a duplicate delivery is harmless)."""
    stale = now - jobs.heartbeat_timeout()
    settled = 0
    dead = jobs.stale_runs(DeviceActionJob, now, statuses=(JobStatus.RUNNING,))
    for pk in dead.values_list("pk", flat=True)[:500]:
        if device_action_job_resume(pk, now=now) != "busy":
            settled += 1
    lost = DeviceActionJob.unscoped.filter(status=JobStatus.QUEUED, confirmed_at__lt=stale)
    for pk in lost.values_list("pk", flat=True)[:500]:
        if jobs.publication_pending(JOB_KIND, pk):
            continue  # the broker is down: the outbox publishes it when it returns
        DeviceActionJob.unscoped.filter(pk=pk, status=JobStatus.QUEUED).update(confirmed_at=now)
        jobs.enqueue(RUN_TASK, pk, kind=JOB_KIND, object_id=pk)
        settled += 1
    return settled


def device_action_job_abort(job_pk: int, reason: str) -> None:
    """Fail what is left of a job (the task gave up on transient errors, or Google refused the whole job)."""
    job = DeviceActionJob.unscoped.select_related("tenant").filter(pk=job_pk).first()
    if job is not None:
        _abort(job, reason)


def _abort(job: DeviceActionJob, reason: str) -> None:
    with transaction.atomic():
        locked = DeviceActionJob.unscoped.select_for_update().filter(pk=job.pk).first()
        if locked is None or locked.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
            return
        DeviceActionItem.unscoped.filter(
            job=locked, status__in=(ItemStatus.PENDING, ItemStatus.SENDING)
        ).update(status=ItemStatus.FAILED, message=reason[:1000], finished_at=timezone.now())
        locked.error = reason[:2000]
        _finish(locked)


def _recount(job: DeviceActionJob) -> None:
    counts = dict(
        DeviceActionItem.unscoped.filter(job=job)
        .values("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    job.succeeded = counts.get(ItemStatus.SUCCEEDED, 0)
    job.failed = counts.get(ItemStatus.FAILED, 0)
    if job.failed == 0:
        job.status = JobStatus.SUCCEEDED
    elif job.succeeded == 0:
        job.status = JobStatus.FAILED
    else:
        job.status = JobStatus.PARTIAL


def _finish(job: DeviceActionJob) -> None:
    _recount(job)
    job.finished_at = timezone.now()
    job.save(update_fields=["succeeded", "failed", "status", "finished_at", "error"])
    audit_record(
        tenant=job.tenant,
        actor=None,
        action=f"device.{job.action}.finished",
        target=_("%(count)s périphérique(s)") % {"count": job.total},
        details={"job_id": job.pk, "succeeded": job.succeeded, "failed": job.failed, "status": job.status},
    )


def _save_items(job: DeviceActionJob, items: list[DeviceActionItem]) -> None:
    now = timezone.now()
    for item in items:
        if item.status == ItemStatus.PENDING:  # a runner must decide every item it was given
            item.status = ItemStatus.FAILED
            item.message = _("Aucune réponse de Google pour ce périphérique.")
        item.finished_at = now
        item.message = item.message[:1000]
    DeviceActionItem.unscoped.bulk_update(items, ["status", "message", "finished_at"])


def _succeed(item: DeviceActionItem, message: str = "") -> None:
    item.status = ItemStatus.SUCCEEDED
    item.message = message


def _fail(item: DeviceActionItem, message: str) -> None:
    item.status = ItemStatus.FAILED
    item.message = message or _("Refusé par Google.")


def _gone(item: DeviceActionItem) -> bool:
    """A device deleted locally since the draft (integration removal): nothing to update, report it."""
    if item.device is None:
        _fail(item, _("Le périphérique n'existe plus dans la console."))
        return True
    return False


def _record_changes(job: DeviceActionJob, changes: dict[int, dict[str, list[Any]]]) -> None:
    now = timezone.now()
    DeviceChange.unscoped.bulk_create(
        [
            DeviceChange(tenant_id=job.tenant_id, device_id=pk, job=job, changes=diff, at=now)
            for pk, diff in changes.items()
            if diff
        ]
    )


def _update_devices(
    job: DeviceActionJob, devices: list[ChromeOSDevice], columns: dict[str, Any], payload: dict[str, Any]
) -> None:
    """After Google said yes: the local rows (and their payload) show the new state before the next sync."""
    if not devices:
        return
    changes = {
        d.pk: {c: [getattr(d, c), v] for c, v in columns.items() if getattr(d, c) != v} for d in devices
    }
    sets = ", ".join(f"{c} = %s" for c in columns)
    table = ChromeOSDevice._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {sets}, payload = payload || %s::jsonb "  # noqa: S608 - columns are ours
            "WHERE tenant_id = %s AND id = ANY(%s)",
            [*columns.values(), json.dumps(payload), job.tenant_id, [d.pk for d in devices]],
        )
    _record_changes(job, changes)


def _error_text(exc: GoogleError) -> str:
    """Google's message, with its reason and HTTP status (a 501 has no useful message): the raw detail that
    the job page explains in words (``chromeos.google.explain``)."""
    return error_detail(exc)


def _google_reason(error: dict[str, Any] | None) -> str:
    if not error:
        return ""
    return str(error.get("message") or error.get("status") or error.get("code") or "")


def _run_status_change(client: GoogleClient, job: DeviceActionJob, items: list[DeviceActionItem]) -> None:
    google_action, new_status = STATUS_ACTIONS[DeviceAction(job.action)]
    live = [i for i in items if not _gone(i)]
    if not live:
        return
    body: dict[str, Any] = {
        "changeChromeOsDeviceStatusAction": google_action,
        "deviceIds": [i.google_device_id for i in live],
    }
    if job.action == DeviceAction.DEPROVISION:
        body["deprovisionReason"] = job.params["deprovision_reason"]
    request = (
        client.directory()
        .customer()
        .devices()
        .chromeos()
        .batchChangeStatus(customerId="my_customer", body=body)
    )
    try:
        response = client.execute(request)
    except (GoogleBadRequest, GoogleNotFound) as exc:
        for item in live:
            _fail(item, exc.message)
        return
    results = {r.get("deviceId"): r for r in response.get("changeChromeOsDeviceStatusResults") or []}
    done: list[ChromeOSDevice] = []
    for item in live:
        result = results.get(item.google_device_id)
        if result is None:
            _fail(item, _("Aucune réponse de Google pour ce périphérique."))
        elif "error" in result:
            _fail(item, _google_reason(result["error"]))
        else:
            _succeed(item)
            assert item.device is not None
            done.append(item.device)
    payload: dict[str, Any] = {"status": new_status}
    if job.action == DeviceAction.DEPROVISION:
        payload["deprovisionReason"] = job.params["deprovision_reason"]
    _update_devices(job, done, {"status": new_status}, payload)


def _org_unit_id(tenant_id: int, path: str) -> str:
    unit = OrgUnit.unscoped.filter(tenant_id=tenant_id, path=path).first()
    # Devices carry Google's OU id without the "id:" prefix that orgunits.list uses.
    return unit.org_unit_id.removeprefix("id:") if unit else ""


def _run_move(client: GoogleClient, job: DeviceActionJob, items: list[DeviceActionItem]) -> None:
    path = job.params["org_unit_path"]
    live = [i for i in items if not _gone(i)]
    if not live:
        return

    def move(batch: list[DeviceActionItem]) -> None:
        request = (
            client.directory()
            .chromeosdevices()
            .moveDevicesToOu(
                customerId="my_customer",
                orgUnitPath=path,
                body={"deviceIds": [i.google_device_id for i in batch]},
            )
        )
        client.execute(request)

    try:
        move(live)
        moved = live
    except (GoogleBadRequest, GoogleNotFound) as exc:
        if len(live) == 1:
            _fail(live[0], exc.message)
            return
        # Google refuses the whole batch for one bad device: ask device by device to know which.
        moved = []
        for item in live:
            try:
                move([item])
                moved.append(item)
            except (GoogleBadRequest, GoogleNotFound) as single:
                _fail(item, single.message)
    for item in moved:
        _succeed(item)
    unit_id = _org_unit_id(job.tenant_id, path)
    devices = [i.device for i in moved if i.device is not None]
    _update_devices(
        job,
        devices,
        {"org_unit_path": path, "org_unit_id": unit_id},
        {"orgUnitPath": path, **({"orgUnitId": unit_id} if unit_id else {})},
    )


def _run_annotate(client: GoogleClient, job: DeviceActionJob, items: list[DeviceActionItem]) -> None:
    annotations: dict[str, str] = job.params["annotations"]
    body = {ANNOTATION_GOOGLE_FIELDS[name]: value for name, value in annotations.items()}
    for item in items:
        if _gone(item):
            continue
        request = (
            client.directory()
            .chromeosdevices()
            .patch(customerId="my_customer", deviceId=item.google_device_id, projection="BASIC", body=body)
        )
        try:
            response = client.execute(request)
        except (GoogleBadRequest, GoogleNotFound) as exc:
            _fail(item, exc.message)
            continue
        _succeed(item)
        device = item.device
        assert device is not None
        columns = {name: response.get(ANNOTATION_GOOGLE_FIELDS[name], "") or "" for name in annotations}
        payload = {ANNOTATION_GOOGLE_FIELDS[name]: value for name, value in columns.items()}
        _update_devices(job, [device], columns, payload)


def _run_command(client: GoogleClient, job: DeviceActionJob, items: list[DeviceActionItem]) -> None:
    command_type = COMMAND_TYPES[DeviceAction(job.action)]
    payload = {"volume": int(job.params["volume"])} if job.action == DeviceAction.SET_VOLUME else {}
    issued = False
    for item in items:
        if _gone(item):
            continue
        device = item.device
        assert device is not None
        body: dict[str, Any] = {"commandType": command_type}
        if payload:
            body["payload"] = json.dumps(payload)
        request = (
            client.directory()
            .customer()
            .devices()
            .chromeos()
            .issueCommand(customerId="my_customer", deviceId=item.google_device_id, body=body)
        )
        command = DeviceCommand(
            tenant_id=job.tenant_id,
            device=device,
            command_type=command_type,
            payload=payload,
            issued_by_id=job.requested_by_id,
            job=job,
        )
        try:
            # Never sent twice: a command Google received without answering in time may already be running.
            response = client.execute(request, resend_unanswered=False)
        except GoogleOutcomeUnknown:
            _fail(
                item,
                _(
                    "Google n'a pas répondu à temps : la commande a peut-être été reçue. Résultat inconnu, "
                    "non renvoyée (vérifiez le périphérique avant de la relancer)."
                ),
            )
            continue
        except (GoogleBadRequest, GoogleNotFound) as exc:
            command.state = CommandState.FAILED_TO_ISSUE
            command.result_detail = exc.message[:1000]
            command.finished_at = timezone.now()
            command.save()
            _fail(item, exc.message)
            continue
        command.command_id = str(response.get("commandId", ""))
        command.save()
        issued = True
        _succeed(item, _("Commande acceptée par Google (n° %(id)s).") % {"id": command.command_id})
    if issued:
        job_pk = job.pk
        transaction.on_commit(lambda: device_commands_poll_schedule(job_pk, 0))


_RUNNERS: dict[DeviceAction, Callable[[GoogleClient, DeviceActionJob, list[DeviceActionItem]], None]] = {
    DeviceAction.DISABLE: _run_status_change,
    DeviceAction.REENABLE: _run_status_change,
    DeviceAction.DEPROVISION: _run_status_change,
    DeviceAction.MOVE: _run_move,
    DeviceAction.ANNOTATE: _run_annotate,
    **dict.fromkeys(COMMAND_TYPES, _run_command),
}


# -- remote commands -------------------------------------------------------------------------------------
POLL_KIND = "chromeos.devicecommandpoll"


def device_commands_poll_schedule(job_pk: int, attempt: int) -> None:
    """Follow the job's commands again after ``command_poll_delay(attempt)``. The broker down: the poll waits in
    the outbox (published, without the wait, when the broker is back) instead of failing the caller, which
    would leave a chunk Google accepted « sending » and its commands never followed."""
    from chromeos.tasks.actions import device_commands_poll_task

    try:
        device_commands_poll_task.apply_async((job_pk, attempt), countdown=command_poll_delay(attempt))
    except Exception as error:  # kombu's OperationalError, a socket error: whatever the broker raised
        logger.warning("command poll of job %s waits in the outbox: %s", job_pk, error)
        jobs.enqueue(device_commands_poll_task.name, job_pk, attempt, kind=POLL_KIND, object_id=job_pk)


POLL_TASK = "chromeos.tasks.actions.device_commands_poll_task"


def device_commands_reap(now: datetime) -> int:
    """The reaper of remote-command tracking (registered in ``mdm.jobs``). A job's poll chain reschedules itself;
    it is lost when the broker refused the next poll, a worker died holding it, or the integration was not active
    for a while (polls stop then). A job whose unfinished commands were not polled for
    ``COMMAND_POLL_MAX_DELAY`` + the heartbeat timeout gets a new poll (through the outbox), once its integration
    is active; commands issued more than ``COMMAND_TRACKING_MAX_AGE`` ago are settled without Google (« suivi
    arrêté »), whatever the integration's state: no job waits for its devices forever. Returns the jobs acted on.
    """
    unfinished = DeviceCommand.unscoped.filter(finished_at__isnull=True, job__isnull=False).exclude(
        command_id=""
    )
    settled = 0
    for command in unfinished.filter(issued_at__lt=now - COMMAND_TRACKING_MAX_AGE).select_related("device")[
        :500
    ]:
        command.result_detail = _("Suivi arrêté : pas d'état final après 24 h.")
        command.finished_at = now
        command.save(update_fields=["result_detail", "finished_at", "updated_at"])
        _command_item_outcome(command, *command_outcome(command))
        settled += 1
    silent = now - timedelta(seconds=COMMAND_POLL_MAX_DELAY) - jobs.heartbeat_timeout()
    active_tenants = GoogleIntegration.unscoped.filter(status=IntegrationStatus.ACTIVE).values("tenant_id")
    lost = (
        unfinished.filter(tenant_id__in=active_tenants)
        .annotate(_last_sign=Greatest("last_polled_at", "issued_at"))
        .filter(_last_sign__lt=silent)
        .values_list("job_id", flat=True)
        .distinct()
    )
    for job_pk in list(lost[:500]):
        if jobs.publication_pending(POLL_KIND, job_pk):
            continue  # the broker is down: the outbox publishes it when it returns
        with transaction.atomic():
            unfinished.filter(job_id=job_pk).update(last_polled_at=now)
            jobs.enqueue(POLL_TASK, job_pk, len(COMMAND_POLL_DELAYS), kind=POLL_KIND, object_id=job_pk)
        settled += 1
    return settled


def command_poll_delay(attempt: int) -> int:
    if attempt < len(COMMAND_POLL_DELAYS):
        return COMMAND_POLL_DELAYS[attempt]
    return COMMAND_POLL_MAX_DELAY


def device_command_poll(client: GoogleClient, command: DeviceCommand, *, now: datetime | None = None) -> bool:
    """Ask Google for one command's state and record it. Returns True when the command is final."""
    now = now or timezone.now()
    if command.state in FINAL_COMMAND_STATES or command.finished_at is not None:
        return True
    request = (
        client.directory()
        .customer()
        .devices()
        .chromeos()
        .commands()
        .get(customerId="my_customer", deviceId=command.device.device_id, commandId=command.command_id)
    )
    command.polls += 1
    command.last_polled_at = now
    fields = ["polls", "last_polled_at", "updated_at"]
    try:
        response = client.execute(request)
    except GoogleNotFound as exc:
        # Google no longer knows the command (or the device): nothing more will come.
        command.result_detail = exc.message[:1000]
        command.finished_at = now
        command.save(update_fields=[*fields, "result_detail", "finished_at"])
        _command_item_outcome(command, False, _("Google ne connaît plus cette commande : résultat inconnu."))
        return True
    state = response.get("state") or command.state
    if state in CommandState.values:
        command.state = state
    result = response.get("commandResult") or {}
    command.result = result.get("result", "") or ""
    detail = result.get("errorMessage") or ""
    if result.get("commandResultPayload"):
        detail = f"{detail}\n{result['commandResultPayload']}".strip()
    command.result_detail = detail[:1000]
    fields += ["state", "result", "result_detail"]
    final = command.state in FINAL_COMMAND_STATES
    if final:
        executed = parse_datetime(result.get("executeTime", "") or "")
        command.finished_at = executed or now
        fields.append("finished_at")
    elif now - command.issued_at > COMMAND_TRACKING_MAX_AGE:
        command.result_detail = _("Suivi arrêté : pas d'état final après 24 h.")
        command.finished_at = now
        fields.append("finished_at")
        final = True
    command.save(update_fields=fields)
    if final:
        _command_item_outcome(command, *command_outcome(command))
    return final


def command_outcome(command: DeviceCommand) -> tuple[bool, str]:
    """What a finished command means for its device, in the admin's words: (succeeded, message).

    Only the device's own report of a success counts as one: a command Google accepted but that failed on the
    device, expired before it was fetched, was cancelled, or whose tracking gave up, is a failure.
    """
    detail = command.result_detail.strip()
    if command.state == CommandState.EXECUTED_BY_CLIENT and command.result != "FAILURE":
        return True, _("Exécutée par le périphérique.")
    if command.state == CommandState.EXECUTED_BY_CLIENT:
        message = _("Le périphérique a signalé un échec de la commande.")
    elif command.state == CommandState.EXPIRED:
        message = _("La commande a expiré : le périphérique ne l'a pas récupérée à temps (hors ligne ?).")
    elif command.state == CommandState.CANCELLED:
        message = _("La commande a été annulée avant d'être exécutée.")
    elif command.state == CommandState.FAILED_TO_ISSUE:
        message = _("Google a refusé d'envoyer la commande.")
    else:
        message = _("Résultat inconnu : le suivi de la commande s'est arrêté avant un état final.")
    if detail:
        message = _("%(message)s Détail : %(detail)s") % {"message": message, "detail": detail}
    return False, message


def _command_item_outcome(command: DeviceCommand, succeeded: bool, message: str) -> None:
    """Carry a command's final outcome to its job's item, and the job's counts and status with it."""
    if command.job_id is None:
        return
    with transaction.atomic():
        job = DeviceActionJob.unscoped.select_for_update().filter(pk=command.job_id).first()
        if job is None:
            return
        DeviceActionItem.unscoped.filter(job=job, google_device_id=command.device.device_id).exclude(
            status=ItemStatus.PENDING
        ).update(
            status=ItemStatus.SUCCEEDED if succeeded else ItemStatus.FAILED,
            message=message[:1000],
            finished_at=timezone.now(),
        )
        if job.status in (JobStatus.SUCCEEDED, JobStatus.PARTIAL, JobStatus.FAILED):
            _recount(job)
            job.save(update_fields=["succeeded", "failed", "status"])


def device_commands_poll(job_pk: int) -> bool:
    """Poll every unfinished command of a job. Returns True when none is left to follow."""
    job = DeviceActionJob.unscoped.select_related("tenant").filter(pk=job_pk).first()
    if job is None:
        return True
    integration = GoogleIntegration.unscoped.filter(tenant=job.tenant).first()
    if integration is None or integration.status != IntegrationStatus.ACTIVE:
        return True  # nothing can be asked; the sync's own handling tells the admin why
    client = GoogleClient(integration)
    pending = DeviceCommand.unscoped.filter(job=job, finished_at__isnull=True).select_related("device")
    # A sign of life of this job's poll chain, even if Google fails below: the reaper only restarts dead chains.
    pending.update(last_polled_at=timezone.now())
    remaining = 0
    for command in pending.exclude(state__in=FINAL_COMMAND_STATES).exclude(command_id=""):
        try:
            if not device_command_poll(client, command):
                remaining += 1
        except AuthRevoked as exc:
            integration_google_refused(integration=integration, error=exc)
            return True
        except (QuotaExhausted, GooglePermissionDenied, GoogleBadRequest) as exc:
            logger.warning("command poll refused tenant=%s job=%s: %s", job.tenant_id, job.pk, exc)
            remaining += 1
    return remaining == 0
