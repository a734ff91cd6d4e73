"""Every job's life cycle (issue 15, What to build 1): committed work is published through the outbox even when
the broker was down, a device job whose worker died is resumed without sending anything twice to Google, any
unfinished job can be cancelled, and a queued LDAP sync no worker took is given up instead of being returned
for an hour."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from chromeos.models import DeviceActionItem, DeviceActionJob
from chromeos.services import devices as services
from ldap_sync import services as ldap_services
from ldap_sync.models import LdapSyncRun, SyncStatus, SyncTrigger
from mdm.jobs import jobs_reap, publication_pending
from mdm.models import OutboxMessage
from mdm.tenancy import tenant_context
from tests.chromeos.test_device_actions import prepare
from tests.ldap.factories import LdapDirectoryFactory
from tests.processes import reset_pool

pytest_plugins = ["tests.chromeos.test_device_actions"]

PATCH = "directory.chromeosdevices.patch"
JOB_KIND = "chromeos.deviceactionjob"


def later() -> Any:
    return timezone.now() + timedelta(minutes=1)


@pytest.mark.django_db(transaction=True)
def test_broker_down_at_confirm_says_so_without_a_500_and_the_job_runs_when_it_is_back(
    operator, fleet, google_emulator, broker_down
):
    device = next(d for d in fleet if d.status == "ACTIVE")
    url, job = prepare(operator, "disable", [device])
    response = operator.post(url, {})  # real commits: the publish runs (and fails) inside the request
    assert response.status_code == 302
    page = operator.get(response["Location"]).content.decode()
    assert "La file des tâches est indisponible : l&#x27;action partira dès son retour." in page
    job.refresh_from_db()
    assert job.status == "queued" and publication_pending(JOB_KIND, job.pk)
    # Reloaded later (the one-time message is gone): the page still says why the action waits.
    again = operator.get(response["Location"]).content.decode()
    assert 'id="job-broker"' in again and "La file des tâches est indisponible" in again
    # Long after, the broker still down: the job is neither lost nor given up.
    jobs_reap(timezone.now() + timedelta(hours=3))
    job.refresh_from_db()
    assert job.status == "queued"
    # The broker is back (eager again: the task runs as it is published).
    broker_down.conf.update(task_always_eager=True, broker_url=settings.CELERY_BROKER_URL)
    reset_pool(broker_down)
    assert jobs_reap(later())["outbox"] == 1
    job.refresh_from_db()
    assert job.status == "succeeded" and not OutboxMessage.objects.exists()
    assert len(google_emulator.requests("admin.customer.devices.chromeos.batchChangeStatus")) == 1


def _running_annotate_job(tenant, admin_user, devices) -> DeviceActionJob:
    with tenant_context(tenant):
        job = services.device_action_prepare(
            actor=admin_user, action="annotate", device_pks=[d.pk for d in devices]
        )
        services.device_action_confirm(
            job=job, actor=admin_user, params={"annotations": {"annotated_location": "Salle 12"}}
        )
    return job


def test_a_device_job_whose_worker_died_resumes_and_sends_nothing_twice(
    google_integration,
    google_emulator,
    fleet,
    tenant,
    admin_user,
    settings,
    django_capture_on_commit_callbacks,
):
    settings.JOB_HEARTBEAT_TIMEOUT_SECONDS = 60
    devices = [d for d in fleet if d.status == "ACTIVE"][:6]
    job = _running_annotate_job(
        tenant, admin_user, devices
    )  # not run: the on-commit publish was not executed
    # What a worker killed mid-job leaves: two devices done, one marked "sending" (Google may have applied it),
    # the rest pending, the job RUNNING with an old heartbeat.
    items = list(DeviceActionItem.unscoped.filter(job=job).order_by("id"))
    DeviceActionItem.unscoped.filter(pk__in=[i.pk for i in items[:2]]).update(status="succeeded")
    DeviceActionItem.unscoped.filter(pk=items[2].pk).update(status="sending")
    old = timezone.now() - timedelta(minutes=5)
    DeviceActionJob.unscoped.filter(pk=job.pk).update(status="running", started_at=old, heartbeat_at=old)
    OutboxMessage.objects.all().delete()  # its message was taken by the dead worker

    with django_capture_on_commit_callbacks(execute=True):
        done = jobs_reap(later())
    assert done["chromeos.device_jobs"] == 1
    job.refresh_from_db()
    assert (job.status, job.resumes) == ("partial", 1)
    assert (job.succeeded, job.failed) == (5, 1)
    in_doubt = DeviceActionItem.unscoped.get(pk=items[2].pk)
    assert in_doubt.status == "failed" and "résultat inconnu" in in_doubt.message
    patched = [r["path"] for r in google_emulator.requests(PATCH)]
    # Only the three pending devices went to Google: nothing done or in doubt was sent (again).
    assert len(patched) == 3
    assert all(items[n].google_device_id not in " ".join(patched) for n in range(3))


def test_a_job_waiting_for_a_google_retry_is_not_taken_for_dead(
    google_integration, fleet, tenant, admin_user, settings
):
    settings.JOB_HEARTBEAT_TIMEOUT_SECONDS = 60
    job = _running_annotate_job(tenant, admin_user, [d for d in fleet if d.status == "ACTIVE"][:2])
    DeviceActionJob.unscoped.filter(pk=job.pk).update(status="running", started_at=timezone.now())
    services.device_action_job_waiting(job.pk, 600)  # the task retries in 10 minutes
    OutboxMessage.objects.all().delete()
    assert jobs_reap(timezone.now() + timedelta(minutes=5))["chromeos.device_jobs"] == 0
    job.refresh_from_db()
    assert job.status == "running" and job.resumes == 0


def test_a_job_whose_worker_keeps_dying_fails_with_a_reason(
    google_integration, fleet, tenant, admin_user, settings
):
    settings.JOB_HEARTBEAT_TIMEOUT_SECONDS = 60
    settings.JOB_MAX_RESUMES = 2
    job = _running_annotate_job(tenant, admin_user, [d for d in fleet if d.status == "ACTIVE"][:2])
    old = timezone.now() - timedelta(minutes=5)
    DeviceActionJob.unscoped.filter(pk=job.pk).update(
        status="running", started_at=old, heartbeat_at=old, resumes=2
    )
    OutboxMessage.objects.all().delete()
    jobs_reap(later())
    job.refresh_from_db()
    assert job.status == "failed" and "arrêté 3 fois" in job.error


def test_a_queued_job_whose_message_was_lost_is_published_again(
    google_integration,
    google_emulator,
    fleet,
    tenant,
    admin_user,
    settings,
    django_capture_on_commit_callbacks,
):
    settings.JOB_HEARTBEAT_TIMEOUT_SECONDS = 60
    job = _running_annotate_job(tenant, admin_user, [d for d in fleet if d.status == "ACTIVE"][:2])
    OutboxMessage.objects.all().delete()  # published, then lost with the worker that held it
    DeviceActionJob.unscoped.filter(pk=job.pk).update(confirmed_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        jobs_reap(later())
    job.refresh_from_db()
    assert job.status == "succeeded"
    assert len(google_emulator.requests(PATCH)) == 2


@pytest.mark.parametrize("status", ["queued", "running"])
def test_an_unfinished_job_can_be_cancelled(
    operator, google_integration, google_emulator, fleet, tenant, admin_user, status
):
    job = _running_annotate_job(tenant, admin_user, [d for d in fleet if d.status == "ACTIVE"][:4])
    first = DeviceActionItem.unscoped.filter(job=job).order_by("id").first()
    if status == "running":
        DeviceActionItem.unscoped.filter(pk=first.pk).update(status="succeeded")
        DeviceActionJob.unscoped.filter(pk=job.pk).update(status="running", started_at=timezone.now())
    page = operator.get(reverse("chromeos:device_job", kwargs={"pk": job.pk})).content.decode()
    assert 'id="job-cancel"' in page
    response = operator.post(reverse("chromeos:device_action_cancel", kwargs={"pk": job.pk}))
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == "cancelled" and job.finished_at is not None
    assert services.device_action_job_run(job.pk) is True  # the queued message finds it cancelled
    assert not google_emulator.requests(PATCH)
    left = DeviceActionItem.unscoped.filter(job=job).exclude(pk=first.pk)
    assert {i.status for i in left} == {"failed"} and all("Annulée" in i.message for i in left)


@pytest.mark.django_db
def test_a_queued_ldap_sync_no_worker_took_is_given_up_and_a_new_one_starts(tenant, admin_user, settings):
    settings.LDAP_SYNC_QUEUED_TIMEOUT_SECONDS = 300
    directory = LdapDirectoryFactory(tenant=tenant)
    dead = ldap_services.sync_request(directory=directory, trigger=SyncTrigger.MANUAL, actor=admin_user)
    OutboxMessage.objects.all().delete()  # published, never taken (no worker)
    LdapSyncRun.unscoped.filter(pk=dead.pk).update(created_at=timezone.now() - timedelta(minutes=6))
    fresh = ldap_services.sync_request(directory=directory, trigger=SyncTrigger.MANUAL, actor=admin_user)
    assert fresh.pk != dead.pk
    dead.refresh_from_db()
    assert dead.status == SyncStatus.FAILED and dead.error_code == "never_started"
    assert "Aucun worker" in dead.error_message


@pytest.mark.django_db
def test_a_running_ldap_sync_whose_worker_died_is_reaped(tenant, admin_user):
    directory = LdapDirectoryFactory(tenant=tenant)
    run = LdapSyncRun.unscoped.create(
        tenant=tenant, directory=directory, trigger=SyncTrigger.MANUAL, status=SyncStatus.RUNNING
    )  # nobody holds the tenant's LDAP sync lock: its worker died
    assert jobs_reap()["ldap_sync.sync"] == 1
    run.refresh_from_db()
    assert run.status == SyncStatus.FAILED and run.error_code == "interrupted"


def test_a_job_waiting_on_google_says_so_on_its_page(
    operator, google_integration, google_emulator, fleet, tenant, admin_user, settings
):
    job = _running_annotate_job(tenant, admin_user, [d for d in fleet if d.status == "ACTIVE"][:2])
    DeviceActionJob.unscoped.filter(pk=job.pk).update(status="running", started_at=timezone.now())
    url = reverse("chromeos:device_job", kwargs={"pk": job.pk})
    assert 'id="job-retry"' not in operator.get(url).content.decode()
    # What the client's backoff (or the task's retry) records before it waits.
    services.device_action_job_waiting(job.pk, 16)
    page = operator.get(url).content.decode()
    assert "Google ralentit : nouvelle tentative dans 1" in page and 'id="job-retry"' in page


def test_the_client_backoff_of_a_device_job_is_recorded_as_a_retry(
    google_integration, google_emulator, fleet, tenant, admin_user, monkeypatch
):
    job = _running_annotate_job(tenant, admin_user, [d for d in fleet if d.status == "ACTIVE"][:1])
    waits: list[float] = []
    real = services.device_action_job_waiting
    monkeypatch.setattr(services, "device_action_job_waiting", lambda pk, s: (waits.append(s), real(pk, s)))
    google_emulator.add_fault(method=PATCH, status=503, count=2)
    assert services.device_action_job_run(job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded" and len(waits) == 2


def test_a_policy_job_whose_worker_died_is_failed_with_a_reason(google_integration, tenant):
    from chromeos.models import PolicyAssignment
    from tests.factories import PolicyAssignmentFactory

    stuck = PolicyAssignmentFactory(tenant=tenant, state="applying")
    fresh = PolicyAssignmentFactory(tenant=tenant, state="removing")
    PolicyAssignment.unscoped.filter(pk=stuck.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    assert jobs_reap()["chromeos.policy_jobs"] == 1
    stuck.refresh_from_db()
    fresh.refresh_from_db()
    assert stuck.state == "failed" and "worker s'est arrêté" in stuck.google_error
    assert fresh.state == "removing"  # still within its time


def test_a_policy_apply_whose_worker_died_before_claiming_it_is_failed_with_a_reason(
    google_integration, tenant
):
    """Found by the fault suite's long variant (tests/faults/test_worker_kills.py, policy_apply, seed 2): the worker
    took the message and died before moving the assignment to « applying »: it stayed « en attente » for ever."""
    from chromeos.models import PolicyAssignment
    from tests.factories import PolicyAssignmentFactory

    long_ago = timezone.now() - timedelta(hours=1)
    requested = PolicyAssignmentFactory(tenant=tenant, state="pending")
    never_requested = PolicyAssignmentFactory(tenant=tenant, state="pending")
    PolicyAssignment.unscoped.filter(pk=requested.pk).update(apply_requested_at=long_ago, updated_at=long_ago)
    PolicyAssignment.unscoped.filter(pk=never_requested.pk).update(updated_at=long_ago)
    assert jobs_reap()["chromeos.policy_jobs"] == 1
    requested.refresh_from_db()
    never_requested.refresh_from_db()
    assert requested.state == "failed" and "worker s'est arrêté" in requested.google_error
    assert never_requested.state == "pending"  # an assignment nobody asked to apply yet is idle, not dead
