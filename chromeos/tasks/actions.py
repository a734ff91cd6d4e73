"""Device actions and remote commands (the devices area): thin tasks over ``chromeos.services.devices``.

Retry policy: Google's transient errors are first retried by the client (backoff with jitter); when they
outlast it, the task retries itself with a growing countdown (60 s, 120 s, … capped at 10 min, far below the
broker's visibility timeout), up to ``ACTION_MAX_RETRIES`` times, then fails what is left of the job with
Google's message. Other Google errors are handled per device or per job by the service.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.utils.translation import gettext as _

from chromeos.google.errors import TransientGoogleError
from chromeos.services import devices as services
from mdm import jobs

__all__ = ["device_action_job_run_task", "device_commands_poll_task"]

ACTION_MAX_RETRIES = 5
RETRY_BASE_SECONDS = 60
RETRY_MAX_SECONDS = 600


def _retry_countdown(retries: int) -> int:
    return min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2**retries)


@shared_task(bind=True, max_retries=ACTION_MAX_RETRIES, acks_late=True)
def device_action_job_run_task(self: Any, job_pk: int) -> None:
    try:
        finished = services.device_action_job_run(job_pk)
    except TransientGoogleError as exc:
        if self.request.retries >= ACTION_MAX_RETRIES:
            services.device_action_job_abort(
                job_pk, _("Google est resté indisponible : %(reason)s") % {"reason": exc.message}
            )
            return
        countdown = _retry_countdown(self.request.retries)
        # The reaper must not take the wait for a dead worker.
        services.device_action_job_waiting(job_pk, countdown)
        raise self.retry(exc=exc, countdown=countdown) from exc
    if not finished:
        # A slice of work is done: hand over to a fresh task (short runs, well within every time limit),
        # through the outbox so that a broker hiccup delays the rest, never strands it.
        jobs.enqueue(services.RUN_TASK, job_pk, kind=services.JOB_KIND, object_id=job_pk)


# Enough polls to cover COMMAND_TRACKING_MAX_AGE at the slowest delay, with room: a Google that keeps failing
# cannot keep a job's polling alive forever.
MAX_POLL_ATTEMPTS = 400


@shared_task(bind=True, acks_late=True)
def device_commands_poll_task(self: Any, job_pk: int, attempt: int = 0) -> None:
    try:
        done = services.device_commands_poll(job_pk)
    except TransientGoogleError:
        done = False
    if not done and attempt < MAX_POLL_ATTEMPTS:
        services.device_commands_poll_schedule(job_pk, attempt + 1)
