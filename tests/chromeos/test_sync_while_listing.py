"""The store hidden behind Google's latency (issue 18, point 5): new and changed devices reach the devices table
while the listing runs; removals still wait for the whole, proven listing.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from chromeos.models import ChromeOSDevice, DeviceChange, GoogleIntegration, SyncRun, SyncStatus
from google_emulator.testing import EmulatorHandle
from mdm.locks import dedicated_connection
from tests.chromeos.test_sync_faults import at_google, run_sync, stored

LIST = "directory.chromeosdevices.list"


@pytest.fixture
def page_by_page(settings: Any) -> Any:
    """Pages of 10 devices, each merged once staged (whatever the timing): the tests read the table between
    two pages."""
    settings.CHROMEOS_SYNC_PAGE_SIZE = 10
    settings.CHROMEOS_SYNC_MERGE_ROWS = 10
    return settings


@pytest.mark.django_db(transaction=True)
@pytest.mark.google_emulator(devices=100)
def test_the_first_pages_are_in_the_table_while_google_lists_the_next(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle, page_by_page: Any
) -> None:
    google_emulator.control("POST", "/latency", {"method": LIST, "mean_ms": 50})
    seen: dict[str, int] = {}

    def at_page_two(run: SyncRun) -> None:
        if run.pages == 2:
            # Another session: what the rest of the console sees, committed, while the sync goes on. Both pages
            # were handed to the merge thread before this callback: it commits them while the run's thread
            # (held here) lists no further, so the fetcher stays at most 3 pages ahead.
            deadline = time.monotonic() + 10
            while True:
                with dedicated_connection(autocommit=True) as other:
                    row = other.execute(
                        "SELECT count(*) FROM chromeos_chromeosdevice WHERE tenant_id = %s",
                        [google_integration.tenant_id],
                    ).fetchone()
                seen["committed"] = row[0] if row else -1
                if seen["committed"] >= 20 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            seen["listed_by_google"] = len(google_emulator.requests(LIST))

    run = run_sync(google_integration, progress=at_page_two)
    google_emulator.control("POST", "/latency", {"method": LIST, "mean_ms": 0})

    assert seen["committed"] == 20  # both pages stored...
    assert seen["listed_by_google"] < 10  # ...while Google still had pages to list (the fetcher is ≤ 3 ahead)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert (run.added, run.updated, run.unchanged, run.removed) == (100, 0, 0, 0)
    assert stored(google_integration) == at_google(google_emulator)


@pytest.mark.django_db
def test_an_interrupted_listing_adds_and_updates_what_it_read_and_removes_nothing(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle, page_by_page: Any
) -> None:
    # Inside the test's transaction: batches merged by the run's thread, between pages.
    interrupted_listing(google_integration, google_emulator)


@pytest.mark.django_db(transaction=True)
def test_an_interrupted_listing_with_the_merge_thread_stores_what_it_read_and_removes_nothing(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle, page_by_page: Any
) -> None:
    # Committed test data: batches merged by the merge thread, on its own connection.
    interrupted_listing(google_integration, google_emulator)


def interrupted_listing(google_integration: GoogleIntegration, google_emulator: EmulatorHandle) -> None:
    assert run_sync(google_integration).status == SyncStatus.SUCCEEDED  # 50 devices, 5 pages
    before = stored(google_integration)
    google_emulator.control("POST", "/devices/change", {"count": 50, "seed": 1})
    google_emulator.control("POST", "/devices/delete", {"count": 4, "seed": 3})
    google_emulator.control("POST", "/devices", {"count": 3})
    deleted = set(before) - set(at_google(google_emulator))
    assert len(deleted) == 4
    # Google refuses the 4th page (a 400 is not retried): the listing stops after 3 pages of 10.
    google_emulator.add_fault(method=LIST, status=400, page=4)

    run = run_sync(google_integration)

    assert run.status == SyncStatus.FAILED and "Erreur Google" in run.error
    google_now = at_google(google_emulator)
    now = stored(google_integration)
    # The 30 devices of the 3 pages read are stored as Google has them (every one changed or new)...
    assert sum(1 for device_id, etag in now.items() if google_now.get(device_id) == etag) == 30
    # ...the others as they were, and none removed: the listing was not complete.
    assert deleted <= set(now)
    assert all(now[d] == etag for d, etag in before.items() if google_now.get(d) != now[d])
    assert not ChromeOSDevice.unscoped.filter(removed_at__isnull=False).exists()
    assert not DeviceChange.unscoped.filter(changes__has_key="removed", sync_run=run).exists()

    # The next, complete listing brings the rest and removes the 4.
    google_emulator.control("DELETE", "/faults")
    run = run_sync(google_integration)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert run.removed == 4
    assert stored(google_integration) == at_google(google_emulator)


@pytest.mark.django_db(transaction=True)
@pytest.mark.google_emulator(devices=100)
def test_the_run_stages_the_next_pages_while_a_batch_is_being_merged(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle, page_by_page: Any
) -> None:
    """PostgreSQL's merge of a batch no longer stops the staging: another session holds the history table (the
    merge's first statement waits for it), and the run's thread stages further pages meanwhile. Before the merge
    thread, the run's thread was the one waiting, at page 1."""
    blocker = dedicated_connection(autocommit=False)
    blocker.execute("LOCK TABLE chromeos_devicechange IN SHARE MODE")
    released = threading.Event()
    staged_while_blocked: list[int] = []

    def release() -> None:
        if not released.is_set():
            released.set()
            blocker.commit()

    # Whatever happens, the lock goes after 10 s (the run's thread may be the one blocked).
    timer = threading.Timer(10, release)
    timer.start()

    def watch(run: SyncRun) -> None:
        if not released.is_set():
            staged_while_blocked.append(run.pages)
            if run.pages >= 2:
                with dedicated_connection(autocommit=True) as other:
                    row = other.execute(
                        "SELECT count(*) FROM chromeos_chromeosdevice WHERE tenant_id = %s",
                        [google_integration.tenant_id],
                    ).fetchone()
                assert row == (0,)  # nothing merged yet: the merge is the one waiting
                release()

    try:
        run = run_sync(google_integration, progress=watch)
    finally:
        timer.cancel()
        release()
        blocker.close()

    assert max(staged_while_blocked, default=0) >= 2
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert (run.added, run.updated, run.unchanged, run.removed) == (100, 0, 0, 0)
    assert stored(google_integration) == at_google(google_emulator)
