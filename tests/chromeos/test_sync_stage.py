"""The sync's staging tables (issue 18): shared UNLOGGED tables keyed by run id, created once by migration 0023.

A run creates, indexes, analyzes and drops no relation (per-run TEMP tables wrote ~50 KB of catalog WAL per
sync: the whole no-change WAL of a small tenant); its rows go at its end, and those of runs that died are
discarded at the next sync's start and by the reaper.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from chromeos.models import GoogleIntegration, SyncRun, SyncStatus, SyncTrigger
from chromeos.services.sync import devices_sync, sync_request
from chromeos.services.sync.runs import SyncLock, sync_runs_reap
from chromeos.services.sync.staging import BATCH_TABLE, STAGE_COLUMNS, STAGE_TABLE
from google_emulator.testing import EmulatorHandle

STAGED = f"SELECT (SELECT count(*) FROM {STAGE_TABLE} WHERE run_id = %(run)s) + (SELECT count(*) FROM {BATCH_TABLE} WHERE run_id = %(run)s)"  # noqa: S608


def staged_rows(run_id: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(STAGED, {"run": run_id})
        return int(cursor.fetchone()[0])


def per_run_relations() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relname LIKE 'chromeos\\_sync\\_stage\\_%%' "
            "OR relname LIKE 'chromeos\\_sync\\_batch\\_%%'"
        )
        return [row[0] for row in cursor.fetchall()]


def stage_rows_for(run_id: int, devices: int = 3) -> None:
    with connection.cursor() as cursor:
        for seq in range(devices):
            cursor.execute(
                f"INSERT INTO {STAGE_TABLE} (run_id, seq, device_id, etag) VALUES (%s, %s, %s, 'e')",  # noqa: S608
                [run_id, seq, f"dead-{seq}"],
            )
            cursor.execute(
                f"INSERT INTO {BATCH_TABLE} (run_id, seq, device_id, etag, payload) "  # noqa: S608
                "VALUES (%s, %s, %s, 'e', '{}')",
                [run_id, seq, f"dead-{seq}"],
            )


@pytest.fixture
def small_pages(settings: Any) -> Any:
    settings.CHROMEOS_SYNC_PAGE_SIZE = 10
    settings.CHROMEOS_SYNC_PROGRESS_SECONDS = 0
    return settings


@pytest.mark.django_db
def test_a_sync_creates_no_relation_and_its_staged_rows_go_at_its_end(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle, small_pages: Any
) -> None:
    seen: list[tuple[list[str], int]] = []
    for _attempt in range(2):  # the first sync (all new) and a no-change one
        run, _created = sync_request(
            integration=google_integration, trigger=SyncTrigger.MANUAL, enqueue=False
        )
        run = devices_sync(run, progress=lambda r: seen.append((per_run_relations(), staged_rows(r.pk))))
        assert run.status == SyncStatus.SUCCEEDED, run.error
        assert run.devices_seen == 50
        assert staged_rows(run.pk) == 0  # deleted at the end
    assert seen
    assert all(relations == [] for relations, _rows in seen)  # no per-run table, ever
    assert max(rows for _relations, rows in seen) > 0  # the listing did stage its rows in the shared tables


@pytest.mark.django_db
def test_the_staging_tables_have_the_columns_the_sync_copies() -> None:
    with connection.cursor() as cursor:
        for table, columns in (
            (STAGE_TABLE, ("run_id", "seq", "device_id", "etag", "fresh")),
            (BATCH_TABLE, ("run_id", *STAGE_COLUMNS)),
        ):
            cursor.execute(
                "SELECT c.relpersistence, array_agg(a.attname::text ORDER BY a.attnum) FROM pg_class c "
                "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
                "WHERE c.oid = %s::regclass GROUP BY c.relpersistence",
                [table],
            )
            persistence, names = cursor.fetchone()
            assert persistence == "u"  # UNLOGGED: the rows write no WAL
            assert tuple(names) == columns


@pytest.mark.django_db
def test_rows_of_dead_runs_are_discarded_at_the_next_sync_and_by_the_reaper(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle, small_pages: Any
) -> None:
    tenant = google_integration.tenant
    finished = SyncRun.unscoped.create(
        tenant=tenant,
        integration=google_integration,
        trigger="manual",
        status=SyncStatus.SUCCEEDED,
        finished_at=timezone.now(),
    )
    dead = SyncRun.unscoped.create(  # RUNNING, but nobody holds the lock: its worker died mid-listing
        tenant=tenant, integration=google_integration, trigger="manual", status=SyncStatus.RUNNING
    )
    gone = max(finished.pk, dead.pk) + 1000  # a run deleted with its integration
    for run_id in (finished.pk, dead.pk, gone):
        stage_rows_for(run_id)
    run, created = sync_request(integration=google_integration, trigger=SyncTrigger.MANUAL, enqueue=False)
    assert created
    assert devices_sync(run).status == SyncStatus.SUCCEEDED
    assert [staged_rows(r) for r in (finished.pk, dead.pk, gone, run.pk)] == [0, 0, 0, 0]
    dead.refresh_from_db()
    assert dead.status == SyncStatus.FAILED

    # The reaper: a dead run's rows go, a live run's (its tenant's lock held) stay.
    alive = SyncRun.unscoped.create(
        tenant=tenant, integration=google_integration, trigger="manual", status=SyncStatus.RUNNING
    )
    stage_rows_for(alive.pk)
    stage_rows_for(finished.pk)
    lock = SyncLock(tenant.pk)
    assert lock.acquire()
    try:
        sync_runs_reap(timezone.now())
        assert staged_rows(alive.pk) == 6 and staged_rows(finished.pk) == 0
    finally:
        lock.release()
    sync_runs_reap(timezone.now())  # the lock is free: the run is reaped, its rows discarded
    alive.refresh_from_db()
    assert alive.status == SyncStatus.FAILED and staged_rows(alive.pk) == 0


@pytest.mark.django_db
def test_a_no_change_sync_writes_its_run_row_few_times(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle, settings: Any
) -> None:
    # Each write of the run's row rewrites its whole log (WAL, TOAST): the log lines of the start and of the end
    # go with the writes that happen anyway. Counted by PostgreSQL for this transaction (the test's).
    settings.CHROMEOS_SYNC_PROGRESS_SECONDS = 3600  # no heartbeat but the first page's
    run, _created = sync_request(integration=google_integration, trigger=SyncTrigger.MANUAL, enqueue=False)
    assert devices_sync(run).status == SyncStatus.SUCCEEDED

    def run_row_updates() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT coalesce(sum(n_tup_upd), 0) FROM pg_stat_xact_user_tables WHERE relname = 'chromeos_syncrun'"
            )
            return int(cursor.fetchone()[0])

    before = run_row_updates()
    run, _created = sync_request(integration=google_integration, trigger=SyncTrigger.MANUAL, enqueue=False)
    run = devices_sync(run)
    assert run.status == SyncStatus.SUCCEEDED and run.unchanged == 50
    # The start, the OUs and Google's count with their log lines, the listing, the outcome with "merged" (was 7).
    assert run_row_updates() - before == 4
    assert [entry["params"] for entry in run.log][-2] == {
        "added": 0,
        "updated": 0,
        "unchanged": 50,
        "removed": 0,
    }


@pytest.mark.django_db
def test_a_no_change_sync_writes_no_org_unit(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle
) -> None:
    # Every OU was rewritten at every run (its last_seen_run_id): most of a small tenant's no-change WAL in
    # benchmarks/fleet.py. An OU is written when it changes.
    from chromeos.models import OrgUnit

    run, _created = sync_request(integration=google_integration, trigger=SyncTrigger.MANUAL, enqueue=False)
    first = devices_sync(run)
    assert first.status == SyncStatus.SUCCEEDED and first.org_units > 1

    def org_unit_writes() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT coalesce(sum(n_tup_upd + n_tup_ins + n_tup_del), 0) FROM pg_stat_xact_user_tables "
                "WHERE relname = 'chromeos_orgunit'"
            )
            return int(cursor.fetchone()[0])

    before = org_unit_writes()
    run, _created = sync_request(integration=google_integration, trigger=SyncTrigger.MANUAL, enqueue=False)
    assert devices_sync(run).status == SyncStatus.SUCCEEDED
    assert org_unit_writes() == before
    assert set(OrgUnit.unscoped.values_list("last_seen_run_id", flat=True)) == {first.pk}


def relation_bytes(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size(%s::regclass)", [table])
        return int(cursor.fetchone()[0])


@pytest.mark.django_db(transaction=True)
def test_the_reaper_vacuums_the_staging_tables_so_their_space_is_reused() -> None:
    # Found by benchmarks/fleet.py (1,000 tenants, 1.1 M devices, on a server with autovacuum off): every run
    # deletes its staged rows, nothing vacuumed them, and the stage grew by 232 MB per no-change cycle (235 MB
    # after onboarding, 1,017 MB three cycles later) while the devices table stayed flat.
    before = relation_bytes(STAGE_TABLE) + relation_bytes(BATCH_TABLE)
    sizes: list[int] = []
    for run_id in range(900_001, 900_007):  # six runs, one after the other, each staging 5,000 devices
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {STAGE_TABLE} (run_id, seq, device_id, etag) "  # noqa: S608
                "SELECT %s, n, 'device-' || n, md5(n::text) FROM generate_series(1, 5000) n",
                [run_id],
            )
            cursor.execute(
                f"INSERT INTO {BATCH_TABLE} (run_id, seq, device_id, etag, payload) "  # noqa: S608
                "SELECT %s, n, 'device-' || n, md5(n::text), jsonb_build_object('notes', repeat(md5(n::text), 8)) "
                "FROM generate_series(1, 5000) n",
                [run_id],
            )
        sizes.append(relation_bytes(STAGE_TABLE) + relation_bytes(BATCH_TABLE))
        with connection.cursor() as cursor:  # the run's end (Stage.drop), then the reaper's tick
            cursor.execute(f"DELETE FROM {STAGE_TABLE} WHERE run_id = %s", [run_id])  # noqa: S608
            cursor.execute(f"DELETE FROM {BATCH_TABLE} WHERE run_id = %s", [run_id])  # noqa: S608
        sync_runs_reap(timezone.now())
    # The space the first runs' rows took is reused by every later run: the tables do not grow with the runs
    # (the first VACUUM adds the free-space and visibility maps, a few pages). Without it: +3 MB a run, here.
    # Not to the byte: pages emptied by one VACUUM are reused only once no snapshot can still see their rows
    # (index pages a cycle later), so the tables may grow by part of a run before they stop (seen with the
    # other worker's tests busy: +0.7 MB a run for two runs, then flat). Without the VACUUM: one run's rows
    # more at every run.
    one_run = sizes[0] - before
    assert sizes[-1] - sizes[1] < one_run, (before, sizes)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, vacuum_count FROM pg_stat_user_tables WHERE relname IN (%s, %s)",
            [STAGE_TABLE, BATCH_TABLE],
        )
        assert all(count > 0 for _name, count in cursor.fetchall())
