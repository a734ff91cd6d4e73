"""The sync under Google's faults (the emulator's fault injection, over HTTP) and under races.

The invariant checked throughout: after a run, the stored devices are exactly what Google listed when a listing
completed and added up, and never lose a device on the strength of an incomplete listing.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from chromeos.models import (
    ChromeOSDevice,
    DeviceChange,
    GoogleIntegration,
    IntegrationStatus,
    SyncRun,
    SyncStatus,
    SyncTrigger,
)
from chromeos.services.sync import (
    SyncLock,
    devices_sync,
    sync_confirm_removals,
    sync_dispatch,
    sync_lock_held,
    sync_request,
)
from google_emulator.testing import EmulatorHandle
from mdm.locks import dedicated_connection
from mdm.models import User
from mdm.tenancy import tenant_context
from tests.processes import reset_pool, wait_for

LIST = "directory.chromeosdevices.list"


def new_run(integration: GoogleIntegration, trigger: str = SyncTrigger.MANUAL) -> SyncRun:
    run, created = sync_request(integration=integration, trigger=trigger, enqueue=False)
    assert created, f"a run is already active: #{run.pk} {run.status}"
    return run


def run_sync(integration: GoogleIntegration, **kwargs: Any) -> SyncRun:
    return devices_sync(new_run(integration), **kwargs)


def stored(integration: GoogleIntegration) -> dict[str, str]:
    return dict(
        ChromeOSDevice.unscoped.filter(integration=integration, removed_at__isnull=True).values_list(
            "device_id", "etag"
        )
    )


def at_google(google_emulator: EmulatorHandle) -> dict[str, str]:
    return {d["deviceId"]: d["etag"] for d in google_emulator.control("GET", "/devices")["devices"]}


def requests_to(google_emulator: EmulatorHandle, method: str) -> list[dict[str, Any]]:
    return google_emulator.requests(method)


@pytest.fixture
def small_pages(settings: Any) -> Any:
    settings.CHROMEOS_SYNC_PAGE_SIZE = 10
    return settings


# -- transient errors ------------------------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("status", [429, 500, 503])
def test_bursts_of_transient_errors_are_retried(
    status: int, google_integration: GoogleIntegration, google_emulator: EmulatorHandle, small_pages: Any
) -> None:
    google_emulator.add_fault(
        method=LIST, status=status, count=3, page=2, retry_after=1 if status == 429 else None
    )
    run = run_sync(google_integration)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert stored(google_integration) == at_google(google_emulator)
    statuses = [r["status"] for r in requests_to(google_emulator, LIST)]
    assert statuses.count(status) == 3 and statuses.count(200) == 5  # 50 devices, 10 a page


@pytest.mark.django_db
def test_retries_are_bounded_and_a_failed_listing_removes_nothing(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle, small_pages: Any, settings: Any
) -> None:
    assert run_sync(google_integration).status == SyncStatus.SUCCEEDED
    before = stored(google_integration)
    google_emulator.control("POST", "/devices/delete", {"count": 2, "seed": 3})
    settings.GOOGLE_RETRY_ATTEMPTS = 3
    google_emulator.add_fault(method=LIST, status=503, count=None, page=3)
    run = run_sync(google_integration)
    assert run.status == SyncStatus.FAILED and "Erreur Google" in run.error
    assert [r["status"] for r in requests_to(google_emulator, LIST)].count(503) == 3
    assert stored(google_integration) == before  # the 2 devices deleted at Google are still here
    assert run.removed == 0 and not ChromeOSDevice.unscoped.filter(removed_at__isnull=False).exists()


# -- tokens ----------------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_an_expired_access_token_is_refreshed_and_saved(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle
) -> None:
    old_token = google_integration.access_token
    google_emulator.control("POST", "/oauth/expire-access-tokens", {})
    run = run_sync(google_integration)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    google_integration.refresh_from_db()
    assert google_integration.access_token and google_integration.access_token != old_token
    assert any(r["status"] == 200 for r in google_emulator.requests("oauth2.token"))


@pytest.mark.django_db
def test_a_revoked_grant_pauses_the_integration_and_deletes_nothing(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle
) -> None:
    assert run_sync(google_integration).status == SyncStatus.SUCCEEDED
    before = stored(google_integration)
    google_emulator.control("POST", "/devices/delete", {"count": 20, "seed": 3})
    google_emulator.control("POST", "/oauth/revoke", {})
    run = run_sync(google_integration)
    assert run.status == SyncStatus.FAILED and "invalid_grant" in run.error
    google_integration.refresh_from_db()
    assert google_integration.status == IntegrationStatus.REAUTH_REQUIRED
    assert stored(google_integration) == before
    # Paused: the dispatcher does not schedule it even when due.
    GoogleIntegration.unscoped.filter(pk=google_integration.pk).update(
        next_sync_at=google_integration.authorized_at
    )
    assert sync_dispatch(enqueue=False) == []


# -- incomplete listings ---------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_an_expired_page_token_fails_the_run_and_removes_nothing(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle, small_pages: Any
) -> None:
    assert run_sync(google_integration).status == SyncStatus.SUCCEEDED
    before = stored(google_integration)
    google_emulator.control("POST", "/devices/delete", {"count": 1, "seed": 5})

    def expire_after_first_page(run: SyncRun) -> None:
        if run.pages == 1:
            google_emulator.control("POST", "/page-tokens/expire", {})

    run = run_sync(google_integration, progress=expire_after_first_page)
    assert run.status == SyncStatus.FAILED and "page" in run.error.lower()
    assert stored(google_integration) == before


@pytest.mark.django_db
def test_devices_deleted_between_pages_are_not_removed_until_a_listing_adds_up(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle, small_pages: Any
) -> None:
    assert run_sync(google_integration).status == SyncStatus.SUCCEEDED
    google_emulator.add_fault(method=LIST, page=1, mutation={"op": "delete_devices", "count": 4, "seed": 9})
    run = run_sync(google_integration)
    assert run.status == SyncStatus.PARTIAL and run.removed == 0
    assert len(stored(google_integration)) == 50
    # The next, stable listing adds up and removes exactly the devices Google no longer has.
    run = run_sync(google_integration)
    assert run.status == SyncStatus.SUCCEEDED and run.removed == 4
    assert stored(google_integration) == at_google(google_emulator)
    assert DeviceChange.unscoped.filter(sync_run=run, changes={"removed": [False, True]}).count() == 4


@pytest.mark.django_db
def test_devices_added_between_pages_come_with_the_next_sync(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle, small_pages: Any
) -> None:
    google_emulator.add_fault(method=LIST, page=2, mutation={"op": "add_devices", "count": 3})
    google_emulator.add_fault(method=LIST, page=3, mutation={"op": "change_devices", "count": 5, "seed": 2})
    run = run_sync(google_integration)
    assert run.status == SyncStatus.PARTIAL
    run = run_sync(google_integration)
    assert run.status == SyncStatus.SUCCEEDED and run.added == 3
    assert stored(google_integration) == at_google(google_emulator)


@pytest.mark.django_db
def test_malformed_fields_are_stored_and_not_fatal(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle
) -> None:
    device_id = next(iter(at_google(google_emulator)))
    google_emulator.control(
        "POST",
        "/devices/update",
        {
            "device_id": device_id,
            "changes": {
                "lastSync": "pas une date",
                "autoUpdateExpiration": "jamais",
                "serialNumber": {"inattendu": True},
                "model": "M" * 400,
                "notes": "nul\u0000caractère",
                "recentUsers": "personne",
                "champInconnu": [1, {"a": None}],
            },
        },
    )
    run = run_sync(google_integration)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    device = ChromeOSDevice.unscoped.get(device_id=device_id)
    assert device.last_sync is None and device.auto_update_expiration is None and device.serial_number == ""
    assert device.model == "M" * 255 and device.notes == "nulcaractère" and device.recent_user == ""
    assert device.payload["champInconnu"] == [1, {"a": None}]
    assert device.payload["serialNumber"] == {"inattendu": True}
    assert stored(google_integration) == at_google(google_emulator)


@pytest.mark.django_db
def test_entries_without_a_device_id_are_skipped_and_duplicates_kept_once(
    google_integration: GoogleIntegration,
) -> None:
    # The emulator cannot serve a device without its id; Google's listing is fed to the staging step directly.
    from chromeos.services.sync import Listing, Stage
    from chromeos.services.sync.merge import DeviceMerge

    run = new_run(google_integration)
    stage = Stage(run)
    stage.create()
    listing = Listing()
    page = [
        {"deviceId": "ok-1", "etag": "e1", "status": "ACTIVE"},
        {"serialNumber": "no id"},
        "garbage",
        None,
    ]
    stage.write_page(page, google_integration.tenant_id, listing)
    assert (listing.pages, listing.devices, listing.skipped, listing.fresh) == (1, 1, 3, 1)
    # Google's offset paging can repeat a device when the listing shifts: the last copy wins, in the listing
    # (counted once) and in the devices table.
    again = [{"deviceId": "ok-1", "etag": "e2", "status": "DISABLED"}]
    stage.write_page(again, google_integration.tenant_id, listing)
    DeviceMerge(stage, google_integration, run).merge_batch()
    stage.analyze()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT device_id, etag FROM {stage.table}")  # noqa: S608
        assert cursor.fetchall() == [("ok-1", "e2")]
    stage.drop()
    device = ChromeOSDevice.unscoped.get(device_id="ok-1")
    assert (device.etag, device.status) == ("e2", "DISABLED")


@pytest.mark.django_db
def test_payload_values_jsonb_refuses_are_made_safe_and_the_rest_kept(
    google_integration: GoogleIntegration,
) -> None:
    # Python's json parser accepts what Google's JSON should never hold but a broken proxy could: NaN and
    # Infinity, a lone UTF-16 surrogate, integers past 64 bits. jsonb refuses the first two: the device is kept.
    from chromeos.services.sync import Listing, Stage

    run = new_run(google_integration)
    stage = Stage(run)
    stage.create()
    device = {
        "deviceId": "odd-1",
        "etag": "e1",
        "serialNumber": "SN\ud800X",
        "battery": float("nan"),
        "uptime": float("inf"),
        "counter": 2**70,
        "notes": "nul\u0000ici",
        "model": "Modèle é",
    }
    listing = Listing()
    stage.write_page([device], google_integration.tenant_id, listing)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT serial_number, payload::text FROM {stage.batch}")  # noqa: S608
        serial, payload_text = cursor.fetchone()
    stage.drop()
    payload = json.loads(payload_text)
    assert serial == "SN\ud800X".encode("utf-8", "replace").decode() == "SN?X"
    assert (
        payload["serialNumber"] == "SN?X" and payload["notes"] == "nulici" and payload["model"] == "Modèle é"
    )
    assert payload["battery"] is None and payload["uptime"] is None and payload["counter"] == 2**70


# -- the deletion guard ----------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_large_removal_waits_for_confirmation(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle, admin_user: User
) -> None:
    assert run_sync(google_integration).status == SyncStatus.SUCCEEDED
    google_emulator.control("POST", "/devices/delete", {"count": 2, "seed": 1})  # 4 %: under the guard
    assert run_sync(google_integration).removed == 2
    google_emulator.control("POST", "/devices/delete", {"count": 10, "seed": 2})  # 10 of 48: over 10 %
    guarded = run_sync(google_integration)
    assert guarded.status == SyncStatus.GUARDED and guarded.pending_removals == 10 and guarded.removed == 0
    assert len(stored(google_integration)) == 48
    with tenant_context(google_integration.tenant):
        confirmed, created = sync_confirm_removals(
            integration=google_integration, run_id=guarded.pk, user=admin_user
        )
    assert created and confirmed.removal_allowance == 10
    confirmed = devices_sync(confirmed)
    assert confirmed.status == SyncStatus.SUCCEEDED and confirmed.removed == 10
    assert stored(google_integration) == at_google(google_emulator)


@pytest.mark.django_db
def test_guard_threshold_is_per_integration(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle
) -> None:
    assert run_sync(google_integration).status == SyncStatus.SUCCEEDED
    GoogleIntegration.unscoped.filter(pk=google_integration.pk).update(deletion_guard_percent=50)
    google_emulator.control("POST", "/devices/delete", {"count": 20, "seed": 2})
    google_integration.refresh_from_db()
    run = run_sync(google_integration)
    assert run.status == SyncStatus.SUCCEEDED and run.removed == 20


# -- races -----------------------------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_two_syncs_of_one_tenant_at_once_one_runs(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle
) -> None:
    # Two runs queued behind the console's back (as two workers would receive them): the lock lets one run.
    first = SyncRun.unscoped.create(
        tenant=google_integration.tenant, integration=google_integration, trigger="manual"
    )
    second = SyncRun.unscoped.create(
        tenant=google_integration.tenant, integration=google_integration, trigger="scheduled"
    )
    google_emulator.add_fault(method=LIST, delay_ms=1500, count=1)
    results: dict[int, SyncRun] = {}

    def work(run: SyncRun) -> None:
        try:
            results[run.pk] = devices_sync(run)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(run,)) for run in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    statuses = sorted(r.status for r in results.values())
    assert statuses == [SyncStatus.SKIPPED, SyncStatus.SUCCEEDED]
    skipped = next(r for r in results.values() if r.status == SyncStatus.SKIPPED)
    assert "Une autre synchronisation" in skipped.log[-1]["msg"]
    assert len(requests_to(google_emulator, "admin.customer.devices.chromeos.countChromeOsDevices")) == 2
    assert stored(google_integration) == at_google(google_emulator)


@pytest.mark.django_db(transaction=True)
def test_a_removal_that_wins_the_race_leaves_nothing_written(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle, small_pages: Any
) -> None:
    # Every page is merged as it comes; what the first two pages wrote before the removal began, the removal
    # itself deletes (its last step, not run here): the sync writes nothing after it.
    small_pages.CHROMEOS_SYNC_MERGE_ROWS = 10
    before_removal: dict[str, str] = {}

    def removal_starts(run: SyncRun) -> None:
        if run.pages == 2:
            # Both pages were handed to the merge thread before this callback: let it commit them first.
            deadline = time.monotonic() + 10
            while len(stored(google_integration)) < 20 and time.monotonic() < deadline:
                time.sleep(0.05)
            before_removal.update(stored(google_integration))
            GoogleIntegration.unscoped.filter(pk=google_integration.pk).update(
                status=IntegrationStatus.REMOVING
            )

    run = run_sync(google_integration, progress=removal_starts)
    assert run.status == SyncStatus.FAILED and "supprimée" in run.error
    assert len(before_removal) == 20 and stored(google_integration) == before_removal
    assert ChromeOSDevice.unscoped.count() == 20


@pytest.mark.django_db(transaction=True)
def test_postgresql_dropping_the_connection_mid_run_then_the_retry_completes(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle, small_pages: Any
) -> None:
    def kill_my_backend(run: SyncRun) -> None:
        if run.pages == 3:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pid = cursor.fetchone()[0]
            with dedicated_connection(autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", [pid])

    run = new_run(google_integration)
    with pytest.raises(Exception):  # noqa: B017 - psycopg's or Django's wrapper, depending on where it hits
        devices_sync(run, progress=kill_my_backend)
    connection.close()  # what Celery's Django fixup does between tasks
    assert SyncRun.unscoped.get(pk=run.pk).status == SyncStatus.RUNNING  # nobody could record the failure
    # The task's retry: the interrupted run is marked failed and a new run does the work.
    retried = devices_sync(run)
    assert SyncRun.unscoped.get(pk=run.pk).status == SyncStatus.FAILED
    assert retried.pk != run.pk and retried.status == SyncStatus.SUCCEEDED
    assert stored(google_integration) == at_google(google_emulator)


@pytest.mark.django_db(transaction=True)
def test_the_shared_lock_connection_dropping_mid_run_aborts_every_sync_of_the_process_without_removals(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle, small_pages: Any
) -> None:
    # A threads worker's syncs share one lock connection (mdm.locks.LockSession): when it goes, every lock of
    # the process goes with it, and each sync must notice before it merges or removes anything.
    assert run_sync(google_integration).status == SyncStatus.SUCCEEDED
    google_emulator.control("POST", "/devices/delete", {"count": 2, "seed": 3})
    before = stored(google_integration)
    neighbour = SyncLock(google_integration.tenant_id + 1000)  # another tenant's sync in the same process
    assert neighbour.acquire()

    def kill_the_lock_session(run: SyncRun) -> None:
        if run.pages == 2:
            with dedicated_connection(autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name = 'mdm-sync-lock'"
                )
                wait_for(
                    lambda: (
                        not admin.execute(
                            "SELECT 1 FROM pg_stat_activity "
                            "WHERE datname = current_database() AND application_name = 'mdm-sync-lock'"
                        ).fetchone()
                    ),
                    10,
                    "the lock session to end",
                )

    try:
        run = run_sync(google_integration, progress=kill_the_lock_session)
        assert run.status == SyncStatus.FAILED and "lost the sync lock" in run.error
        assert stored(google_integration) == before and run.removed == 0
        assert not neighbour.held()
        wait_for(lambda: not sync_lock_held(google_integration.tenant_id), 10, "the lost lock to be free")
        # The next sync opens a new lock connection and does the work.
        again = run_sync(google_integration)
        assert again.status == SyncStatus.SUCCEEDED and again.removed == 2
        assert stored(google_integration) == at_google(google_emulator)
    finally:
        neighbour.release()


@pytest.mark.django_db(transaction=True)
def test_a_sync_past_its_maximum_duration_fails_and_removes_nothing(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle, small_pages: Any, settings: Any
) -> None:
    # The threads pool enforces no Celery time limit: the run's own deadline (CHROMEOS_SYNC_MAX_SECONDS),
    # checked at each page and merge and before the final step, ends a run that goes on beyond reason.
    assert run_sync(google_integration).status == SyncStatus.SUCCEEDED
    google_emulator.control("POST", "/devices/delete", {"count": 2, "seed": 3})
    before = stored(google_integration)
    settings.CHROMEOS_SYNC_MAX_SECONDS = 0.3
    google_emulator.add_fault(method=LIST, delay_ms=500, count=1, page=2)
    run = run_sync(google_integration)
    assert run.status == SyncStatus.FAILED, (run.status, run.error)
    assert "CHROMEOS_SYNC_MAX_SECONDS" in run.error and "aucun n'est retiré" in run.error
    assert run.log[-1]["msg"].startswith("Arrêtée après") and run.log[-1]["params"]["limit"] == "0.3"
    assert stored(google_integration) == before and run.removed == 0
    assert not sync_lock_held(google_integration.tenant_id)
    settings.CHROMEOS_SYNC_MAX_SECONDS = 0  # no limit
    again = run_sync(google_integration)
    assert again.status == SyncStatus.SUCCEEDED and again.removed == 2
    assert stored(google_integration) == at_google(google_emulator)


# -- the schedule ----------------------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_at_once_dispatch_each_tenant_once(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle
) -> None:
    run = run_sync(google_integration)
    google_integration.refresh_from_db()
    assert google_integration.first_sync_at is not None and google_integration.next_sync_at is not None
    assert (google_integration.next_sync_at - run.finished_at).total_seconds() >= 3600 - 1
    GoogleIntegration.unscoped.filter(pk=google_integration.pk).update(next_sync_at=run.finished_at)
    created: list[list[SyncRun]] = []
    barrier = threading.Barrier(2)

    def dispatch() -> None:
        try:
            barrier.wait()
            created.append(sync_dispatch(enqueue=False))
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(len(c) for c in created) == [0, 1]
    assert SyncRun.unscoped.filter(trigger=SyncTrigger.SCHEDULED).count() == 1
    google_integration.refresh_from_db()
    assert google_integration.next_sync_at > run.finished_at


@pytest.mark.django_db
def test_dispatch_skips_tenants_never_synced_or_not_active(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle
) -> None:
    GoogleIntegration.unscoped.filter(pk=google_integration.pk).update(
        next_sync_at=google_integration.authorized_at
    )
    assert sync_dispatch(enqueue=False) == []  # no first manual sync yet
    GoogleIntegration.unscoped.filter(pk=google_integration.pk).update(
        first_sync_at=google_integration.authorized_at, status=IntegrationStatus.REMOVING
    )
    assert sync_dispatch(enqueue=False) == []
    GoogleIntegration.unscoped.filter(pk=google_integration.pk).update(status=IntegrationStatus.ACTIVE)
    [run] = sync_dispatch(enqueue=False)
    assert run.trigger == SyncTrigger.SCHEDULED


@override_settings(CHROMEOS_SYNC_INTERVAL_SECONDS=3600)
def test_tenants_are_spread_over_the_hour() -> None:
    from datetime import UTC, datetime

    from chromeos.services.sync import next_slot, sync_offset_for

    offsets = {sync_offset_for(tenant_id) for tenant_id in range(1, 241)}
    minutes = {offset // 60 for offset in offsets}
    assert len(minutes) > 45  # 240 tenants land on most minutes of the hour, not all at :00
    now = datetime(2026, 1, 1, 10, 59, 30, tzinfo=UTC)
    assert next_slot(15 * 60, now) == datetime(2026, 1, 1, 11, 15, tzinfo=UTC)
    assert next_slot(15 * 60, datetime(2026, 1, 1, 11, 15, tzinfo=UTC)) == datetime(
        2026, 1, 1, 12, 15, tzinfo=UTC
    )


@pytest.mark.django_db
def test_a_stale_running_run_is_marked_failed_and_a_new_one_starts(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle
) -> None:
    # RUNNING, but nobody holds the tenant's lock: its worker died.
    dead = SyncRun.unscoped.create(
        tenant=google_integration.tenant, integration=google_integration, trigger="manual", status="running"
    )
    run, created = sync_request(integration=google_integration, trigger=SyncTrigger.MANUAL, enqueue=False)
    assert created and run.pk != dead.pk
    dead.refresh_from_db()
    assert dead.status == SyncStatus.FAILED and "interrompue" in dead.error
    assert devices_sync(run).status == SyncStatus.SUCCEEDED


@pytest.mark.django_db(transaction=True)
def test_redis_down_at_enqueue_delays_the_run_and_it_runs_when_redis_is_back(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle, broker_down: Any
) -> None:
    from mdm.jobs import jobs_reap, publication_pending

    run, created = sync_request(integration=google_integration, trigger=SyncTrigger.MANUAL)
    assert created
    run.refresh_from_db()
    # Committed work is delayed, not lost: the run waits in the outbox, and is not reaped as "never started".
    assert run.status == SyncStatus.QUEUED and publication_pending("chromeos.syncrun", run.pk)
    later = timezone.now() + timedelta(hours=2)
    SyncRun.unscoped.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(hours=2))
    jobs_reap(later)  # the broker is still down, for hours: nothing is lost
    run.refresh_from_db()
    assert run.status == SyncStatus.QUEUED
    # A second click returns the waiting run instead of queuing another.
    same, created = sync_request(integration=google_integration, trigger=SyncTrigger.MANUAL)
    assert not created and same.pk == run.pk
    # Redis is back (and eager again: the task runs when published).
    broker_down.conf.update(task_always_eager=True, broker_url=settings.CELERY_BROKER_URL)
    reset_pool(broker_down)
    assert jobs_reap(later)["outbox"] == 1
    run.refresh_from_db()
    assert run.status == SyncStatus.SUCCEEDED
    assert not publication_pending("chromeos.syncrun", run.pk)


@pytest.mark.django_db(transaction=True)
def test_the_beat_task_dispatches_due_tenants(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle
) -> None:
    from chromeos.tasks.sync import sync_dispatch_task

    first = run_sync(google_integration)
    GoogleIntegration.unscoped.filter(pk=google_integration.pk).update(next_sync_at=first.finished_at)
    assert sync_dispatch_task.delay().get() == 1  # eager: the scheduled run ran on commit
    scheduled = SyncRun.unscoped.get(trigger=SyncTrigger.SCHEDULED)
    assert scheduled.status == SyncStatus.SUCCEEDED and scheduled.unchanged == 50
    assert sync_dispatch_task.delay().get() == 0  # not due any more
