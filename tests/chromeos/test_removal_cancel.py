"""« Annuler la suppression » (issue 15, point 1): a removal is cancelled only while queued (nothing done at Google
nor here); once its worker started (policies restored, grant revoked, deletion), the cancel is refused with why."""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.urls import reverse

from chromeos.models import ChromeOSDevice, GoogleIntegration, IntegrationStatus, RemovalRun, RemovalStatus
from chromeos.services.removal import RemovalError, removal_cancel, removal_request, removal_run_execute
from google_emulator.testing import EmulatorHandle
from mdm.models import AuditEvent, Role, User
from tests.chromeos.removal_data import populate_integration_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def integration(google_integration: GoogleIntegration) -> GoogleIntegration:
    populate_integration_data(google_integration, devices=5)
    return google_integration


def test_a_queued_removal_cancelled_gives_the_integration_back_and_its_late_worker_does_nothing(
    integration: GoogleIntegration, admin_user: User, google_emulator: EmulatorHandle
) -> None:
    run = removal_request(tenant=integration.tenant, actor=admin_user)
    assert GoogleIntegration.unscoped.get(pk=integration.pk).status == IntegrationStatus.REMOVING

    removal_cancel(run=run, actor=admin_user)
    removal_run_execute(run.pk)  # the message, delivered late

    run.refresh_from_db()
    assert run.status == RemovalStatus.CANCELLED and run.started_at is None
    assert GoogleIntegration.unscoped.get(pk=integration.pk).status == IntegrationStatus.ACTIVE
    assert ChromeOSDevice.unscoped.filter(integration=integration).count() == 5
    assert not google_emulator.requests("oauth2.revoke")
    assert AuditEvent.unscoped.filter(action="google.remove_cancel").count() == 1


@pytest.mark.parametrize("status", [RemovalStatus.REVOKING, RemovalStatus.DELETING])
def test_a_started_removal_refuses_the_cancel_and_goes_on(
    integration: GoogleIntegration, admin_user: User, status: str
) -> None:
    run = removal_request(tenant=integration.tenant, actor=admin_user)
    RemovalRun.unscoped.filter(pk=run.pk).update(status=status)

    with pytest.raises(RemovalError, match="La révocation a commencé : elle doit aller au bout"):
        removal_cancel(run=run, actor=admin_user)

    assert RemovalRun.unscoped.get(pk=run.pk).status == status
    assert GoogleIntegration.unscoped.get(pk=integration.pk).status == IntegrationStatus.REMOVING


def test_cancel_view_admin_ok_others_refused_other_tenant_404_finished_says_why(
    integration: GoogleIntegration,
    admin_client_: Any,
    admin_user: User,
    other_tenant: Any,
    make_user: Any,
    client_for: Any,
) -> None:
    run = removal_request(tenant=integration.tenant, actor=admin_user)
    url = reverse("chromeos:removal_cancel", kwargs={"pk": run.pk})
    page = html.unescape(admin_client_.get(reverse("chromeos:manage")).content.decode())
    assert 'id="removal-cancel"' in page and "Annuler la suppression" in page

    for role in (Role.OPERATOR, Role.READ_ONLY):
        assert client_for(make_user(integration.tenant, role)).post(url).status_code == 403
    assert client_for(make_user(other_tenant, Role.ADMIN)).post(url).status_code == 404
    assert RemovalRun.unscoped.get(pk=run.pk).status == RemovalStatus.QUEUED

    response = admin_client_.post(url, follow=True)
    assert response.status_code == 200 and "Suppression annulée" in html.unescape(response.content.decode())
    assert RemovalRun.unscoped.get(pk=run.pk).status == RemovalStatus.CANCELLED

    again = admin_client_.post(url, follow=True)
    assert again.status_code == 200 and "rien à annuler" in html.unescape(again.content.decode())


def test_a_started_removal_shows_why_it_cannot_be_cancelled(
    integration: GoogleIntegration, admin_client_: Any, admin_user: User
) -> None:
    run = removal_request(tenant=integration.tenant, actor=admin_user)
    RemovalRun.unscoped.filter(pk=run.pk).update(status=RemovalStatus.REVOKING)

    page = html.unescape(admin_client_.get(reverse("chromeos:manage")).content.decode())
    assert 'id="removal-cancel"' not in page and "La révocation a commencé : elle doit aller au bout." in page
    response = admin_client_.post(reverse("chromeos:removal_cancel", kwargs={"pk": run.pk}), follow=True)
    assert response.status_code == 200 and "elle doit aller au bout" in html.unescape(
        response.content.decode()
    )
