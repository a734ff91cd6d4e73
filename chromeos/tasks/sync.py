"""Celery tasks of the ChromeOS sync (thin: load by id, call one service).

Delivery: ``acks_late`` + ``reject_on_worker_lost`` (settings) mean a sync whose worker is killed comes back; the
service then marks the interrupted run failed and continues in a new run. The per-tenant lock makes any
duplicate delivery harmless. Retry countdowns and time limits stay below the broker's visibility timeout.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.db import DatabaseError, InterfaceError

from chromeos.models import SyncRun
from chromeos.services.sync import devices_sync, sync_dispatch
from mdm.tenancy import tenant_context

__all__ = ["devices_sync_task", "sync_dispatch_task"]

logger = logging.getLogger(__name__)

# PostgreSQL briefly down: retry the whole run a little later (the service resumes it as a new run).
DB_RETRY_COUNTDOWN = 30
DB_RETRY_MAX = 5


@shared_task(
    bind=True,
    name="chromeos.tasks.devices_sync_task",
    soft_time_limit=30 * 60,
    time_limit=35 * 60,
    max_retries=DB_RETRY_MAX,
)
def devices_sync_task(self: Any, run_id: int) -> str:
    try:
        run = SyncRun.unscoped.select_related("tenant").filter(pk=run_id).first()
        if run is None:
            return "missing"  # the integration (and its runs) was removed meanwhile
        with tenant_context(run.tenant):
            return devices_sync(run).status
    except (DatabaseError, InterfaceError) as error:
        logger.warning(
            "sync run %s: database unavailable (%s); retry in %ss", run_id, error, DB_RETRY_COUNTDOWN
        )
        raise self.retry(exc=error, countdown=DB_RETRY_COUNTDOWN) from error


@shared_task(name="chromeos.tasks.sync_dispatch_task", ignore_result=True)
def sync_dispatch_task() -> int:
    return len(sync_dispatch())
