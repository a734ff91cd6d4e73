"""What a device job shows is what Google and the device said (issue 15): permanent Google answers fail at once
with a reason, a command the device reports as failed (or expired) is a failure, a retry whose integration was
removed ends cleanly, and no action is drafted or confirmed once a removal started."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from chromeos.models import DeviceActionItem, DeviceActionJob, GoogleIntegration, IntegrationStatus
from chromeos.services import devices as services
from chromeos.services.removal import integration_data_delete
from chromeos.tasks.actions import device_action_job_run_task, device_commands_poll_task
from mdm.jobs import jobs_reap
from mdm.models import OutboxMessage
from mdm.tenancy import tenant_context
from tests.chromeos.test_device_actions import batch_calls, confirm, prepare

pytest_plugins = ["tests.chromeos.test_device_actions"]

BATCH = "admin.customer.devices.chromeos.batchChangeStatus"


def test_http_501_fails_the_job_at_once_with_a_reason(
    operator, fleet, google_emulator, django_capture_on_commit_callbacks, settings
):
    settings.GOOGLE_RETRY_ATTEMPTS = 5
    google_emulator.add_fault(method=BATCH, status=501, reason="notImplemented", count=None)
    device = next(d for d in fleet if d.status == "ACTIVE")
    url, job = prepare(operator, "disable", [device])
    confirm(operator, url, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert job.status == "failed"
    assert "501" in job.error and "Google a refusé" in job.error
    assert len(batch_calls(google_emulator)) == 1  # never retried
    page = operator.get(reverse("chromeos:device_job", kwargs={"pk": job.pk})).content.decode()
    assert "501" in page


def test_403_quota_exceeded_is_a_concurrency_limit_retried_with_backoff(
    operator, fleet, google_emulator, django_capture_on_commit_callbacks
):
    google_emulator.add_fault(method=BATCH, status=403, reason="quotaExceeded", count=2)
    device = next(d for d in fleet if d.status == "ACTIVE")
    url, job = prepare(operator, "disable", [device])
    confirm(operator, url, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert job.status == "succeeded"
    assert [r["status"] for r in batch_calls(google_emulator)] == [403, 403, 200]


def test_a_retry_whose_integration_was_removed_meanwhile_ends_cleanly(
    google_integration, google_emulator, fleet, tenant, admin_user, settings
):
    settings.GOOGLE_RETRY_ATTEMPTS = 1
    google_emulator.add_fault(method=BATCH, status=503, count=None)
    device = next(d for d in fleet if d.status == "ACTIVE")
    with tenant_context(tenant):
        job = services.device_action_prepare(actor=admin_user, action="disable", device_pks=[device.pk])
        services.device_action_confirm(job=job, actor=admin_user, params={})
    # The integration is removed while the task waits for its retry: its jobs go with it.
    with transaction.atomic():
        integration_data_delete(tenant)
    assert not DeviceActionJob.unscoped.filter(pk=job.pk).exists()
    result = device_action_job_run_task.apply(args=(job.pk,))
    assert result.successful(), result.traceback
    assert device_commands_poll_task.apply(args=(job.pk,)).successful()
    services.device_action_job_abort(job.pk, "gave up")
    assert not batch_calls(google_emulator)


@pytest.mark.parametrize(
    ("outcome", "expected_text"),
    [("FAILURE", "signalé un échec"), ("EXPIRED", "a expiré")],
)
def test_a_command_the_device_reports_failed_is_a_failure_with_its_reason(
    operator, fleet, google_emulator, django_capture_on_commit_callbacks, outcome, expected_text
):
    google_emulator.control("POST", "/commands/behaviour", {"step_seconds": 0, "outcome": outcome})
    device = next(d for d in fleet if d.status == "ACTIVE")
    url, job = prepare(operator, "cmd_reboot", [device])
    confirm(operator, url, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert (job.status, job.succeeded, job.failed) == ("failed", 0, 1)
    item = DeviceActionItem.unscoped.get(job=job)
    assert item.status == "failed" and expected_text in item.message
    page = operator.get(reverse("chromeos:device_job", kwargs={"pk": job.pk})).content.decode()
    assert 'data-job-status="failed"' in page and expected_text in page
    assert 'data-job-status="succeeded"' not in page


def test_a_command_is_a_success_only_once_the_device_executed_it(
    operator, fleet, google_emulator, django_capture_on_commit_callbacks, tenant, admin_user
):
    google_emulator.control("POST", "/commands/behaviour", {"step_seconds": 60, "outcome": "SUCCESS"})
    device = next(d for d in fleet if d.status == "ACTIVE")
    with tenant_context(tenant):
        job = services.device_action_prepare(actor=admin_user, action="cmd_reboot", device_pks=[device.pk])
        services.device_action_confirm(job=job, actor=admin_user, params={})
    services.device_action_job_run(job.pk)
    url = reverse("chromeos:device_job", kwargs={"pk": job.pk})
    page = operator.get(url).content.decode()
    assert 'data-job-status="awaiting_devices"' in page  # accepted by Google, not executed yet
    google_emulator.control("POST", "/clock/advance", {"seconds": 400})
    assert services.device_commands_poll(job.pk) is True
    job.refresh_from_db()
    assert (job.status, job.succeeded) == ("succeeded", 1)
    assert 'data-job-status="succeeded"' in operator.get(url).content.decode()


@pytest.mark.parametrize("status", [IntegrationStatus.REMOVING, IntegrationStatus.REMOVAL_FAILED])
def test_no_action_is_drafted_or_confirmed_once_a_removal_started(
    google_integration, fleet, tenant, admin_user, status
):
    device = next(d for d in fleet if d.status == "ACTIVE")
    with tenant_context(tenant):
        draft = services.device_action_prepare(actor=admin_user, action="disable", device_pks=[device.pk])
        GoogleIntegration.unscoped.filter(pk=google_integration.pk).update(status=status)
        with pytest.raises(services.ActionError, match="suppression"):
            services.device_action_prepare(actor=admin_user, action="disable", device_pks=[device.pk])
        with pytest.raises(services.ActionError, match="suppression"):
            services.device_action_confirm(job=draft, actor=admin_user, params={})
    draft.refresh_from_db()
    assert draft.status == "draft"


def _command_issued_and_its_polls_lost(google_emulator, fleet, tenant, admin_user):
    google_emulator.control("POST", "/commands/behaviour", {"step_seconds": 60, "outcome": "SUCCESS"})
    device = next(d for d in fleet if d.status == "ACTIVE")
    with tenant_context(tenant):
        job = services.device_action_prepare(actor=admin_user, action="cmd_reboot", device_pks=[device.pk])
        services.device_action_confirm(job=job, actor=admin_user, params={})
    # The worker ran the job, but its first poll never reached the broker (its on-commit publish is dropped
    # here, as when Redis refused it or the worker died before it): nobody follows the command any more.
    services.device_action_job_run(job.pk)
    return job


def test_a_command_whose_poll_chain_was_lost_is_polled_again_by_the_reaper(
    operator, google_emulator, fleet, tenant, admin_user, django_capture_on_commit_callbacks
):
    job = _command_issued_and_its_polls_lost(google_emulator, fleet, tenant, admin_user)
    url = reverse("chromeos:device_job", kwargs={"pk": job.pk})
    google_emulator.control("POST", "/clock/advance", {"seconds": 400})  # the device executed it meanwhile
    with django_capture_on_commit_callbacks(execute=True):
        jobs_reap(timezone.now() + timedelta(minutes=2))  # a live chain polls at most every 5 min: not yet
    assert 'data-job-status="awaiting_devices"' in operator.get(url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs_reap(timezone.now() + timedelta(minutes=11))["chromeos.device_commands"] == 1
    job.refresh_from_db()
    assert (job.status, job.succeeded) == ("succeeded", 1)
    assert 'data-job-status="succeeded"' in operator.get(url).content.decode()


def test_a_command_nobody_can_poll_is_settled_after_the_tracking_limit(
    operator,
    google_emulator,
    google_integration,
    fleet,
    tenant,
    admin_user,
    django_capture_on_commit_callbacks,
):
    job = _command_issued_and_its_polls_lost(google_emulator, fleet, tenant, admin_user)
    # The grant was revoked: polls stop (nothing can be asked), and no new poll is started for it.
    GoogleIntegration.unscoped.filter(pk=google_integration.pk).update(
        status=IntegrationStatus.REAUTH_REQUIRED
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs_reap(timezone.now() + timedelta(hours=1))["chromeos.device_commands"] == 0
    assert not OutboxMessage.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs_reap(timezone.now() + timedelta(hours=25))["chromeos.device_commands"] == 1
    job.refresh_from_db()
    assert (job.status, job.succeeded, job.failed) == ("failed", 0, 1)
    item = DeviceActionItem.unscoped.get(job=job)
    assert "suivi de la commande s'est arrêté" in item.message and "24 h" in item.message
