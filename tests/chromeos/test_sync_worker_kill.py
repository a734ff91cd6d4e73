"""A real Celery worker (prefork, one child) running syncs, its child SIGKILLed at chosen points.

What production relies on, checked for real: ``acks_late`` + ``reject_on_worker_lost`` bring the task back when
the process running it dies; the redelivered task marks the interrupted run failed and a new run completes; the
stored devices equal Google's listing afterwards, whatever the moment of the kill:

* while paging (a few pages into the listing, between HTTP fetches and COPYs);
* in the merge transaction, at its first statement (the test holds the integration row);
* in the merge transaction, after the OUs were written, at the change history (the test holds that table);
* right after the merge committed (the run is already SUCCEEDED: the redelivery, if any, does nothing).

The worker runs against this test's database and the in-process emulator over HTTP, on its own Redis key
prefix so that it takes no other test's (or teammate's) tasks.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings

from chromeos.models import ChromeOSDevice, GoogleIntegration, SyncRun, SyncStatus
from google_emulator.testing import EmulatorHandle
from mdm.locks import dedicated_connection
from tests.processes import start_celery_worker, stop_process, wait_for, waiting_on_lock

LIST = "directory.chromeosdevices.list"
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sync-worker")]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may contain spaces, so split after the closing parenthesis.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


class Worker:
    def __init__(self, google_emulator: EmulatorHandle, log_path: Path) -> None:
        self.prefix = f"mdm-sync-kill-{uuid.uuid4().hex[:8]}:"
        broker = settings.CELERY_BROKER_URL
        self.process = start_celery_worker(
            google_emulator,
            broker=broker,
            prefix=self.prefix,
            log=log_path,
            name="sync-kill",
            extra_env={"CHROMEOS_SYNC_PAGE_SIZE": "20"},
        )
        self.app = Celery("sync-kill-test", broker=broker, set_as_current=False)
        self.app.conf.broker_transport_options = {"global_keyprefix": self.prefix}

    def send(self, run_id: int) -> None:
        self.app.send_task("chromeos.tasks.devices_sync_task", args=[run_id])

    def kill_child(self) -> int:
        [child] = wait_for(lambda: _children(self.process.pid), 10, "the pool child")
        os.kill(child, signal.SIGKILL)
        return child

    def stop(self) -> None:
        stop_process(self.process)


@pytest.fixture
def worker(google_emulator: EmulatorHandle, tmp_path: Path) -> Iterator[Worker]:
    started = Worker(google_emulator, tmp_path / "worker.log")
    try:
        yield started
    finally:
        started.stop()


def _settled(integration: GoogleIntegration, after_pk: int) -> SyncRun | None:
    runs = list(SyncRun.unscoped.filter(integration=integration, pk__gte=after_pk).order_by("pk"))
    if any(r.status in (SyncStatus.QUEUED, SyncStatus.RUNNING) for r in runs):
        return None
    return runs[-1] if runs and runs[-1].status == SyncStatus.SUCCEEDED else None


def _stored(integration: GoogleIntegration) -> dict[str, str]:
    return dict(
        ChromeOSDevice.unscoped.filter(integration=integration, removed_at__isnull=True).values_list(
            "device_id", "etag"
        )
    )


def _at_google(google_emulator: EmulatorHandle) -> dict[str, str]:
    return {d["deviceId"]: d["etag"] for d in google_emulator.control("GET", "/devices")["devices"]}


@pytest.mark.django_db(transaction=True)
@pytest.mark.google_emulator(devices=200)
def test_sigkill_at_any_point_loses_nothing_and_the_next_run_completes(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle, worker: Worker
) -> None:
    google_emulator.add_fault(method=LIST, delay_ms=150, count=None)  # 10 pages of 20: time to aim
    integration_pk = google_integration.pk

    def kill_while_paging(run: SyncRun) -> None:
        wait_for(lambda: SyncRun.unscoped.get(pk=run.pk).pages >= 2, 30, "page 2")
        worker.kill_child()

    def kill_at(table_lock_sql: str, waiting_query: str) -> Callable[[SyncRun], None]:
        def kill(run: SyncRun) -> None:
            with dedicated_connection() as blocker:
                blocker.execute(table_lock_sql, [integration_pk] if "%s" in table_lock_sql else [])
                wait_for(lambda: waiting_on_lock(waiting_query), 30, f"the merge to wait on {waiting_query}")
                worker.kill_child()
                blocker.rollback()

        return kill

    def kill_after_commit(run: SyncRun) -> None:
        wait_for(lambda: SyncRun.unscoped.get(pk=run.pk).status == SyncStatus.SUCCEEDED, 30, "the commit")
        worker.kill_child()

    scenarios: list[tuple[str, Callable[[SyncRun], None]]] = [
        ("paging", kill_while_paging),
        (
            "merge start",
            kill_at(
                "SELECT 1 FROM chromeos_googleintegration WHERE id = %s FOR UPDATE",
                "chromeos_googleintegration",
            ),
        ),
        (
            "merge middle",
            kill_at("LOCK TABLE chromeos_devicechange IN SHARE MODE", "INSERT INTO chromeos_devicechange"),
        ),
        ("after commit", kill_after_commit),
    ]
    for number, (point, kill) in enumerate(scenarios):
        if number:  # the world moves between runs, so each merge has real work to lose
            google_emulator.control("POST", "/devices/change", {"count": 15, "seed": number})
            google_emulator.control("POST", "/devices/delete", {"count": 3, "seed": number})
            google_emulator.control("POST", "/devices", {"count": 4})
        run = SyncRun.unscoped.create(
            tenant=google_integration.tenant, integration=google_integration, trigger="manual"
        )
        worker.send(run.pk)
        kill(run)
        final = wait_for(
            lambda run=run: _settled(google_integration, run.pk), 60, f"the sync after a kill {point}"
        )
        run.refresh_from_db()
        if point == "after commit":
            assert run.status == SyncStatus.SUCCEEDED and final.pk == run.pk, point
        else:
            assert run.status == SyncStatus.FAILED and "interrompue" in run.error, (
                point,
                run.status,
                run.log,
            )
            assert final.pk > run.pk, point
        assert _stored(google_integration) == _at_google(google_emulator), point
        assert not SyncRun.unscoped.filter(status__in=[SyncStatus.QUEUED, SyncStatus.RUNNING]).exists()
