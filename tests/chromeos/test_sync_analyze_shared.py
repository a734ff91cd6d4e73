"""The devices table is shared by every tenant. A sync ANALYZEs it only when its own changes are a large share of
the whole table as its statistics know it, and never waits for another sync's ANALYZE (found by
benchmarks/fleet.py: 1,000 tenants onboarding at once queued on one another's ANALYZE)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chromeos.models import ChromeOSDevice, DeviceChange, SyncRun, SyncStatus, SyncTrigger
from chromeos.services.sync.merge import ANALYZE_LOCK_NAMESPACE, DEVICE_TABLE, DeviceMerge
from mdm.locks import dedicated_connection

pytestmark = pytest.mark.django_db


def _merge(integration: Any) -> DeviceMerge:
    run = SyncRun.unscoped.create(
        tenant=integration.tenant,
        integration=integration,
        trigger=SyncTrigger.MANUAL,
        status=SyncStatus.RUNNING,
    )
    return DeviceMerge(stage=None, integration=integration, run=run)  # type: ignore[arg-type]


def _statistics_know(rows: int) -> None:
    with connection.cursor() as cursor:  # rolled back with the test's transaction
        cursor.execute("UPDATE pg_class SET reltuples = %s WHERE oid = %s::regclass", [rows, DEVICE_TABLE])


def _analyzed(merge: DeviceMerge) -> bool:
    with CaptureQueriesContext(connection) as queries:
        merge.analyze_if_stale()
    return any(q["sql"].startswith("ANALYZE") for q in queries.captured_queries)


def test_a_small_tenants_first_sync_does_not_analyze_a_big_shared_table(google_integration):
    _statistics_know(200_000)
    merge = _merge(google_integration)
    merge.result.added = 1_500  # the tenant's table share doubled, the whole table's did not
    assert not _analyzed(merge)


def test_a_fresh_table_is_still_analyzed_as_it_fills(google_integration):
    _statistics_know(-1)  # never analyzed
    merge = _merge(google_integration)
    merge.result.added = 1_500
    assert _analyzed(merge) and merge.analyzed


def test_a_sync_never_waits_for_another_syncs_analyze(google_integration, settings):
    _statistics_know(-1)
    merge = _merge(google_integration)
    merge.result.added = 1_500
    other: psycopg.Connection[Any] = dedicated_connection(autocommit=False)
    try:
        other.execute("SELECT pg_advisory_xact_lock(%s, 0)", [ANALYZE_LOCK_NAMESPACE])
        assert not _analyzed(merge) and not merge.analyzed
    finally:
        other.rollback()
        other.close()
    assert _analyzed(merge)


def test_a_large_tenant_the_statistics_do_not_know_gets_the_table_analyzed(google_integration):
    """Found by benchmarks/fleet.py: a 50,000-device tenant's first sync into a table of 1,000 tenants, analyzed
    before that tenant had rows. Its rows were a small share of the table, so it was never analyzed, and the
    planner, counting the tenant at 1 row, read all its rows for each row of the history's look-up (28 s per
    batch of 3,000). Now a tenant of 5,000+ rows estimated at less than half of them gets the table analyzed,
    and the look-up is one probe of the (tenant, device_id) index per row."""
    from chromeos.services.sync.merge import history_sql
    from tests.factories import GoogleIntegrationFactory, TenantFactory

    other = GoogleIntegrationFactory(tenant=TenantFactory())
    ChromeOSDevice.unscoped.bulk_create(
        ChromeOSDevice(tenant=other.tenant, integration=other, device_id=f"other-{n}") for n in range(3000)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {DEVICE_TABLE}")  # the statistics know the other tenant only
    merge = _merge(google_integration)
    ChromeOSDevice.unscoped.bulk_create(
        ChromeOSDevice(tenant=google_integration.tenant, integration=google_integration, device_id=f"d-{n}")
        for n in range(6000)
    )
    merge.result.added = 6000
    _statistics_know(1_000_000)  # this run's 6,000 rows are a small share of the whole table
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO chromeos_syncbatch (run_id, seq, device_id, etag) "
            "SELECT %s, n, 'd-' || n, 'new' FROM generate_series(0, 2999) AS n",
            [merge.run.pk],
        )

    assert _analyzed(merge)

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + history_sql("chromeos_syncbatch"), merge.params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute(history_sql("chromeos_syncbatch"), merge.params)
    # The stored device is found by both keys of the (tenant, device_id) index, not filtered among the tenant's.
    assert any("Index Cond" in line and "device_id" in line for line in plan.splitlines()), plan
    assert DeviceChange.unscoped.filter(sync_run=merge.run).count() == 3000  # each stored device found once
    # Once the statistics count the tenant, its next doubling in a big table analyzes nothing.
    _statistics_know(1_000_000)
    merge.analyzed_changes, merge.analyzed_rows = 0, 1000
    assert not _analyzed(merge)
