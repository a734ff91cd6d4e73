"""The ChromeOS sync queue runs on threads (issue 18, "sync as I/O-bound work"): one worker process, many syncs.

A real ``celery worker`` started as production starts the sync worker (``--queues chromeos-sync --pool threads``),
against this test's database and the in-process multi-customer emulator with latency on every device page. Two
tenants' syncs, published with the console's own Celery routing, run at the same time in that one process; each
stores exactly its own Google customer's devices (one Google client, one database connection, one advisory lock
per thread), and the threads give their database connections back when their task ends.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from django.conf import settings
from django.db import connection
from django.utils import timezone

from chromeos.models import ChromeOSDevice, GoogleIntegration, SyncRun, SyncStatus, SyncTrigger
from chromeos.services.sync import LOCK_NAMESPACE, SYNC_TASK, sync_request, sync_runs_reap
from google_emulator.testing import EmulatorHandle
from mdm.locks import dedicated_connection
from mdm.models import Tenant
from mdm.tenancy import tenant_context
from tests.chromeos.test_multi_customer_sync import authorize
from tests.chromeos.test_sync_service import run_sync
from tests.factories import TenantFactory
from tests.processes import start_celery_worker, stop_process, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sync-worker")]


def worker_connections() -> int:
    """Sessions on this test's database other than the test's own: the worker's."""
    ours = connection.cursor().connection.info.backend_pid
    with dedicated_connection(autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid NOT IN (%s, pg_backend_pid())",
            [ours],
        ).fetchone()
    return int(row[0]) if row else 0


def worker_connections_by_application() -> dict[str, int]:
    """The worker's sessions on this test's database, counted by application_name."""
    ours = connection.cursor().connection.info.backend_pid
    with dedicated_connection(autocommit=True) as conn:
        rows = conn.execute(
            "SELECT application_name, count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend' AND pid NOT IN (%s, pg_backend_pid()) GROUP BY 1",
            [ours],
        ).fetchall()
    return {str(name): int(count) for name, count in rows}


def sync_lock_sessions() -> set[tuple[int, int]]:
    """(tenant id, session pid) of every sync lock held now."""
    with dedicated_connection(autocommit=True) as conn:
        rows = conn.execute(
            "SELECT objid, pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = %s "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            [LOCK_NAMESPACE],
        ).fetchall()
    return {(int(key), int(pid)) for key, pid in rows}


