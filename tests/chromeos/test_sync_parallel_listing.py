"""The sync's parallel listing (issue 18, point 4), against the emulator over HTTP: partitions by org unit listed
at once give exactly the sequential result; anything that moves under them (a device changing OU, a count
that fails or does not add up) sends the run back to the sequential listing, and nothing is ever removed on the
strength of an unproven listing."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from chromeos.models import ChromeOSDevice, GoogleIntegration, SyncStatus
from google_emulator.testing import EmulatorHandle
from tests.chromeos.test_sync_faults import at_google, run_sync, stored

LIST = "directory.chromeosdevices.list"
COUNT = "admin.customer.devices.chromeos.countChromeOsDevices"
DEVICES = 240


@pytest.fixture
def parallel(emulator_settings: Any) -> Any:
    """Pages of 10 and a low threshold: the emulator's 240 devices over 13 OUs are listed by 4 threads."""
    emulator_settings.CHROMEOS_SYNC_PAGE_SIZE = 10
    emulator_settings.CHROMEOS_SYNC_PARALLEL_MIN_DEVICES = 100
    emulator_settings.CHROMEOS_SYNC_LISTING_THREADS = 4
    return emulator_settings


def rows(integration: GoogleIntegration) -> dict[str, tuple[Any, ...]]:
    return {
        r[0]: r[1:]
        for r in ChromeOSDevice.unscoped.filter(integration=integration, removed_at__isnull=True).values_list(
            "device_id", "etag", "org_unit_path", "serial_number", "status", "payload"
        )
    }


def partition_listings(google_emulator: EmulatorHandle) -> list[dict[str, Any]]:
    return [r for r in google_emulator.requests(LIST) if r["params"].get("orgUnitPath")]


def log_text(run: Any) -> str:
    return "\n".join(entry["msg"] % entry["params"] for entry in run.log)


def listed_alone(google_emulator: EmulatorHandle) -> list[tuple[str, str]]:
    """(id, path) of the OUs the last sync listed on their own (includeChildOrgunits=false), most devices
    first: the next sync of an unchanged tenant plans the same partitions."""
    units = google_emulator.directory().orgunits().list(customerId="my_customer", type="allIncludingParent")
    paths = {u["orgUnitId"]: u["orgUnitPath"] for u in units.execute()["organizationUnits"]}
    alone = {
        r["params"]["orgUnitPath"]
        for r in partition_listings(google_emulator)
        if r["params"].get("includeChildOrgunits") == "false" and not r["params"].get("pageToken")
    }
    size = {
        ou: sum(1 for d in google_emulator.state.devices.values() if d.data["orgUnitPath"] == paths[ou])
        for ou in alone
    }
    return [(ou, paths[ou]) for ou in sorted(alone, key=lambda ou: -size[ou])]


@pytest.mark.django_db
@pytest.mark.google_emulator(devices=DEVICES)
def test_a_tenant_listed_in_parallel_gets_exactly_the_sequential_result(
    parallel: Any, google_integration: GoogleIntegration, google_emulator: EmulatorHandle
) -> None:
    run = run_sync(google_integration)
    assert run.status == SyncStatus.SUCCEEDED, run.log
    assert len(partition_listings(google_emulator)) >= 4  # several OUs listed, each on its own
    assert "en parallèle" in log_text(run)
    assert stored(google_integration) == at_google(google_emulator)
    in_parallel = rows(google_integration)

    ChromeOSDevice.unscoped.filter(integration=google_integration).delete()
    parallel.CHROMEOS_SYNC_LISTING_THREADS = 1
    google_emulator.control("DELETE", "/requests")
    run = run_sync(google_integration)
    assert run.status == SyncStatus.SUCCEEDED
    assert partition_listings(google_emulator) == []
    assert rows(google_integration) == in_parallel
    assert len(in_parallel) == DEVICES


