"""A removal whose worker died is noticed by the one reaper (``mdm.jobs.jobs_reap``) within the heartbeat timeout,
failed with a reason that says what to do and what to give support, and can be retried."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connections
from django.utils import timezone

from chromeos.models import GoogleIntegration, IntegrationStatus, RemovalRun, RemovalStatus
from chromeos.selectors.removal import removal_panel
from chromeos.services.removal import removal_request, removal_run_execute
from chromeos.tasks.removal import removal_run_task
from mdm.jobs import jobs_reap
from mdm.models import AuditEvent, OutboxMessage


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The removal is queued, not run: the test plays the worker that died."""
    runs: list[int] = []
    monkeypatch.setattr(removal_run_task, "apply_async", lambda args, **options: runs.append(args[0]))
    return runs


def _died_in(run: RemovalRun, status: str, *, seconds_ago: float, revocation: str = "") -> None:
    """What a worker killed in ``status`` leaves: the step and its last heartbeat."""
    beat = timezone.now() - timedelta(seconds=seconds_ago)
    RemovalRun.unscoped.filter(pk=run.pk).update(
        status=status, created_at=beat, started_at=beat, heartbeat_at=beat, revocation=revocation
    )


@pytest.mark.django_db
@pytest.mark.parametrize("step", [RemovalStatus.REVOKING, RemovalStatus.DELETING])
def test_a_removal_whose_worker_died_is_failed_by_the_reaper_within_the_heartbeat_timeout(
    google_integration, admin_user, queued, settings, step
):
    settings.JOB_HEARTBEAT_TIMEOUT_SECONDS = 300
    run = removal_request(tenant=google_integration.tenant, actor=admin_user)
    revocation = "revoked" if step == RemovalStatus.DELETING else ""
    _died_in(run, step, seconds_ago=290, revocation=revocation)

    jobs_reap()  # still within the timeout: it may be alive
    run.refresh_from_db()
    assert run.status == step

    _died_in(run, step, seconds_ago=310, revocation=revocation)
    done = jobs_reap()

    assert done["chromeos.removals"] == 1
    run.refresh_from_db()
    assert run.status == RemovalStatus.FAILED and run.finished_at is not None
    assert "Réessayez" in run.error and run.support_reference in run.error
    assert AuditEvent.unscoped.filter(action="google.remove_failed", details__reference=run.support_reference)
    google_integration.refresh_from_db()
    # Revoked: it cannot carry on and waits for the retry; not revoked: it carries on as before.
    expected = IntegrationStatus.REMOVAL_FAILED if revocation else IntegrationStatus.ACTIVE
    assert google_integration.status == expected
    panel = removal_panel(google_integration.tenant, with_preview=True)
    assert panel.failed_run == run and panel.can_remove

    assert removal_run_execute(run.pk).status == RemovalStatus.FAILED  # a late redelivery does nothing
    retry = removal_request(tenant=google_integration.tenant, actor=admin_user, retry_of=run)
    assert removal_run_execute(retry.pk).status == RemovalStatus.SUCCEEDED
    assert not GoogleIntegration.unscoped.filter(tenant=google_integration.tenant).exists()


@pytest.mark.django_db
def test_a_removal_no_worker_took_is_failed_after_the_queued_timeout_unless_it_waits_in_the_outbox(
    google_integration, admin_user, settings, monkeypatch
):
    settings.REMOVAL_QUEUED_TIMEOUT_SECONDS = 600

    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(removal_run_task, "apply_async", broker_down)
    run = removal_request(tenant=google_integration.tenant, actor=admin_user)
    later = timezone.now() + timedelta(seconds=700)

    jobs_reap(later)  # its message is still in the outbox: delayed, not lost
    run.refresh_from_db()
    assert run.status == RemovalStatus.QUEUED
    jobs_reap(timezone.now() + timedelta(seconds=500))
    run.refresh_from_db()
    assert run.status == RemovalStatus.QUEUED

    OutboxMessage.objects.all().delete()  # published, then lost with a worker
    jobs_reap(later)
    run.refresh_from_db()
    assert run.status == RemovalStatus.FAILED and "Aucun worker" in run.error
    google_integration.refresh_from_db()
    assert google_integration.status == IntegrationStatus.ACTIVE


@pytest.mark.django_db(transaction=True)
def test_a_deletion_still_holding_its_run_is_alive_however_old_its_heartbeat(
    google_integration, admin_user, queued, settings
):
    """The deletion's chunks run in one transaction and cannot commit a heartbeat: the worker holds its run's
    row locked instead, and the reaper leaves a locked run alone."""
    settings.JOB_HEARTBEAT_TIMEOUT_SECONDS = 300
    run = removal_request(tenant=google_integration.tenant, actor=admin_user)
    _died_in(run, RemovalStatus.DELETING, seconds_ago=3000, revocation="revoked")
    worker = connections.create_connection("default")
    try:
        with worker.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SELECT id FROM chromeos_removalrun WHERE id = %s FOR UPDATE", [run.pk])
            assert jobs_reap()["chromeos.removals"] == 0
            run.refresh_from_db()
            assert run.status == RemovalStatus.DELETING
            cursor.execute("ROLLBACK")  # the worker is killed: its connection's locks go with it
        assert jobs_reap()["chromeos.removals"] == 1
    finally:
        worker.close()
    run.refresh_from_db()
    assert run.status == RemovalStatus.FAILED


@pytest.mark.django_db
def test_a_slow_worker_the_reaper_gave_up_on_stops_at_its_next_step(google_integration, admin_user, queued):
    run = removal_request(tenant=google_integration.tenant, actor=admin_user)
    _died_in(run, RemovalStatus.REVOKING, seconds_ago=10_000)
    jobs_reap()
    # The worker was only slow: it comes back, finds its run failed, and deletes nothing.
    assert removal_run_execute(run.pk).status == RemovalStatus.FAILED
    assert GoogleIntegration.unscoped.filter(tenant=google_integration.tenant).exists()
