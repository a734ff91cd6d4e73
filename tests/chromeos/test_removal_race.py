"""A removal racing an in-flight sync of 10,000 devices: whatever the interleaving, no device survives it.

The sync runs for real in a thread (its own PostgreSQL connection, the emulator over HTTP, slowed down by fault
injection); the removal runs in the test's thread. Three interleavings:

* the removal completes while the sync is still listing: the sync's next page meets a revoked grant and stops;
* the removal is asked for (integration ``removing``) before the sync merges, and runs after: the merge is
  refused, then the removal deletes the rest;
* free-running: the removal goes through the real request and eager task while pages keep coming.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from chromeos.models import (
    ChromeOSDevice,
    GoogleIntegration,
    OrgUnit,
    RemovalStatus,
    SyncRun,
    SyncStatus,
    SyncTrigger,
)
from chromeos.services.removal import removal_request, removal_run_execute
from chromeos.services.sync import devices_sync, sync_request
from chromeos.tasks.removal import removal_run_task

DEVICES = 10_000
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.google_emulator(devices=DEVICES, org_units=12),
]


class SyncThread(threading.Thread):
    """``devices_sync`` in its own thread; ``on_page(run)`` is called after every listed page."""

    def __init__(self, run: SyncRun, on_page: Callable[[SyncRun], None] | None = None) -> None:
        super().__init__(daemon=True)
        self.run_row = run
        self.on_page = on_page
        self.result: SyncRun | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = devices_sync(self.run_row, progress=self.on_page)
        except BaseException as exc:  # reported to the test, which fails on anything unexpected
            self.error = exc
        finally:
            connection.close()


def _start_sync(
    integration: GoogleIntegration, on_page: Callable[[SyncRun], None] | None = None
) -> SyncThread:
    run, created = sync_request(integration=integration, trigger=SyncTrigger.MANUAL, enqueue=False)
    assert created
    thread = SyncThread(run, on_page)
    thread.start()
    return thread


def _assert_nothing_left(tenant: Any) -> None:
    assert ChromeOSDevice.unscoped.filter(tenant=tenant).count() == 0
    assert OrgUnit.unscoped.filter(tenant=tenant).count() == 0
    assert not GoogleIntegration.unscoped.filter(tenant=tenant).exists()
    assert not SyncRun.unscoped.filter(tenant=tenant).exists()


@pytest.fixture
def slow_google(google_emulator: Any, settings: Any) -> Any:
    settings.CHROMEOS_SYNC_PAGE_SIZE = 200
    settings.CHROMEOS_SYNC_PROGRESS_SECONDS = 0
    google_emulator.add_fault(method="directory.chromeosdevices.list", delay_ms=40, count=None)
    return google_emulator


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    runs: list[int] = []
    # Published through the outbox (mdm/jobs.py), which calls apply_async.
    monkeypatch.setattr(removal_run_task, "apply_async", lambda args, **options: runs.append(args[0]))
    return runs


def _pause_at_page(page: int) -> tuple[Callable[[SyncRun], None], threading.Event, threading.Event]:
    reached, resume = threading.Event(), threading.Event()

    def on_page(run: SyncRun) -> None:
        if run.pages == page and run.status == SyncStatus.RUNNING:
            reached.set()
            assert resume.wait(60)

    return on_page, reached, resume


def test_removal_during_the_listing_stops_the_sync(google_integration, slow_google, admin_user, queued):
    on_page, reached, resume = _pause_at_page(10)
    sync = _start_sync(google_integration, on_page)
    assert reached.wait(60), "the sync never reached its 10th page"

    run = removal_run_execute(removal_request(tenant=google_integration.tenant, actor=admin_user).pk)
    resume.set()
    sync.join(60)

    assert not sync.is_alive() and sync.error is None, sync.error
    assert run.status == RemovalStatus.SUCCEEDED, run.error
    assert sync.result is not None and sync.result.status == SyncStatus.FAILED  # its next page: grant revoked
    assert sync.result.pages < DEVICES // 200
    _assert_nothing_left(google_integration.tenant)


def test_a_merge_after_the_removal_started_is_refused(google_integration, slow_google, admin_user, queued):
    on_page, reached, resume = _pause_at_page(DEVICES // 200)  # the last page: the final merge comes next
    sync = _start_sync(google_integration, on_page)
    assert reached.wait(120), "the sync never reached its last page"
    # Devices were merged while the listing ran: the removal deletes them; the sync must add none after it.
    requested = removal_request(
        tenant=google_integration.tenant, actor=admin_user
    )  # integration now "removing" (after the batch the merge thread may have been merging: its share lock)
    merged_before = ChromeOSDevice.unscoped.filter(tenant=google_integration.tenant).count()
    assert merged_before > 0
    resume.set()
    sync.join(60)
    assert not sync.is_alive() and sync.error is None, sync.error
    assert sync.result is not None and sync.result.status == SyncStatus.FAILED
    assert ChromeOSDevice.unscoped.filter(tenant=google_integration.tenant).count() == merged_before

    run = removal_run_execute(requested.pk)
    assert run.status == RemovalStatus.SUCCEEDED, run.error
    _assert_nothing_left(google_integration.tenant)


def test_free_running_sync_and_removal_leave_zero_devices(
    google_integration, slow_google, admin_user, django_capture_on_commit_callbacks
):
    """First a complete sync (10,000 devices stored), then a second one in flight when the removal is asked."""
    first = _start_sync(google_integration)
    first.join(180)
    assert first.result is not None and first.result.status == SyncStatus.SUCCEEDED, first.error
    assert ChromeOSDevice.unscoped.filter(tenant=google_integration.tenant).count() == DEVICES

    sync = _start_sync(google_integration)
    deadline = time.monotonic() + 60
    while SyncRun.unscoped.filter(pk=sync.run_row.pk, pages__lt=5).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    # Real commits: the eager task runs the removal as soon as the request commits.
    run = removal_request(tenant=google_integration.tenant, actor=admin_user)
    sync.join(120)

    assert not sync.is_alive() and sync.error is None, sync.error
    run.refresh_from_db()
    assert run.status == RemovalStatus.SUCCEEDED, run.error
    assert run.deleted["chromeosdevice"] == DEVICES
    _assert_nothing_left(google_integration.tenant)
