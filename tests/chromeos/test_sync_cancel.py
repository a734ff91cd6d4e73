"""« Annuler la synchronisation » (issue 15, point 1: cancel works on any job that is not finished).

A queued sync is cancelled at once and its worker, when the message comes, does nothing; a running one stops at
its next page, or at the latest before its final merge: what it merged stays, nothing is removed.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from chromeos.models import GoogleIntegration, SyncRun, SyncStatus
from chromeos.services.sync import devices_sync, sync_cancel
from google_emulator.testing import EmulatorHandle
from mdm.models import AuditEvent, Role, Tenant, User
from mdm.tenancy import tenant_context
from tests.chromeos.test_sync_faults import at_google, new_run, run_sync, stored
from tests.factories import GoogleIntegrationFactory


@pytest.fixture
def page_by_page(settings: Any) -> Any:
    """Pages of 10 devices, merged as they come, the progress written (and the cancel checked) every page."""
    settings.CHROMEOS_SYNC_PAGE_SIZE = 10
    settings.CHROMEOS_SYNC_MERGE_ROWS = 10
    settings.CHROMEOS_SYNC_PROGRESS_SECONDS = 0
    return settings


def _prepare_absences(integration: GoogleIntegration, google_emulator: EmulatorHandle) -> set[str]:
    """50 devices synced, then 4 deleted and 3 added at Google: a complete run would remove the 4."""
    assert run_sync(integration).status == SyncStatus.SUCCEEDED
    before = stored(integration)
    google_emulator.control("POST", "/devices/delete", {"count": 4, "seed": 3})
    google_emulator.control("POST", "/devices", {"count": 3})
    deleted = set(before) - set(at_google(google_emulator))
    assert len(deleted) == 4
    return deleted


def _cancel_at(page: int, integration: GoogleIntegration, user: User) -> Any:
    def at_page(run: SyncRun) -> None:
        if run.pages == page and run.status == SyncStatus.RUNNING:
            with tenant_context(integration.tenant):
                sync_cancel(integration=integration, run_id=run.pk, user=user)
            run.status = SyncStatus.CANCELLED  # this object is the worker's: only the row changed

    return at_page


@pytest.mark.django_db
def test_a_running_sync_cancelled_mid_listing_stops_removes_nothing_and_ends_cancelled(
    google_integration: GoogleIntegration,
    google_emulator: EmulatorHandle,
    page_by_page: Any,
    operator_user: User,
) -> None:
    deleted = _prepare_absences(google_integration, google_emulator)

    run = devices_sync(new_run(google_integration), progress=_cancel_at(2, google_integration, operator_user))

    run = SyncRun.unscoped.get(pk=run.pk)
    assert run.status == SyncStatus.CANCELLED
    assert run.pages < 6  # stopped at the next page, not after the 6 pages of the listing
    assert run.removed == 0 and deleted <= set(stored(google_integration))
    keys = [line["msg"] for line in run.log]
    assert any("annulée par" in key for key in keys) and any("Arrêtée après" in key for key in keys)
    assert operator_user.display_name in str(run.log)
    event = AuditEvent.unscoped.get(action="chromeos.sync.cancel")
    assert event.actor == operator_user and event.details["was"] == SyncStatus.RUNNING


@pytest.mark.django_db
def test_a_sync_cancelled_after_its_last_page_stops_before_the_merge_removes_anything(
    google_integration: GoogleIntegration,
    google_emulator: EmulatorHandle,
    page_by_page: Any,
    operator_user: User,
) -> None:
    deleted = _prepare_absences(google_integration, google_emulator)

    # 49 devices: page 5 is the last; no page follows to notice the cancel, the final merge does.
    run = devices_sync(new_run(google_integration), progress=_cancel_at(5, google_integration, operator_user))

    run = SyncRun.unscoped.get(pk=run.pk)
    assert run.status == SyncStatus.CANCELLED
    assert run.removed == 0 and deleted <= set(stored(google_integration))


@pytest.mark.django_db
def test_a_queued_sync_cancelled_is_left_alone_by_the_worker_that_gets_it(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle, operator_user: User
) -> None:
    run = new_run(google_integration)
    with tenant_context(google_integration.tenant):
        sync_cancel(integration=google_integration, run_id=run.pk, user=operator_user)
    requests_before = len(google_emulator.requests("directory.chromeosdevices.list"))

    devices_sync(run)  # the message, delivered late

    run = SyncRun.unscoped.get(pk=run.pk)
    assert run.status == SyncStatus.CANCELLED and run.started_at is None
    assert len(google_emulator.requests("directory.chromeosdevices.list")) == requests_before


@pytest.mark.django_db
def test_operator_cancels_from_the_panel_readonly_is_refused_and_a_finished_run_says_why(
    google_integration: GoogleIntegration, operator_user: User, readonly_user: User, client_for: Any
) -> None:
    run = new_run(google_integration)
    page = client_for(operator_user).get(reverse("chromeos:sync_progress")).content.decode()
    assert 'id="sync-cancel"' in page and "Annuler la synchronisation" in page
    assert (
        'id="sync-cancel"'
        not in client_for(readonly_user).get(reverse("chromeos:sync_progress")).content.decode()
    )
    url = reverse("chromeos:sync_cancel")

    assert client_for(readonly_user).post(url, {"run": run.pk}).status_code == 403
    assert SyncRun.unscoped.get(pk=run.pk).status == SyncStatus.QUEUED

    response = client_for(operator_user).post(url, {"run": run.pk}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "annulée" in response.content.decode()
    assert SyncRun.unscoped.get(pk=run.pk).status == SyncStatus.CANCELLED

    again = client_for(operator_user).post(url, {"run": run.pk}, HTTP_HX_REQUEST="true")
    assert again.status_code == 200 and "rien à annuler" in again.content.decode()
    plain = client_for(operator_user).post(url, {"run": run.pk})
    assert plain.status_code == 302
    for bad in ("", "x", "99999999"):
        assert client_for(operator_user).post(url, {"run": bad}).status_code == 404


@pytest.mark.django_db
def test_another_tenant_cannot_cancel_our_sync(
    google_integration: GoogleIntegration, other_tenant: Tenant, make_user: Any, client_for: Any
) -> None:
    GoogleIntegrationFactory(tenant=other_tenant)
    run = new_run(google_integration)
    intruder = client_for(make_user(other_tenant, Role.ADMIN))

    assert intruder.post(reverse("chromeos:sync_cancel"), {"run": run.pk}).status_code == 404
    assert SyncRun.unscoped.get(pk=run.pk).status == SyncStatus.QUEUED
