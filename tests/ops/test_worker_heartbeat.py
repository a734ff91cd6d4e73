"""Worker liveness without celery inspect: heartbeat rows, their state, and support's list at /support/."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from mdm.models import User
from ops.models import WorkerHeartbeat
from ops.worker import ALIVE, LATE, STOPPED, worker_beat, worker_state

pytestmark = pytest.mark.django_db


def test_a_beat_creates_then_refreshes_the_row_and_forgets_long_gone_workers() -> None:
    started = timezone.now() - timedelta(minutes=5)
    WorkerHeartbeat.objects.create(
        hostname="old@gone", pid=1, started_at=started, last_seen_at=timezone.now() - timedelta(days=8)
    )
    worker_beat("w1@host", pid=42, concurrency=2, started_at=started)
    row = WorkerHeartbeat.objects.get(hostname="w1@host")
    first_seen = row.last_seen_at
    assert (row.pid, row.concurrency, row.started_at) == (42, 2, started)
    WorkerHeartbeat.objects.filter(pk=row.pk).update(stopped_at=timezone.now())
    worker_beat("w1@host", pid=43, concurrency=2, started_at=timezone.now())
    row.refresh_from_db()
    assert row.pid == 43 and row.last_seen_at > first_seen and row.stopped_at is None
    assert row.started_at == started  # the first start is kept
    assert not WorkerHeartbeat.objects.filter(hostname="old@gone").exists()


def test_states_alive_late_stopped(settings: object) -> None:
    now = timezone.now()
    row = WorkerHeartbeat(hostname="w", pid=1, started_at=now, last_seen_at=now - timedelta(seconds=20))
    assert worker_state(row, now) == ALIVE
    row.last_seen_at = now - timedelta(seconds=46)
    assert worker_state(row, now) == LATE
    row.stopped_at = now
    assert worker_state(row, now) == STOPPED


def test_support_sees_every_worker_and_its_state(support_user: User) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.create(hostname="alive@a", pid=1, started_at=now, last_seen_at=now, tasks_done=7)
    WorkerHeartbeat.objects.create(
        hostname="hung@b", pid=2, started_at=now, last_seen_at=now - timedelta(minutes=10)
    )
    client = Client()
    client.force_login(support_user)
    page = client.get("/support/ops/workerheartbeat/").content.decode()
    assert "alive@a" in page and "hung@b" in page
    assert "En vie" in page and "Sans nouvelles" in page
    assert client.get("/support/ops/workerheartbeat/add/").status_code == 403
