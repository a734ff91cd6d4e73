"""Device jobs against a real Celery worker and a real Redis broker started by the test (issue 15, What to build 1).

* The broker is down when an operator confirms an action: the page answers (no 500) and says the action will
  leave when the queue is back; Redis is restarted, the reaper publishes the outbox, the worker runs the job.
* The whole worker (parent and pool child) is SIGKILLed in the middle of a bulk annotation: the reaper sees the
  job's heartbeat stop, fails the one item that may have been in flight at Google, and queues the rest again; a
  new worker finishes it. The emulator's request log proves no device was patched twice.

Each test owns its Redis (a free port, no persistence) and key prefix; the worker runs against this test's
database and the in-process emulator over HTTP.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from chromeos.models import DeviceActionItem, DeviceActionJob, JobStatus
from chromeos.services import devices as services
from mdm.jobs import jobs_reap, publication_pending
from mdm.tenancy import tenant_context
from tests.chromeos.test_device_actions import prepare
from tests.processes import wait_for

pytest_plugins = ["tests.chromeos.test_device_actions"]
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("job-worker")]

PATCH = "directory.chromeosdevices.patch"


def _job(pk: int) -> DeviceActionJob:
    return DeviceActionJob.unscoped.get(pk=pk)


@pytest.mark.django_db(transaction=True)
def test_broker_down_at_confirm_the_page_says_so_and_the_job_runs_once_redis_is_back(
    operator, fleet, google_emulator, broker, workers
):
    redis, _prefix = broker
    workers()
    device = next(d for d in fleet if d.status == "ACTIVE")
    url, job = prepare(operator, "disable", [device])
    redis.stop()
    response = operator.post(url, {})
    assert response.status_code == 302
    page = operator.get(response["Location"]).content.decode()
    assert "La file des tâches est indisponible : l&#x27;action partira dès son retour." in page
    assert _job(job.pk).status == JobStatus.QUEUED and publication_pending(services.JOB_KIND, job.pk)

    redis.start()
    assert _job(job.pk).status == JobStatus.QUEUED  # nothing was lost meanwhile
    assert jobs_reap(timezone.now() + timedelta(minutes=1))["outbox"] == 1
    wait_for(lambda: _job(job.pk).status == JobStatus.SUCCEEDED, 60, "the job to run on the worker")
    assert len(google_emulator.requests("admin.customer.devices.chromeos.batchChangeStatus")) == 1


# (action, params, Google method, devices per call, how to read the device ids of one request)
KINDS = {
    "annotate": (
        {"annotations": {"annotated_location": "Salle 12"}},
        PATCH,
        lambda r: [r["path"].rsplit("/", 1)[-1].split("?")[0]],
    ),
    "disable": (
        {},
        "admin.customer.devices.chromeos.batchChangeStatus",
        lambda r: list(r["body"]["deviceIds"]),
    ),
    "cmd_reboot": (
        {},
        "admin.customer.devices.chromeos.issueCommand",
        lambda r: [r["path"].split("/chromeos/", 1)[1].split(":", 1)[0]],
    ),
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.google_emulator(devices=300)
@pytest.mark.parametrize(("action", "seed"), [("annotate", 1), ("disable", 2), ("cmd_reboot", 3)])
def test_worker_killed_mid_job_the_job_resumes_and_no_device_is_sent_twice(
    google_integration, google_emulator, fleet, tenant, admin_user, workers, settings, action, seed
):
    """The whole worker SIGKILLed at a seeded point of a device job of each kind (per device, batches of 50,
    remote commands): the reaper resumes it and Google never receives a device twice."""
    params, method, device_ids = KINDS[action]
    settings.JOB_HEARTBEAT_TIMEOUT_SECONDS = (
        2  # this (reaping) process only: "dead within minutes" in production
    )
    # Time to aim the kill: per-device calls take 20 ms, a batch of 50 takes 400 ms.
    google_emulator.add_fault(method=method, delay_ms=400 if action == "disable" else 20, count=None)
    chosen = [d for d in fleet if d.status == "ACTIVE"][:120]
    kill_after = random.Random(seed).randint(10, 60) if action != "disable" else 50
    first = workers()
    with tenant_context(tenant):
        job = services.device_action_prepare(
            actor=admin_user, action=action, device_pks=[d.pk for d in chosen]
        )
        services.device_action_confirm(job=job, actor=admin_user, params=params)
    done = DeviceActionItem.unscoped.filter(job=job, status="succeeded")
    wait_for(lambda: done.count() >= kill_after, 60, f"{kill_after} devices done")
    first.kill()
    killed_at = time.monotonic()
    at_kill = done.count()
    assert _job(job.pk).status == JobStatus.RUNNING and at_kill < len(chosen)

    workers()
    time.sleep(settings.JOB_HEARTBEAT_TIMEOUT_SECONDS + 0.5)
    # Resumed by the reaper once its heartbeat is stale (on a loaded machine the killed worker's last heartbeat
    # can land after the kill was aimed: the reaper's next tick takes it then; seen once in CI).
    wait_for(lambda: jobs_reap()["chromeos.device_jobs"] == 1, 20, "the reaper to resume the job")
    final = wait_for(
        lambda: (j := _job(job.pk)).status not in (JobStatus.QUEUED, JobStatus.RUNNING) and j, 120, "the job"
    )
    recovered_in = time.monotonic() - killed_at
    print(
        f"\n{action} seed={seed}: killed after {at_kill} of {len(chosen)}; finished {recovered_in:.1f} s later"
    )

    assert final.resumes == 1
    assert final.succeeded + final.failed == len(chosen)
    in_doubt = DeviceActionItem.unscoped.filter(job=job, status="failed")
    batch = 50 if action == "disable" else 1
    assert final.failed <= batch and all("résultat inconnu" in i.message for i in in_doubt)
    assert not DeviceActionItem.unscoped.filter(job=job, status__in=["pending", "sending"]).exists()
    # Google saw each device at most once, and every device but those in doubt exactly once.
    sent = Counter(d for r in google_emulator.requests(method) for d in device_ids(r))
    assert max(sent.values()) == 1
    assert len(sent) >= len(chosen) - batch
    assert set(sent) <= {d.device_id for d in chosen}