@pytest.mark.django_db
@pytest.mark.google_emulator(devices=DEVICES)
def test_a_device_moved_between_org_units_while_listed_sends_the_run_back_to_the_sequential_listing(
    parallel: Any, google_integration: GoogleIntegration, google_emulator: EmulatorHandle
) -> None:
    """The device leaves an OU whose listing is over for one not listed yet: listed by neither. Google's
    total is unchanged (a move), so only the partitions' counts can tell."""
    first = run_sync(google_integration)
    assert first.status == SyncStatus.SUCCEEDED
    (source, source_path), (target, target_path) = listed_alone(google_emulator)[:2]
    moved = next(
        r.device_id for r in google_emulator.state.devices.values() if r.data["orgUnitPath"] == source_path
    )
    # The source's listing starts late (its snapshot after the move); the move follows the target's first page
    # (its snapshot before the move).
    google_emulator.add_fault(method=LIST, params={"orgUnitPath": source}, delay_ms=3000)
    google_emulator.add_fault(
        method=LIST,
        page=1,
        params={"orgUnitPath": target},
        mutation={"op": "move_devices", "org_unit_path": target_path, "device_ids": [moved]},
    )
    google_emulator.control("DELETE", "/requests")
    run = run_sync(google_integration)
    assert run.status == SyncStatus.SUCCEEDED, run.log
    assert "reprise de la liste en séquence" in log_text(run)
    assert [
        r for r in google_emulator.requests(LIST) if not r["params"].get("orgUnitPath")
    ]  # the sequential one
    assert run.removed == 0
    assert stored(google_integration) == at_google(google_emulator)
    device = ChromeOSDevice.unscoped.get(integration=google_integration, device_id=moved)
    assert (device.org_unit_path, device.removed_at) == (target_path, None)


@pytest.mark.django_db
@pytest.mark.google_emulator(devices=DEVICES)
def test_a_count_that_fails_falls_back_and_removals_wait_for_the_proven_listing(
    parallel: Any, google_integration: GoogleIntegration, google_emulator: EmulatorHandle
) -> None:
    parallel.GOOGLE_RETRY_ATTEMPTS = 2
    first = run_sync(google_integration)
    assert first.status == SyncStatus.SUCCEEDED
    gone = google_emulator.control("POST", "/devices/delete", {"count": 3, "seed": 5})["device_ids"]
    source, _path = listed_alone(google_emulator)[0]
    # Every count of that OU fails: its partition is never proven.
    google_emulator.add_fault(method=COUNT, params={"orgUnitPath": source}, status=503, count=None)
    google_emulator.control("DELETE", "/requests")
    run = run_sync(google_integration)
    assert run.status == SyncStatus.SUCCEEDED, run.log
    assert "en séquence" in log_text(run)
    assert run.removed == 3
    assert stored(google_integration) == at_google(google_emulator)
    assert set(gone).isdisjoint(stored(google_integration))


@pytest.mark.django_db
@pytest.mark.google_emulator(devices=DEVICES)
def test_a_listing_that_never_adds_up_removes_nothing(
    parallel: Any, google_integration: GoogleIntegration, google_emulator: EmulatorHandle
) -> None:
    """Devices keep being enrolled while every listing runs, the parallel one and the sequential one after it:
    no listing is proven, so the devices deleted at Google meanwhile are not removed this time."""
    first = run_sync(google_integration)
    assert first.status == SyncStatus.SUCCEEDED
    before = stored(google_integration)
    gone = google_emulator.control("POST", "/devices/delete", {"count": 3, "seed": 5})["device_ids"]
    google_emulator.add_fault(method=LIST, page=2, mutation={"op": "add_devices", "count": 1}, count=None)
    run = run_sync(google_integration)
    assert run.status == SyncStatus.PARTIAL, run.log
    assert "en séquence" in log_text(run)
    assert run.removed == 0
    still = stored(google_integration)
    assert set(gone) <= set(still)
    assert set(before) <= set(still)


@pytest.mark.django_db
@pytest.mark.google_emulator(devices=60)
def test_a_small_tenant_keeps_the_sequential_listing(
    parallel: Any, google_integration: GoogleIntegration, google_emulator: EmulatorHandle
) -> None:
    run = run_sync(google_integration)
    assert run.status == SyncStatus.SUCCEEDED
    assert partition_listings(google_emulator) == []
    assert google_emulator.requests(COUNT) and all(
        not r["params"].get("orgUnitPath") for r in google_emulator.requests(COUNT)
    )


@pytest.mark.django_db
@pytest.mark.google_emulator(devices=DEVICES)
def test_the_listing_threads_stay_within_the_tenants_concurrency_cap(
    parallel: Any, google_integration: GoogleIntegration, google_emulator: EmulatorHandle
) -> None:
    """More threads than the governor lets a Workspace account have calls in flight: Google refuses nothing."""
    parallel.CHROMEOS_SYNC_LISTING_THREADS = 6
    parallel.GOOGLE_QUOTA_TENANT_CONCURRENCY = 2
    parallel.GOOGLE_RETRY_ATTEMPTS = 1  # a refusal would surface, not be retried away
    google_emulator.control("POST", "/latency", {"method": "*", "mean_ms": 20})
    google_emulator.control("POST", "/limits", {"customer_concurrency": 2})
    run = run_sync(google_integration)
    assert run.status == SyncStatus.SUCCEEDED, run.log
    assert len(partition_listings(google_emulator)) >= 4
    assert google_emulator.control("GET", "/limits")["refused"] == {}
    assert stored(google_integration) == at_google(google_emulator)


