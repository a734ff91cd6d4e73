"""The ChromeOS sync reaper against a worker that finishes at the same moment (found by benchmarks/fleet.py: runs
that had just succeeded were shown « interrompue (processus arrêté) »). The reaper reads the run RUNNING, the worker
commits SUCCEEDED and releases the tenant's lock, the reaper then sees the lock free: it must not fail a run that
is no longer running."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from chromeos.models import SyncRun, SyncStatus, SyncTrigger
from chromeos.services.sync import runs, sync_runs_reap

pytestmark = pytest.mark.django_db


def _running(integration: Any) -> SyncRun:
    return SyncRun.unscoped.create(
        tenant=integration.tenant,
        integration=integration,
        trigger=SyncTrigger.SCHEDULED,
        status=SyncStatus.RUNNING,
        started_at=timezone.now(),
    )


def test_a_run_that_finished_while_the_reaper_looked_keeps_its_result(google_integration, monkeypatch):
    run = _running(google_integration)

    def worker_finishes_then_lock_is_free(seen: SyncRun) -> bool:
        SyncRun.unscoped.filter(pk=seen.pk).update(status=SyncStatus.SUCCEEDED, finished_at=timezone.now())
        return False

    monkeypatch.setattr(runs, "sync_run_is_alive", worker_finishes_then_lock_is_free)
    assert sync_runs_reap(timezone.now()) == 0
    run.refresh_from_db()
    assert run.status == SyncStatus.SUCCEEDED and run.error == ""


def test_a_dead_run_is_failed_once_by_two_reapers(google_integration, monkeypatch):
    run = _running(google_integration)
    stale = SyncRun.unscoped.get(pk=run.pk)  # a second reaper's copy, read before the first one acted
    monkeypatch.setattr(runs, "sync_run_is_alive", lambda seen: False)
    assert sync_runs_reap(timezone.now()) == 1
    assert runs._fail(stale, "reaped", number=run.pk) is False
    run.refresh_from_db()
    assert run.status == SyncStatus.FAILED
    assert sum(1 for line in run.log if line["level"] == "error") == 1