def console_app(prefix: str) -> Celery:
    """A publisher configured like the console (its routes included), on the worker's broker prefix."""
    # Not the current app: tasks bound through shared_task would follow it, and every later test of this
    # process would publish to this broker instead of running eagerly.
    app = Celery("sync-pool-test", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.task_always_eager = False
    app.conf.broker_transport_options = {
        **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        "global_keyprefix": prefix,
    }
    return app


def start_sync_worker(google_emulator: EmulatorHandle, prefix: str, log: Path) -> subprocess.Popen[bytes]:
    """The sync worker as production runs it (scripts/prod.sh sync-worker), with 4 threads."""
    return start_celery_worker(
        google_emulator,
        broker=settings.CELERY_BROKER_URL,
        prefix=prefix,
        log=log,
        name="sync-pool",
        pool="threads",
        concurrency=4,
        queues=settings.CHROMEOS_SYNC_QUEUE,
        extra_env={"CHROMEOS_SYNC_PAGE_SIZE": "100"},
    )


def queue_syncs(app: Celery, integrations: list[GoogleIntegration]) -> list[SyncRun]:
    runs = []
    for integration in integrations:
        run, created = sync_request(integration=integration, trigger=SyncTrigger.MANUAL, enqueue=False)
        assert created
        runs.append(run)
    for run in runs:
        app.send_task(SYNC_TASK, args=[run.pk])
    return runs


def finished(runs: list[SyncRun]) -> list[SyncRun] | None:
    fresh = list(SyncRun.unscoped.filter(pk__in=[r.pk for r in runs]).order_by("pk"))
    return fresh if all(r.status not in (SyncStatus.QUEUED, SyncStatus.RUNNING) for r in fresh) else None


def stored(integration: GoogleIntegration) -> set[str]:
    return set(
        ChromeOSDevice.unscoped.filter(integration=integration, removed_at__isnull=True).values_list(
            "device_id", flat=True
        )
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.google_emulator(customers=2, devices=600)
def test_two_tenants_sync_at_once_in_one_threads_worker(
    emulator_settings: Any,
    google_emulator: EmulatorHandle,
    tenant: Tenant,
    other_tenant: Tenant,
    tmp_path: Path,
) -> None:
    google_emulator.control("POST", "/latency", {"method": "directory.chromeosdevices.list", "mean_ms": 200})
    google_emulator.control("POST", "/devices", {"count": 30, "customer": "2"})
    integrations = [authorize(tenant, google_emulator, "1"), authorize(other_tenant, google_emulator, "2")]
    prefix = f"mdm-sync-pool-{uuid.uuid4().hex[:8]}:"
    worker = start_sync_worker(google_emulator, prefix, tmp_path / "worker.log")
    app = console_app(prefix)
    try:
        idle = worker_connections()
        runs = queue_syncs(app, integrations)

        # Both tenants' locks held at once, on the worker process's one lock session (mdm.locks.LockSession,
        # which refuses a second lock of one key itself: PostgreSQL's session locks are re-entrant).
        def both_held() -> set[tuple[int, int]] | None:
            sessions = sync_lock_sessions()
            return sessions if len(sessions) == 2 else None

        held = wait_for(both_held, 60, "both sync locks")
        assert {tenant_id for tenant_id, _pid in held} == {tenant.pk, other_tenant.pk}
        assert len({pid for _tenant, pid in held}) == 1
        assert worker_connections_by_application().get("mdm-sync-lock") == 1

        done = wait_for(lambda: finished(runs), 120, "both syncs to finish", interval=0.2)
        assert [r.status for r in done] == [SyncStatus.SUCCEEDED] * 2, [
            (r.status, r.error, r.log) for r in done
        ]
        # At the same time, in one process: the threads pool has no child processes.
        assert max(r.started_at for r in done) < min(r.finished_at for r in done)
        for integration, customer in zip(integrations, google_emulator.state.customers, strict=True):
            assert stored(integration) == set(customer.devices)
        assert (done[0].devices_seen, done[1].devices_seen) == (600, 630)
        # Each thread's Django connection (and each sync's lock connection) is closed when its task ends.
        wait_for(lambda: worker_connections() <= max(idle, 1), 20, "the worker's connections to close")
    finally:
        stop_process(worker)
        app.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.google_emulator(customers=2, devices=600)
def test_a_killed_threads_worker_loses_nothing_and_the_next_syncs_complete(
    emulator_settings: Any,
    google_emulator: EmulatorHandle,
    tenant: Tenant,
    other_tenant: Tenant,
    tmp_path: Path,
) -> None:
    """One process runs every sync of the threads worker, so its death takes them all (prefork lost one child's):
    the stored devices stay as they were, the reaper fails the runs within its tick (their locks died with the
    process), and the next syncs, on a new worker, complete."""
    integrations = [authorize(tenant, google_emulator, "1"), authorize(other_tenant, google_emulator, "2")]
    with tenant_context(tenant):
        assert run_sync(integrations[0]).status == SyncStatus.SUCCEEDED
    with tenant_context(other_tenant):
        assert run_sync(integrations[1]).status == SyncStatus.SUCCEEDED
    before = [stored(integration) for integration in integrations]
    for customer in ("1", "2"):
        google_emulator.control("POST", "/devices", {"count": 25, "customer": customer})
    google_emulator.control("POST", "/latency", {"method": "directory.chromeosdevices.list", "mean_ms": 300})
    prefix = f"mdm-sync-pool-{uuid.uuid4().hex[:8]}:"
    app = console_app(prefix)
    worker = start_sync_worker(google_emulator, prefix, tmp_path / "worker.log")
    try:
        runs = queue_syncs(app, integrations)
        wait_for(
            lambda: all(r.pages >= 2 for r in SyncRun.unscoped.filter(pk__in=[r.pk for r in runs])),
            60,
            "both syncs paging",
        )
        worker.kill()
        worker.wait(timeout=10)
        assert [stored(integration) for integration in integrations] == before
        wait_for(lambda: not sync_lock_sessions(), 20, "the dead worker's locks to go")
        assert sync_runs_reap(timezone.now()) == 2
        assert {r.status for r in SyncRun.unscoped.filter(pk__in=[r.pk for r in runs])} == {SyncStatus.FAILED}

        worker = start_sync_worker(google_emulator, prefix, tmp_path / "worker-2.log")
        again = queue_syncs(app, integrations)
        done = wait_for(lambda: finished(again), 120, "the next syncs to finish", interval=0.2)
        assert [r.status for r in done] == [SyncStatus.SUCCEEDED] * 2, [(r.status, r.error) for r in done]
        for integration, customer in zip(integrations, google_emulator.state.customers, strict=True):
            assert stored(integration) == set(customer.devices)
    finally:
        stop_process(worker)
        app.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.google_emulator(customers=16, devices=300)
def test_sixteen_busy_slots_hold_one_lock_connection(
    emulator_settings: Any, google_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """Issue 18, the connection budget: 16 syncs at once in one threads worker hold 16 Django connections and
    ONE lock connection (before: 16 lock connections, 2 connections per busy slot). Prints the figure."""
    google_emulator.control("POST", "/latency", {"method": "directory.chromeosdevices.list", "mean_ms": 700})
    tenants: list[Tenant] = [TenantFactory() for _ in range(16)]
    integrations = [authorize(t, google_emulator, str(i + 1)) for i, t in enumerate(tenants)]
    prefix = f"mdm-sync-pool-{uuid.uuid4().hex[:8]}:"
    worker = start_celery_worker(
        google_emulator,
        broker=settings.CELERY_BROKER_URL,
        prefix=prefix,
        log=tmp_path / "worker.log",
        name="sync-pool-16",
        pool="threads",
        concurrency=16,
        queues=settings.CHROMEOS_SYNC_QUEUE,
        extra_env={"CHROMEOS_SYNC_PAGE_SIZE": "100"},
    )
    app = console_app(prefix)
    try:
        idle = worker_connections()
        runs = queue_syncs(app, integrations)
        peak: dict[str, int] = {}
        busy_peak = 0

        def all_running() -> bool:
            nonlocal busy_peak
            busy = SyncRun.unscoped.filter(pk__in=[r.pk for r in runs], status=SyncStatus.RUNNING).count()
            counts = worker_connections_by_application()
            if busy >= busy_peak:
                busy_peak = busy
                for name, count in counts.items():
                    peak[name] = max(peak.get(name, 0), count)
            return busy == 16

        wait_for(all_running, 90, "16 syncs running at once", interval=0.1)
        for _ in range(5):
            all_running()
        done = wait_for(lambda: finished(runs), 180, "the 16 syncs to finish", interval=0.5)
        assert [r.status for r in done] == [SyncStatus.SUCCEEDED] * 16, [(r.status, r.error) for r in done]
        lock = peak.get("mdm-sync-lock", 0)
        total = sum(peak.values())
        print(f"\n16 busy slots: {peak} -> {total} connections, {total / 16:.2f} per busy slot, lock: {lock}")
        assert lock == 1
        assert (
            total <= 16 + 1 + 1
        )  # 16 Django connections, the lock session, at most one more of the worker's
        # Idle again: no lock session (the last release ends it), the threads' Django connections closed.
        wait_for(
            lambda: (
                "mdm-sync-lock" not in worker_connections_by_application()
                and worker_connections() <= idle + 1
            ),
            30,
            "the worker's connections to close",
        )
    finally:
        stop_process(worker)
        app.close()
