"""The Google quota governor (issue 18, point 3) against the real Redis and the emulator's limits over HTTP.

Several workers (threads here, each with its own client and Redis connection, as separate processes would have)
make a burst of calls for one tenant: sized under the emulator's limits, the governor gets every call through
with no rate error; disabled, the same burst is refused by the emulator in Google's shape.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from chromeos.google import quota
from chromeos.google.client import GoogleClient
from chromeos.google.errors import TransientGoogleError
from chromeos.models import GoogleIntegration, SyncStatus
from google_emulator.testing import EmulatorHandle
from tests.chromeos.test_sync_service import run_sync

WORKERS = 4
CALLS_PER_WORKER = 6


def emulator_limits(google_emulator: EmulatorHandle) -> None:
    """At most 20 calls per 2 s by one admin and 2 in flight per customer, each call taking 50 ms."""
    google_emulator.control("POST", "/latency", {"method": "*", "mean_ms": 50})
    google_emulator.control(
        "POST", "/limits", {"user_rate": 20, "window_seconds": 2, "customer_concurrency": 2}
    )


def burst(integration: GoogleIntegration) -> tuple[int, list[GoogleClient]]:
    """WORKERS threads, each with its own client, make CALLS_PER_WORKER calls at once; returns the errors."""
    errors: list[BaseException] = []
    clients = [GoogleClient(GoogleIntegration.unscoped.get(pk=integration.pk)) for _ in range(WORKERS)]
    start = threading.Barrier(WORKERS)

    def work(client: GoogleClient) -> None:
        try:
            start.wait()
            for _ in range(CALLS_PER_WORKER):
                try:
                    client.execute(client.directory().customers().get(customerKey="my_customer"))
                except TransientGoogleError as error:
                    errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(errors), clients


@pytest.fixture
def governed(emulator_settings: Any) -> Any:
    # Under the emulator's limits: a bucket of 3 refilled at 6/s allows at most 3 + 2 × 6 = 15 calls in any 2 s.
    emulator_settings.GOOGLE_QUOTA_USER_PER_MINUTE = 360
    emulator_settings.GOOGLE_QUOTA_BURST_SECONDS = 0.5
    emulator_settings.GOOGLE_QUOTA_TENANT_CONCURRENCY = 2
    emulator_settings.GOOGLE_RETRY_ATTEMPTS = 1  # every refusal surfaces: nothing is hidden by a retry
    return emulator_settings


@pytest.mark.django_db(transaction=True)
def test_a_burst_from_several_workers_stays_under_googles_limits(
    governed: Any, google_integration: GoogleIntegration, google_emulator: EmulatorHandle
) -> None:
    emulator_limits(google_emulator)
    errors, clients = burst(google_integration)
    limits = google_emulator.control("GET", "/limits")
    assert (errors, limits["refused"]) == (0, {})
    calls = google_emulator.requests("directory.customers.get")
    assert [c["status"] for c in calls] == [200] * WORKERS * CALLS_PER_WORKER
    # The waits are visible on the clients (the sync's run log adds them up).
    assert sum(c.quota_waits for c in clients) > 0


@pytest.mark.django_db(transaction=True)
def test_the_same_burst_ungoverned_is_refused_in_googles_shape(
    governed: Any, google_integration: GoogleIntegration, google_emulator: EmulatorHandle
) -> None:
    governed.GOOGLE_QUOTA_ENABLED = False
    emulator_limits(google_emulator)
    errors, _ = burst(google_integration)
    refused = google_emulator.control("GET", "/limits")["refused"]
    assert errors > 0
    assert errors == sum(refused.values())
    statuses = {c["status"] for c in google_emulator.requests("directory.customers.get")}
    assert statuses & {403, 429}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("status", "reason", "limit"),
    [(403, "userRateLimitExceeded", "user"), (403, "quotaExceeded", "project"), (429, None, "tenant")],
)
def test_a_rate_error_shrinks_the_matching_limit_for_every_worker(
    emulator_settings: Any,
    google_integration: GoogleIntegration,
    google_emulator: EmulatorHandle,
    status: int,
    reason: str | None,
    limit: str,
) -> None:
    google_emulator.add_fault(method="directory.customers.get", status=status, reason=reason)
    client = GoogleClient(google_integration)
    assert quota.penalty_factor(client.quota_subject, limit) == 1.0
    # Refused once, then retried.
    client.execute(client.directory().customers().get(customerKey="my_customer"))
    assert quota.penalty_factor(client.quota_subject, limit) == 0.5
    other = GoogleClient(GoogleIntegration.unscoped.get(pk=google_integration.pk))
    assert quota.penalty_factor(other.quota_subject, limit) == 0.5  # shared through Redis


@pytest.mark.django_db(transaction=True)
@pytest.mark.google_emulator(devices=20)
def test_the_sync_run_log_says_how_long_calls_waited_for_quota(
    emulator_settings: Any, google_integration: GoogleIntegration
) -> None:
    emulator_settings.GOOGLE_QUOTA_USER_PER_MINUTE = 240  # 4 calls a second, one at a time
    emulator_settings.GOOGLE_QUOTA_BURST_SECONDS = 0.1
    run = run_sync(google_integration)
    assert run.status == SyncStatus.SUCCEEDED, run.log
    waits = [line for line in run.log if line["msg"].startswith("Quota Google")]
    assert len(waits) == 1 and waits[0]["params"]["count"] >= 2, run.log


@pytest.mark.django_db(transaction=True)
@pytest.mark.google_emulator(customers=2, devices=5)
@pytest.mark.parametrize("enabled", [True, False])
def test_the_project_bucket_is_shared_by_every_tenant(
    governed: Any,
    google_integration: GoogleIntegration,
    google_emulator: EmulatorHandle,
    other_tenant: Any,
    enabled: bool,
) -> None:
    from tests.chromeos.test_multi_customer_sync import authorize

    # One OAuth client = one project: 30 calls per 3 s for both tenants together. The governor's project bucket
    # (6/s, 3 deep: at most 21 calls in any 3 s) keeps both under it; each admin alone would be far from it.
    governed.GOOGLE_QUOTA_ENABLED = enabled
    governed.GOOGLE_QUOTA_USER_PER_MINUTE = 6000
    governed.GOOGLE_QUOTA_PROJECT_PER_MINUTE = 360
    google_emulator.control("POST", "/limits", {"project_rate": 30, "window_seconds": 3})
    other = authorize(other_tenant, google_emulator, "2")
    results: list[tuple[int, list[GoogleClient]]] = []

    def tenant_burst(integration: GoogleIntegration) -> None:
        try:
            results.append(burst(integration))
        finally:
            connection.close()

    threads = [threading.Thread(target=tenant_burst, args=(i,)) for i in (google_integration, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    errors = sum(count for count, _ in results)
    refused = google_emulator.control("GET", "/limits")["refused"]
    if enabled:
        assert (errors, refused) == (0, {})
    else:
        assert errors > 0 and refused == {"quotaExceeded": errors}


@pytest.mark.django_db
def test_a_big_tenant_with_many_callers_does_not_starve_a_small_one(settings: Any) -> None:
    """A tight project bucket (10 calls/s, 1 deep), a big tenant with 8 callers asking at once and a small tenant
    with one: first come first served gives the small tenant about 1 token in 9; the fair queue gives each tenant
    that is waiting its turn, so the small one gets close to half."""
    settings.GOOGLE_QUOTA_PROJECT_PER_MINUTE = 600
    settings.GOOGLE_QUOTA_BURST_SECONDS = 0.1
    settings.GOOGLE_QUOTA_USER_PER_MINUTE = 60_000  # only the project bucket holds anyone back
    settings.GOOGLE_QUOTA_TENANT_CONCURRENCY = 8
    big = quota.Subject(project="fair-test.apps", user="admin@big.example", customer="C0big")
    small = quota.Subject(project="fair-test.apps", user="admin@small.example", customer="C0small")
    total = 40
    admitted = {big.customer: 0, small.customer: 0}
    small_waits: list[float] = []
    lock = threading.Lock()
    done = threading.Event()
    start = threading.Barrier(9)

    def caller(subject: quota.Subject) -> None:
        start.wait()
        while not done.is_set():
            lease = quota.acquire(subject, max_wait=30)
            lease.release()
            with lock:
                admitted[subject.customer] += 1
                if subject is small:
                    small_waits.append(lease.waited_seconds)
                if sum(admitted.values()) >= total:
                    done.set()

    threads = [threading.Thread(target=caller, args=(big,)) for _ in range(8)]
    threads.append(threading.Thread(target=caller, args=(small,)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    share = admitted[small.customer] / sum(admitted.values())
    assert share >= 0.3, (admitted, small_waits)
    served = quota.project_calls_served("fair-test.apps")
    assert served[small.customer] >= admitted[small.customer] - 1
