"""Review of issue 15 (reliability): holes found against main, each proven here."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from chromeos.models import DeviceActionItem, DeviceActionJob, PolicyAssignment
from chromeos.services import devices as devices_services
from chromeos.services import policies as services
from mdm.jobs import jobs_reap
from mdm.jobs import stale_runs as jobs_stale_runs
from mdm.models import OutboxMessage
from mdm.tenancy import tenant_context
from tests.chromeos.policies_helpers import google_policies, mirror_org_units, set_policy
from tests.factories import BlueprintFactory
from tests.processes import reset_pool

pytest_plugins = ["tests.chromeos.test_device_actions"]


@pytest.mark.django_db(transaction=True)
def test_a_blueprint_deleted_while_the_broker_is_down_still_gets_google_restored_once_it_is_back(
    google_integration, google_emulator, in_tenant, tenant, admin_user, broker_down
):
    """The console refuses to delete a Blueprint in use, but its assignments can still go with it (an
    assignment created meanwhile, a tenant deleted): the revert that puts Google back is then the only trace."""
    ous = mirror_org_units(google_integration, google_emulator)
    set_policy(google_emulator, "/Paris", "chrome.devices.GuestMode", {"guestModeEnabled": True})
    blueprint = BlueprintFactory(tenant=tenant, name="Postes partagés", settings={"guest_mode": False})
    assignment = services.policy_assignment_create(
        integration=google_integration, org_unit=ous["/Paris"], blueprint=blueprint, actor=admin_user
    )
    PolicyAssignment.objects.filter(pk=assignment.pk).update(apply_requested_at=timezone.now())
    services.policy_assignment_apply(assignment.pk)  # what the worker did, before the broker went down
    assert google_policies(google_emulator, "/Paris") == {
        "chrome.devices.GuestMode": {"guestModeEnabled": False}
    }

    with (
        transaction.atomic()
    ):  # before: the broker's error raised here, after the commit, and the revert was lost
        blueprint.delete()
    assert not PolicyAssignment.objects.filter(pk=assignment.pk).exists()
    assert OutboxMessage.objects.count() == 1  # the revert waits for the broker

    broker_down.conf.update(task_always_eager=True, broker_url=settings.CELERY_BROKER_URL)
    reset_pool(broker_down)
    assert jobs_reap(timezone.now() + timedelta(minutes=1))["outbox"] == 1
    assert not OutboxMessage.objects.exists()
    assert google_policies(google_emulator, "/Paris") == {
        "chrome.devices.GuestMode": {"guestModeEnabled": True}
    }


def _stale_running_job(tenant, admin_user, fleet) -> DeviceActionJob:
    devices = [d for d in fleet if d.status == "ACTIVE"][:3]
    with tenant_context(tenant):
        job = devices_services.device_action_prepare(
            actor=admin_user, action="annotate", device_pks=[d.pk for d in devices]
        )
        devices_services.device_action_confirm(
            job=job, actor=admin_user, params={"annotations": {"annotated_location": "Salle 12"}}
        )
    old = timezone.now() - timedelta(minutes=10)
    DeviceActionJob.unscoped.filter(pk=job.pk).update(
        status="running", created_at=old, started_at=old, heartbeat_at=old
    )
    OutboxMessage.objects.all().delete()  # its message was taken by the worker presumed dead
    return job


def test_two_reapers_that_found_the_same_dead_job_resume_it_once(
    google_integration, fleet, tenant, admin_user
):
    job = _stale_running_job(tenant, admin_user, fleet)
    now = timezone.now()
    # Both reapers' queries saw the job stale; each then takes the row lock in turn.
    assert devices_services.device_action_job_resume(job.pk, now=now) == "resumed"
    assert devices_services.device_action_job_resume(job.pk, now=now + timedelta(seconds=1)) == "busy"
    job.refresh_from_db()
    assert job.resumes == 1
    assert OutboxMessage.objects.count() == 1  # one run task, not two workers on the same job


def test_a_worker_that_beat_after_the_reapers_query_is_not_resumed(
    google_integration, fleet, tenant, admin_user
):
    job = _stale_running_job(tenant, admin_user, fleet)
    sending = DeviceActionItem.unscoped.filter(job=job).order_by("id").first()
    DeviceActionItem.unscoped.filter(pk=sending.pk).update(status="sending")
    stale = list(
        jobs_stale_runs(DeviceActionJob, timezone.now(), statuses=("running",)).values_list("pk", flat=True)
    )
    assert stale == [job.pk]
    job.beat()  # the worker was only slow: it is back, sending its chunk
    assert devices_services.device_action_job_resume(job.pk) == "busy"
    job.refresh_from_db()
    sending.refresh_from_db()
    assert job.resumes == 0 and sending.status == "sending"  # its chunk is not failed « résultat inconnu »
