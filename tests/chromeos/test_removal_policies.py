"""Removal says and does the whole truth (issue 15, What to build 7): the confirmation lists the policies the
console applied at Google and offers to put those OUs back to inherited before revoking (default on); the
outcome per policy is in the removal's report. Unticked, the policies stay at Google and the report says so."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from chromeos.models import RemovalRun
from chromeos.services import policies as services
from tests.chromeos.policies_helpers import google_policies, mirror_org_units
from tests.chromeos.test_policies import BLUEPRINT_SETTINGS, apply
from tests.factories import BlueprintFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ous(google_integration: Any, google_emulator: Any, in_tenant: Any) -> dict[str, Any]:
    return mirror_org_units(google_integration, google_emulator)


def _applied(google_integration: Any, emulator: Any, ous: Any, admin_user: Any, capture: Any) -> Any:
    blueprint = BlueprintFactory(
        tenant=google_integration.tenant, name="Postes partagés", settings=dict(BLUEPRINT_SETTINGS)
    )
    assignment = services.policy_assignment_create(
        integration=google_integration, org_unit=ous["/Paris"], blueprint=blueprint, actor=admin_user
    )
    applied = apply(assignment, admin_user, capture)
    assert applied.state == "applied" and google_policies(emulator, "/Paris")
    return applied


def test_removal_lists_the_applied_policies_and_restores_them_before_revoking(
    google_integration,
    google_emulator,
    ous,
    admin_user,
    admin_client_,
    django_capture_on_commit_callbacks,
):
    _applied(google_integration, google_emulator, ous, admin_user, django_capture_on_commit_callbacks)
    page = admin_client_.get(reverse("chromeos:remove")).content.decode()
    assert 'name="restore_policies" checked' in page and "Postes partagés" in page and "/Paris" in page

    response = admin_client_.post(reverse("chromeos:remove"), {"restore_policies": "on"})
    assert response.status_code == 302
    run = RemovalRun.unscoped.get()
    assert run.status == "succeeded", run.error
    assert google_policies(google_emulator, "/Paris") == {}  # back to inherited at Google
    assert [p["outcome"] for p in run.policies] == ["restored"]
    # The inherit happened before the grant was revoked.
    methods = [r["method"] for r in google_emulator.requests()]
    assert methods.index("chromepolicy.customers.policies.orgunits.batchInherit") < methods.index(
        "oauth2.revoke"
    )
    report = admin_client_.get(reverse("chromeos:manage")).content.decode()
    assert 'id="removal-policies-report"' in report and "Héritage rétabli" in report


def test_removal_without_restoring_leaves_the_policies_and_says_so(
    google_integration,
    google_emulator,
    ous,
    admin_user,
    admin_client_,
    django_capture_on_commit_callbacks,
):
    _applied(google_integration, google_emulator, ous, admin_user, django_capture_on_commit_callbacks)
    admin_client_.post(reverse("chromeos:remove"), {})
    run = RemovalRun.unscoped.get()
    assert run.status == "succeeded" and not run.restore_policies and run.policies == []
    assert google_policies(google_emulator, "/Paris")  # still in force at Google
    report = admin_client_.get(reverse("chromeos:manage")).content.decode()
    assert "y restent en vigueur" in report
