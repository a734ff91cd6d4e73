"""The devices table is shared by every tenant. A sync ANALYZEs it only when its own changes are a large share of
the whole table as its statistics know it, and never waits for another sync's ANALYZE (found by
benchmarks/fleet.py: 1,000 tenants onboarding at once queued on one another's ANALYZE)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chromeos.models import SyncRun, SyncStatus, SyncTrigger
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
