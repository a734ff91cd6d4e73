"""Worker liveness without ``celery inspect``: each worker's main process upserts its ``WorkerHeartbeat`` row
from a small thread every ``OPS_WORKER_HEARTBEAT_SECONDS`` (15); each finished task bumps ``last_task_at`` from
the pool process that ran it. A clean shutdown sets ``stopped_at``.

States (``worker_state``): *alive* (seen within 3 beats), *late* (not seen since: hung, killed, cut off from
PostgreSQL), *stopped* (shut down cleanly). Rows of workers gone for ``OPS_WORKER_FORGET_DAYS`` (7) are deleted.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from celery.signals import (
    before_task_publish,
    task_postrun,
    task_prerun,
    worker_init,
    worker_ready,
    worker_shutdown,
)
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.db.models import F
from django.utils import timezone

from ops.logs import task_finished, task_started
from ops.metrics import PUBLISHED_AT_HEADER
from ops.models import WorkerHeartbeat

logger = logging.getLogger(__name__)

ALIVE, LATE, STOPPED = "alive", "late", "stopped"


def beat_seconds() -> float:
    return float(getattr(settings, "OPS_WORKER_HEARTBEAT_SECONDS", 15))


def worker_beat(hostname: str, *, pid: int, concurrency: int, started_at: datetime) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname,
        defaults={"pid": pid, "concurrency": concurrency, "last_seen_at": now, "stopped_at": None},
        create_defaults={
            "pid": pid,
            "concurrency": concurrency,
            "started_at": started_at,
            "last_seen_at": now,
        },
    )
    forget = now - timedelta(days=int(getattr(settings, "OPS_WORKER_FORGET_DAYS", 7)))
    WorkerHeartbeat.objects.filter(last_seen_at__lt=forget).delete()


def worker_state(row: WorkerHeartbeat, now: datetime | None = None) -> str:
    if row.stopped_at is not None:
        return STOPPED
    now = now or timezone.now()
    return ALIVE if row.last_seen_at >= now - timedelta(seconds=3 * beat_seconds()) else LATE


class _Heart:
    def __init__(self, hostname: str, concurrency: int) -> None:
        self.hostname, self.concurrency = hostname, concurrency
        self.started_at = timezone.now()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="mdm-worker-heartbeat", daemon=True)

    def _run(self) -> None:
        while True:
            try:
                close_old_connections()
                worker_beat(
                    self.hostname, pid=os.getpid(), concurrency=self.concurrency, started_at=self.started_at
                )
            except DatabaseError:
                logger.warning("worker heartbeat not written (database unavailable)", exc_info=True)
                connection.close()
            if self.stop.wait(beat_seconds()):
                return


_heart: _Heart | None = None


def tune_gc() -> None:
    """The worker's garbage collector, before it runs any task (``OPS_WORKER_GC_THRESHOLD``): what is loaded by
    then (Django, the apps, the libraries: hundreds of thousands of objects) is frozen, never traversed again by
    a full collection, and young objects are collected after ``G0`` allocations instead of 700. A sync's pages
    (dicts and lists freed by reference counting) then no longer set off thousands of collections that hold the
    GIL its listing threads wait for. Prefork children inherit both (fork). The benchmarks call it too, since their
    measured process stands for a worker."""
    threshold = str(getattr(settings, "OPS_WORKER_GC_THRESHOLD", "") or "")
    if not threshold:
        return
    gc.set_threshold(*(int(value) for value in threshold.split(",")))
    gc.freeze()
    logger.info("worker gc: thresholds %s, %d objects frozen", gc.get_threshold(), gc.get_freeze_count())


@worker_init.connect
def _tune_gc(**kwargs: Any) -> None:
    tune_gc()


@worker_ready.connect
def _start_heart(sender: Any = None, **kwargs: Any) -> None:
    global _heart
    hostname = getattr(sender, "hostname", None) or f"worker@{os.uname().nodename}"
    concurrency = int(getattr(getattr(sender, "pool", None), "num_processes", 0) or 0)
    _heart = _Heart(hostname, concurrency)
    _heart.thread.start()


@worker_shutdown.connect
def _stop_heart(sender: Any = None, **kwargs: Any) -> None:
    if _heart is None:
        return
    _heart.stop.set()
    _heart.thread.join(5)
    try:
        close_old_connections()
        WorkerHeartbeat.objects.filter(hostname=_heart.hostname).update(stopped_at=timezone.now())
    except DatabaseError:
        logger.warning("worker stop not recorded (database unavailable)")


@task_postrun.connect
def _task_done(sender: Any = None, **kwargs: Any) -> None:
    request = getattr(sender, "request", None)
    hostname = getattr(request, "hostname", None)
    if not hostname or getattr(request, "is_eager", False):
        return  # eager (in-process) runs have no worker
    try:
        WorkerHeartbeat.objects.filter(hostname=hostname).update(
            last_task_at=timezone.now(), tasks_done=F("tasks_done") + 1
        )
    except DatabaseError:
        logger.warning("worker task count not recorded (database unavailable)")


@before_task_publish.connect
def _stamp_publication(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """When the message was queued: /metrics reports the age of the oldest one still waiting."""
    if headers is not None:
        headers.setdefault(PUBLISHED_AT_HEADER, time.time())


@task_prerun.connect
def _task_log_context(
    task_id: str = "", task: Any = None, args: Any = None, kwargs: Any = None, **_: Any
) -> None:
    task_started(task_id, task, args, kwargs)


@task_postrun.connect
def _task_log_context_end(task_id: str = "", **_: Any) -> None:
    task_finished(task_id)
