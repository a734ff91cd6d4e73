"""The store hidden behind Google's latency (issue 18, point 5): new and changed devices reach the devices table
while the listing runs; removals still wait for the whole, proven listing.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import pytest
from django.db import connection

from chromeos.models import ChromeOSDevice, DeviceChange, GoogleIntegration, SyncRun, SyncStatus
from chromeos.services.sync import Listing, Stage
from chromeos.services.sync.merge import DeviceMerge, HeldBatch
from chromeos.services.sync.pipeline import MergeThread
from chromeos.services.sync.staging import device_row
from google_emulator.testing import EmulatorHandle
from mdm.locks import dedicated_connection
from tests.chromeos.test_sync_faults import at_google, new_run, run_sync, stored
from tests.processes import wait_for, waiting_on_lock

LIST = "directory.chromeosdevices.list"


@pytest.fixture
def page_by_page(settings: Any) -> Any:
    """Pages of 10 devices, each merged once staged (whatever the timing): the tests read the table between
    two pages."""
    settings.CHROMEOS_SYNC_PAGE_SIZE = 10
    settings.CHROMEOS_SYNC_MERGE_ROWS = 10
    return settings


class HeldLock:
    """Another session holding what ``sql`` locks until ``release()``, or for ``seconds`` whatever happens (the
    run's thread may be the one blocked); ``with``: released and closed on the way out."""

    def __init__(self, sql: str, params: Any = None, *, seconds: float = 10) -> None:
        self.blocker = dedicated_connection(autocommit=False)
        self.blocker.execute(sql, params)
        self.released = threading.Event()
        self._timer = threading.Timer(seconds, self.release)
        self._timer.start()

    def release(self) -> None:
        if not self.released.is_set():
            self.released.set()
            self.blocker.commit()

    def __enter__(self) -> HeldLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        self.release()
        self.blocker.close()


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
    """PostgreSQL's merge of a batch no longer stops the staging: another session holds the devices table in
    share mode (reads go on, the merge's first write waits), and the run's thread stages further pages meanwhile.
    Before the merge thread, the run's thread was the one waiting, at page 1."""
    staged_while_blocked: list[int] = []
    # (Not the history table, as first written: a tenant's first sync COPYs its batches without the history's
    # look-up, so nothing waited and the count below raced the merge.)
    with HeldLock("LOCK TABLE chromeos_chromeosdevice IN SHARE MODE") as lock:

        def watch(run: SyncRun) -> None:
            if not lock.released.is_set():
                staged_while_blocked.append(run.pages)
                if run.pages >= 2:
                    with dedicated_connection(autocommit=True) as other:
                        row = other.execute(
                            "SELECT count(*) FROM chromeos_chromeosdevice WHERE tenant_id = %s",
                            [google_integration.tenant_id],
                        ).fetchone()
                    assert row == (0,)  # nothing merged yet: the merge is the one waiting
                    lock.release()

        run = run_sync(google_integration, progress=watch)

    assert max(staged_while_blocked, default=0) >= 2
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert (run.added, run.updated, run.unchanged, run.removed) == (100, 0, 0, 0)
    assert stored(google_integration) == at_google(google_emulator)


@pytest.mark.django_db(transaction=True)
@pytest.mark.google_emulator(devices=100)
def test_a_batch_waiting_for_postgresql_does_not_hold_up_the_next_ones(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle, page_by_page: Any
) -> None:
    """Two merge threads (issue 18: a first sync's PostgreSQL work, on one connection, was as long as the whole
    listing): while the first batch waits (another session holds the rows of page 1), the next batches are
    merged and committed on the second connection. Before, one merge thread waited, and the listing with it."""
    page_by_page.CHROMEOS_SYNC_MERGE_THREADS = 2
    assert run_sync(google_integration).status == SyncStatus.SUCCEEDED
    google_emulator.control("POST", "/devices/change", {"count": 100, "seed": 5})
    first_page = [
        d["deviceId"]
        for d in google_emulator.directory()
        .chromeosdevices()
        .list(customerId=google_integration.customer_id, projection="FULL", maxResults=10)
        .execute()["chromeosdevices"]
    ]
    seen: dict[str, Any] = {}
    with HeldLock(
        "SELECT 1 FROM chromeos_chromeosdevice WHERE tenant_id = %s AND device_id = ANY(%s) FOR UPDATE",
        [google_integration.tenant_id, first_page],
    ) as lock:

        def watch(run: SyncRun) -> None:
            if run.pages < 3 or lock.released.is_set():
                return

            def merged_by_this_run() -> int:
                with dedicated_connection(autocommit=True) as other:
                    rows = other.execute(
                        "SELECT device_id FROM chromeos_chromeosdevice WHERE last_seen_run_id = %s", [run.pk]
                    ).fetchall()
                seen["merged"] = {row[0] for row in rows}
                return len(seen["merged"])

            with contextlib.suppress(AssertionError):  # asserted below, after the lock is let go
                wait_for(lambda: merged_by_this_run() >= 10, 10, "later pages merged")
            lock.release()

        run = run_sync(google_integration, progress=watch)

    # Later pages committed while page 1's batch waited; none of page 1's devices among them.
    assert len(seen.get("merged", ())) >= 10
    assert not seen["merged"] & set(first_page)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert (run.added, run.updated, run.unchanged, run.removed) == (0, 100, 0, 0)
    assert stored(google_integration) == at_google(google_emulator)


@pytest.mark.django_db(transaction=True)
def test_a_device_listed_again_waits_for_the_batch_in_flight_and_its_last_copy_wins(
    google_integration: GoogleIntegration,
) -> None:
    """Batches merged side by side never hold the same device: one listed again (Google's offset paging) is handed
    over only once the batch holding its earlier copy is merged, so the last copy listed is the one stored and two
    transactions never wait on each other's rows."""
    stage, merge = new_stage_and_merge(google_integration)
    listing = Listing()
    stage.write_page([{"deviceId": "dev-a", "etag": "e0"}], google_integration.tenant_id, listing)
    merge.merge_batch()  # committed: no atomic block here
    stage.hold = True
    merger = MergeThread(stage, merge, threads=2)
    handed: dict[str, bool] = {}

    def page(*devices: tuple[str, str]) -> tuple[list[Any], bool]:
        stage.write_page(
            [{"deviceId": d, "etag": e, "status": e} for d, e in devices],
            google_integration.tenant_id,
            listing,
        )
        return stage.take_held()

    try:
        # The lock goes first on the way out: a merge thread may be the one waiting for it.
        with HeldLock("SELECT 1 FROM chromeos_chromeosdevice WHERE device_id = 'dev-a' FOR UPDATE") as lock:
            merger.submit(*page(("dev-a", "e1"), ("dev-b", "e1")))  # waits for the blocker's row lock
            # A second thread starts when every one is busy at a hand-over: the first must have taken its batch
            # (seen failing in CI when the second batch was handed over first, queued behind the blocked one).
            wait_for(
                lambda: waiting_on_lock("chromeos_chromeosdevice"), 10, "the first batch blocked on dev-a"
            )
            merger.submit(*page(("dev-c", "e1")))  # another device: merged meanwhile, on the other thread
            wait_for(lambda: committed_etag("dev-c") == "e1", 10, "dev-c merged meanwhile")
            again = page(("dev-a", "e2"))
            # (Only the hand-over on this thread: it opens no database connection.)
            later = threading.Thread(target=lambda: (merger.submit(*again), handed.setdefault("at", True)))
            later.start()
            time.sleep(0.5)
            assert later.is_alive() and not handed  # dev-a's second copy waits for its first
            assert committed_etag("dev-a") == "e0"
            lock.release()
            later.join(10)
            assert handed
            merger.close()
    finally:
        merger.close(abandon=True)
        stage.drop()
    assert {d: committed_etag(d) for d in ("dev-a", "dev-b", "dev-c")} == {
        "dev-a": "e2",
        "dev-b": "e1",
        "dev-c": "e1",
    }
    assert ChromeOSDevice.unscoped.get(device_id="dev-a").status == "e2"
    assert (merge.result.added, merge.result.updated) == (3, 2)  # dev-a, then dev-b and dev-c; dev-a twice


def committed_etag(device_id: str) -> str | None:
    with dedicated_connection(autocommit=True) as other:
        row = other.execute(
            "SELECT etag FROM chromeos_chromeosdevice WHERE device_id = %s", [device_id]
        ).fetchone()
    return row[0] if row else None


def table_inserts(table: str) -> int:
    """Rows inserted into ``table`` as PostgreSQL's statistics count them (every session's, once flushed)."""
    with dedicated_connection(autocommit=True) as other:
        row = other.execute(
            "SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = %s", [table]
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.google_emulator(devices=100)
def test_a_tenants_first_sync_copies_its_devices_straight_into_the_table(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle, page_by_page: Any
) -> None:
    # benchmarks/sync.py (100,000 devices, 300 ms a page): the batch table (its COPY, heap, TOAST and index, the
    # history's look-ups, the upsert's read, the DELETE) was ~4.5 of the 26 core-seconds PostgreSQL spent in a
    # first sync. A tenant with no row has nothing to compare: its batches are COPYed into the devices table.
    batch_before, devices_before = (
        table_inserts("chromeos_syncbatch"),
        table_inserts("chromeos_chromeosdevice"),
    )
    run = run_sync(google_integration)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert (run.added, run.updated, run.unchanged, run.removed) == (100, 0, 0, 0)
    assert stored(google_integration) == at_google(google_emulator)
    # The merge threads' sessions flush their statistics when they end: both tables' counts at once.
    wait_for(
        lambda: table_inserts("chromeos_chromeosdevice") >= devices_before + 100, 10, "the merge's statistics"
    )
    assert table_inserts("chromeos_syncbatch") == batch_before
    assert not DeviceChange.unscoped.filter(tenant_id=google_integration.tenant_id).exists()


@pytest.mark.django_db
def test_a_device_listed_again_in_a_first_sync_takes_the_upsert_and_its_last_copy_wins(
    google_integration: GoogleIntegration,
) -> None:
    stage, merge = new_stage_and_merge(google_integration)
    assert merge.new_tenant

    merge.merge_batch(held_batch(stage, ("dev-a", "e1"), ("dev-b", "e1")))
    assert merge.new_tenant
    # dev-b is stored: the COPY breaks the unique key, its savepoint goes, the batch is upserted.
    merge.merge_batch(held_batch(stage, ("dev-b", "e2"), ("dev-c", "e1")))
    assert not merge.new_tenant  # and so are the run's next batches
    merge.merge_batch(held_batch(stage, ("dev-d", "e1")))
    assert stored(google_integration) == {"dev-a": "e1", "dev-b": "e2", "dev-c": "e1", "dev-d": "e1"}
    assert ChromeOSDevice.unscoped.get(device_id="dev-b").status == "e2"
    assert (merge.result.added, merge.result.updated) == (4, 1)
    assert list(DeviceChange.unscoped.values_list("device__device_id", "changes")) == [
        ("dev-b", {"status": ["e1", "e2"]})
    ]


def new_stage_and_merge(integration: GoogleIntegration) -> tuple[Stage, DeviceMerge]:
    """A new run's stage (emptied) and merge, as the run's thread makes them, without listing Google."""
    run = new_run(integration)
    stage = Stage(run)
    stage.create()
    return stage, DeviceMerge(stage, integration, run)


def held_batch(stage: Stage, *devices: tuple[str, str]) -> HeldBatch:
    """What the run's thread hands to a merge thread: these (device id, etag)s, their status their etag."""
    rows = [device_row(n, d, e, {"deviceId": d, "etag": e, "status": e}) for n, (d, e) in enumerate(devices)]
    return HeldBatch(stage.batch, len(rows), False, rows)


@pytest.mark.django_db(transaction=True)
def test_a_merge_runs_with_the_work_mem_the_search_index_needs(
    google_integration: GoogleIntegration, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # perf on a first sync of 100,000 devices: the insert that fills the search index's pending list merges it
    # into the index in batches of work_mem; at PostgreSQL's 4 MB, several passes per clean-up (1.3 core-s).
    settings.CHROMEOS_SYNC_MERGE_WORK_MEM = "48MB"
    stage, merge = new_stage_and_merge(google_integration)
    seen: list[str] = []
    copy_new = merge._copy_new

    def copy_seeing_work_mem(rows: list[Any]) -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SHOW work_mem")
            seen.append(cursor.fetchone()[0])
        return copy_new(rows)

    monkeypatch.setattr(merge, "_copy_new", copy_seeing_work_mem)
    try:
        merge.merge_batch(held_batch(stage, ("dev-a", "e1")))
    finally:
        stage.drop()
    assert seen == ["48MB"]
    assert stored(google_integration) == {"dev-a": "e1"}
    with connection.cursor() as cursor:  # the merge's transaction only: the connection's own setting is back
        cursor.execute("SHOW work_mem")
        assert cursor.fetchone()[0] != "48MB"