@pytest.mark.django_db
@pytest.mark.google_emulator(devices=DEVICES)
def test_googles_retries_in_a_parallel_listing_reach_the_run_log(
    parallel: Any, google_integration: GoogleIntegration, google_emulator: EmulatorHandle
) -> None:
    """Issue 15, point 3: a listing thread's backoffs are said in the run's log, as the sequential listing's."""
    assert run_sync(google_integration).status == SyncStatus.SUCCEEDED
    (first, _), (second, _) = listed_alone(google_emulator)[:2]
    # The emulator answers one fault per request: two 503s to one OU's listing, a 429 to another's.
    google_emulator.add_fault(method=LIST, status=503, count=2, params={"orgUnitPath": first})
    google_emulator.add_fault(method=LIST, status=429, count=1, params={"orgUnitPath": second})
    run = run_sync(google_integration)
    assert run.status == SyncStatus.SUCCEEDED, run.log
    assert "en parallèle" in log_text(run)
    assert not google_emulator.control("GET", "/faults")["faults"]  # all answered to the partitions' threads
    retries = [line for line in run.log if "nouvelle tentative" in line["msg"] % line["params"]]
    assert len(retries) == 3 and all(line["level"] == "warning" for line in retries), run.log


# What the sync sends to PostgreSQL (psycopg's cursors: the page's look-up and its COPY bypass Django's): the
# steps a run can skip.
DEDUPE = "DELETE FROM chromeos_syncstage AS s USING"
ETAG_LOOK_UP = "SELECT u.id, d.etag FROM unnest"
ABSENT = "NOT EXISTS (SELECT 1 FROM chromeos_syncstage"


def sync_statements(integration: GoogleIntegration, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[str]]:
    sent: list[str] = []
    execute = psycopg.Cursor.execute

    def record(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(str(query))
        return execute(cursor, query, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(psycopg.Cursor, "execute", record)
        run = run_sync(integration)
    assert run.status == SyncStatus.SUCCEEDED, run.log
    return run, sent


def sent_any(sent: list[str], fragment: str) -> bool:
    return any(fragment in sql for sql in sent)


@pytest.mark.django_db
@pytest.mark.google_emulator(devices=DEVICES)
def test_a_first_sync_neither_looks_up_etags_nor_absent_devices_it_cannot_have(
    parallel: Any,
    google_integration: GoogleIntegration,
    google_emulator: EmulatorHandle,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 18: a tenant with no device when the run starts has no stored etag to compare a page with and no
    device that could be absent from the listing: a first sync of 100,000 devices spent 334 look-ups and an
    anti-join of the listing with the table on nothing. Its re-sync still does both."""
    first, sent = sync_statements(google_integration, monkeypatch)
    assert first.added == DEVICES
    assert not sent_any(sent, ETAG_LOOK_UP)
    assert not sent_any(sent, ABSENT)
    assert stored(google_integration) == at_google(google_emulator)

    gone = next(iter(at_google(google_emulator)))
    google_emulator.control("POST", "/devices/delete", {"device_ids": [gone]})
    again, sent = sync_statements(google_integration, monkeypatch)
    assert sent_any(sent, ETAG_LOOK_UP) and sent_any(sent, ABSENT)
    assert (again.added, again.updated, again.removed) == (0, 0, 1)
    assert stored(google_integration) == at_google(google_emulator)


@pytest.mark.django_db
@pytest.mark.google_emulator(devices=DEVICES)
def test_a_parallel_listing_that_met_no_device_twice_skips_the_removal_of_duplicates(
    parallel: Any,
    google_integration: GoogleIntegration,
    google_emulator: EmulatorHandle,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 18: the end of every run deleted duplicate ids from its staged listing, a self-join of 100,000
    rows at 100,000 devices, after the last page. The parallel listing already tells every device's copies
    apart (for its proof): when it met none twice, there is nothing to delete. The sequential listing does not
    know, and still deletes."""
    run, sent = sync_statements(google_integration, monkeypatch)
    assert "en parallèle" in log_text(run)
    assert not sent_any(sent, DEDUPE)
    assert run.devices_seen == DEVICES
    assert stored(google_integration) == at_google(google_emulator)

    parallel.CHROMEOS_SYNC_LISTING_THREADS = 1
    run, sent = sync_statements(google_integration, monkeypatch)
    assert "en parallèle" not in log_text(run)
    assert sent_any(sent, DEDUPE)
