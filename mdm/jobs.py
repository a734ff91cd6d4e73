"""Every background job's life cycle in one place: publishing through a transactional outbox, the notice shown
when the broker is down, and one reaper for every kind of job.

Publishing. A service that starts a job writes the job row and calls :func:`enqueue` in the SAME transaction:
an :class:`~mdm.models.OutboxMessage` row is written next to the job row, and published to Celery right after
the commit (then deleted). If the broker is down the publish fails quietly: the page says « la file des tâches
est indisponible, l'action partira dès son retour » (:class:`BrokerNoticeMiddleware`) instead of a 500, and the
message stays in the outbox. The reaper publishes it again every minute until the broker takes it. A process
killed between the commit and the publish leaves the message in the outbox too. So committed work is always
eventually published; an outage delays it, never loses it. A message may be published twice (the broker took
it but the delete did not commit): every task is idempotent on its row's state.

Every row has one shape, :class:`mdm.models.JobRun` (status, times, heartbeat, resumes, error, log, and
``is_stale`` / ``beat`` / ``mark_failed``); :func:`stale_runs` is its reapers' query.

Reaping. Beat runs :func:`jobs_reap` every ``JOBS_REAP_SECONDS`` (60 s): the outbox first, then each kind's
reaper, registered by its app (``register_reaper``). How each kind notices a dead worker, and what it does then:

| kind             | row                     | dead worker noticed by                                   | then                          |
|------------------|-------------------------|----------------------------------------------------------|-------------------------------|
| ChromeOS sync    | ``SyncRun``             | its tenant's advisory lock is free (at once)             | failed « interrompue », the next run continues |
| LDAP sync        | ``LdapSyncRun``         | its tenant's advisory lock is free (at once); queued and not taken for ``LDAP_SYNC_QUEUED_TIMEOUT_SECONDS`` | failed with the reason |
| device job       | ``DeviceActionJob``     | ``heartbeat_at`` older than ``JOB_HEARTBEAT_TIMEOUT_SECONDS`` (beats per chunk and during Google backoffs) | resumed: items sent when the worker died are failed « résultat inconnu », pending ones continue; failed after ``JOB_MAX_RESUMES`` |
| policy job       | ``PolicyAssignment``    | applying / removing unchanged for ``REAP_AFTER`` (30 min, policies service) | failed with the reason; the admin applies / removes again |
| removal          | ``RemovalRun``          | ``heartbeat_at`` (each step) older than ``JOB_HEARTBEAT_TIMEOUT_SECONDS`` and its row not locked by the deletion; queued ``REMOVAL_QUEUED_TIMEOUT_SECONDS`` and not in the outbox | failed with a reason (retry, support reference); the admin retries |
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.db.models import F, QuerySet
from django.db.models.functions import Greatest
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from mdm.models import JobRun, OutboxMessage

logger = logging.getLogger(__name__)

# The on-commit publish goes first; the reaper only takes messages older than this.
OUTBOX_GRACE = timedelta(seconds=15)
OUTBOX_BATCH = 500

_broker_unavailable: ContextVar[bool] = ContextVar("mdm_broker_unavailable", default=False)
_reapers: dict[str, Callable[[datetime], int]] = {}


# -- publishing -----------------------------------------------------------------------------------------------
def enqueue(task_name: str, *args: Any, kind: str, object_id: int) -> OutboxMessage:
    """Call inside the transaction that writes the job row: the message is committed with it, then published."""
    message = OutboxMessage.objects.create(
        task_name=task_name, args=list(args), kind=kind, object_id=object_id
    )
    transaction.on_commit(lambda: publish(message.pk))
    return message


def publish(message_pk: int) -> bool:
    """Send one outbox message to the broker and forget it. False (and the message kept) if the broker failed.

    The message is claimed (``last_attempt_at``) in a short transaction and sent outside it: a publisher never
    holds a transaction open on the broker, and an eager task (tests) runs as it would from a worker."""
    from celery import current_app

    now = timezone.now()
    with transaction.atomic():
        message = OutboxMessage.objects.select_for_update(skip_locked=True).filter(pk=message_pk).first()
        if message is None:  # already published, or being claimed by another process
            return True
        OutboxMessage.objects.filter(pk=message.pk).update(attempts=F("attempts") + 1, last_attempt_at=now)
    try:
        # apply_async of the registered task (not send_task): eager in tests, routed like .delay().
        _task(current_app, message.task_name).apply_async(args=message.args)
    except Exception as error:
        _broker_unavailable.set(True)
        logger.warning(
            "could not publish %s%s (attempt %d): %s",
            message.task_name,
            message.args,
            message.attempts + 1,
            error,
        )
        OutboxMessage.objects.filter(pk=message.pk).update(last_error=str(error)[:1000])
        return False
    OutboxMessage.objects.filter(pk=message.pk).delete()
    return True


def _task(app: Any, name: str) -> Any:
    if name not in app.tasks:
        # A web process registers tasks lazily: load every app's tasks module (what a worker does at start).
        app.loader.import_default_modules()
    return app.tasks[name]


def publication_pending(kind: str, object_id: int) -> bool:
    """Is a message for this job row still waiting in the outbox (the broker was down)?"""
    return OutboxMessage.objects.filter(kind=kind, object_id=object_id).exists()


def outbox_discard(kind: str, object_id: int) -> int:
    """Forget the messages of a job withdrawn before it was published (its task would do nothing anyway)."""
    deleted, _by_model = OutboxMessage.objects.filter(kind=kind, object_id=object_id).delete()
    return deleted


def waits_for_broker(kind: str, object_id: int, *, queued: bool) -> bool:
    """Should the job's page say « La file des tâches est indisponible : l'action partira dès son retour. »?
    Yes while the job is not taken yet (``queued``, in the kind's own terms) and its message is still in the
    outbox (the broker refused it). Every job page asks this one question (template ``_waits_for_broker.html``)."""
    return queued and publication_pending(kind, object_id)


def outbox_flush(now: datetime | None = None) -> int:
    """Publish again what the broker refused (or what a dead process never sent). Returns how many went out."""
    now = now or timezone.now()
    sent = 0
    for pk in (
        OutboxMessage.objects.filter(created_at__lt=now - OUTBOX_GRACE)
        .order_by("pk")
        .values_list("pk", flat=True)[:OUTBOX_BATCH]
    ):
        if publish(pk):
            sent += 1
        else:
            break  # the broker is still down: the next tick tries again
    return sent


# -- reaping --------------------------------------------------------------------------------------------------
def register_reaper(name: str, reaper: Callable[[datetime], int]) -> None:
    """An app's reaper for its kind of job: given now, it settles that kind's dead rows and says how many."""
    _reapers[name] = reaper


def reapers() -> Iterator[tuple[str, Callable[[datetime], int]]]:
    yield from sorted(_reapers.items())


def jobs_reap(now: datetime | None = None) -> dict[str, int]:
    """Beat's tick: the outbox, then every kind's reaper. One kind failing never stops the others."""
    now = now or timezone.now()
    done = {"outbox": outbox_flush(now)}
    for name, reaper in reapers():
        try:
            done[name] = reaper(now)
        except Exception:
            logger.exception("reaper %s failed", name)
            done[name] = -1
    acted = {k: v for k, v in done.items() if v}
    if acted:
        logger.info("jobs reaped: %s", acted)
    return done


def heartbeat_timeout() -> timedelta:
    return timedelta(seconds=int(getattr(settings, "JOB_HEARTBEAT_TIMEOUT_SECONDS", 300)))


def stale_runs(
    model: type[JobRun],
    now: datetime,
    *,
    timeout: timedelta | None = None,
    statuses: tuple[str, ...] | None = None,
) -> QuerySet[Any]:
    """Rows of a kind that are active (or in ``statuses``) and gave no sign of life (heartbeat, start or
    request, the latest of them: :attr:`JobRun.last_sign_of_life`) for ``timeout`` (the heartbeat timeout by
    default): their worker is presumed dead. The query form of :meth:`JobRun.is_stale`, for a reaper."""
    limit = now - (timeout if timeout is not None else heartbeat_timeout())
    return (
        model._base_manager.filter(status__in=statuses or model.ACTIVE_STATUSES)
        .annotate(_last_sign_of_life=Greatest("heartbeat_at", "started_at", "created_at"))
        .filter(_last_sign_of_life__lt=limit)
    )


# -- the notice -----------------------------------------------------------------------------------------------
def broker_was_unavailable() -> bool:
    return _broker_unavailable.get()


class BrokerNoticeMiddleware:
    """When a request committed work the broker refused, tell the user it is delayed, not lost.

    Placed after MessageMiddleware: the message is added before that middleware stores the messages."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _broker_unavailable.set(False)
        try:
            response = self.get_response(request)
            if _broker_unavailable.get() and hasattr(request, "_messages"):
                messages.warning(
                    request, _("La file des tâches est indisponible : l'action partira dès son retour.")
                )
            return response
        finally:
            _broker_unavailable.reset(token)
