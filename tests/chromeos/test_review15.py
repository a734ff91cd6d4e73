"""Review of issue 15 (reliability): holes found against main, each proven here."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from chromeos.models import PolicyAssignment
from chromeos.services import policies as services
from mdm.jobs import jobs_reap
from mdm.models import OutboxMessage
from tests.chromeos.policies_helpers import google_policies, mirror_org_units, set_policy
from tests.factories import BlueprintFactory
from tests.processes import reset_pool


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
