"""Assignments never vanish silently (issue 15, What to build 4): a Google OU is matched by id then by path, so
one deleted and recreated with the same path keeps its assignments; an OU Google no longer lists keeps its
assignments as "OU disparue", said in the sync log and the audit trail, until an admin releases them."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from chromeos.models import GoogleIntegration, OrgUnit, PolicyAssignment
from chromeos.selectors.sync import run_log
from mdm.models import AuditEvent
from tests.chromeos.test_sync_service import run_sync
from tests.factories import BlueprintFactory


def _assign(integration: GoogleIntegration, path: str) -> PolicyAssignment:
    ou = OrgUnit.unscoped.get(integration=integration, path=path)
    return PolicyAssignment.unscoped.create(
        tenant=integration.tenant,
        integration=integration,
        org_unit=ou,
        blueprint=BlueprintFactory(tenant=integration.tenant, name="Écoles"),
        state="applied",
        applied_values={"chrome.users.MaxConnectionsPerProxy": {"maxConnectionsPerProxy": 32}},
    )


def _a_leaf(google_emulator: Any) -> str:
    paths = [u["orgUnitPath"] for u in google_emulator.control("GET", "/org-units")["org_units"]]
    return next(p for p in sorted(paths, key=len, reverse=True) if p != "/")


def _log_text(run: Any) -> str:
    return " ".join(str(line) for line in run_log(run))


@pytest.mark.django_db(transaction=True)
@pytest.mark.google_emulator(devices=20)
def test_an_ou_recreated_in_google_with_the_same_path_keeps_its_assignments(
    google_integration: GoogleIntegration, google_emulator: Any
) -> None:
    run_sync(google_integration)
    path = _a_leaf(google_emulator)
    assignment = _assign(google_integration, path)
    old_id = assignment.org_unit.org_unit_id
    google_emulator.control("POST", "/org-units/delete", {"paths": [path]})
    google_emulator.control("POST", "/org-units", {"paths": [path]})
    run = run_sync(google_integration)
    assert run.status == "succeeded", run.log
    assignment = PolicyAssignment.unscoped.get(pk=assignment.pk)  # still there
    assert assignment.org_unit.path == path and assignment.org_unit.org_unit_id != old_id
    assert assignment.org_unit.missing_since is None
    # Google's new OU holds nothing of it: to be applied again, not shown as applied.
    assert assignment.state == "pending" and assignment.applied_values == {}
    assert "recréée dans Google" in assignment.google_error
    assert "recréée dans Google" in _log_text(run)
    event = AuditEvent.unscoped.get(action="chromeos.org_unit.recreated")
    assert event.target == path and event.details["old_id"] == old_id
    assert event.details["assignments"][0]["assignment"] == "Écoles"


@pytest.mark.django_db(transaction=True)
@pytest.mark.google_emulator(devices=20)
def test_an_ou_gone_from_google_keeps_its_assignments_as_missing_until_released(
    google_integration: GoogleIntegration, google_emulator: Any, admin_client_: Any
) -> None:
    run_sync(google_integration)
    path = _a_leaf(google_emulator)
    assignment = _assign(google_integration, path)
    google_emulator.control("POST", "/org-units/delete", {"paths": [path]})
    run = run_sync(google_integration)
    assert run.status == "succeeded", run.log
    ou = OrgUnit.unscoped.get(pk=assignment.org_unit_id)
    assert ou.missing_since is not None
    assert PolicyAssignment.unscoped.filter(pk=assignment.pk).exists()
    assert "disparue de Google" in _log_text(run) and "Écoles" in _log_text(run)
    assert AuditEvent.unscoped.filter(action="chromeos.org_unit.missing", target=path).count() == 1
    run_sync(google_integration)  # said once, not at every sync
    assert AuditEvent.unscoped.filter(action="chromeos.org_unit.missing", target=path).count() == 1

    page = admin_client_.get(reverse("chromeos:policies")).content.decode()
    assert "OU disparue" in page
    response = admin_client_.post(reverse("chromeos:policy_release", kwargs={"pk": assignment.pk}))
    assert response.status_code == 302
    assert not PolicyAssignment.unscoped.filter(pk=assignment.pk).exists()
    assert not OrgUnit.unscoped.filter(pk=ou.pk).exists()
    assert AuditEvent.unscoped.filter(action="policy.release").exists()
    # Nothing was sent to Google for the release.
    assert not [r for r in google_emulator.requests() if r["method"].startswith("chromepolicy.")]


@pytest.mark.django_db(transaction=True)
@pytest.mark.google_emulator(devices=20)
def test_an_existing_ou_cannot_be_released_and_an_unassigned_ou_that_goes_is_deleted(
    google_integration: GoogleIntegration, google_emulator: Any, admin_client_: Any
) -> None:
    run_sync(google_integration)
    path = _a_leaf(google_emulator)
    assignment = _assign(google_integration, path)
    response = admin_client_.post(reverse("chromeos:policy_release", kwargs={"pk": assignment.pk}))
    assert response.status_code == 302
    assert PolicyAssignment.unscoped.filter(pk=assignment.pk).exists()
    others = [
        u["orgUnitPath"]
        for u in google_emulator.control("GET", "/org-units")["org_units"]
        if u["orgUnitPath"] not in ("/", path)
        and not path.startswith(u["orgUnitPath"] + "/")
        and not u["orgUnitPath"].startswith(path + "/")
    ]
    google_emulator.control("POST", "/org-units/delete", {"paths": [others[-1]]})
    run_sync(google_integration)
    assert not OrgUnit.unscoped.filter(path=others[-1]).exists()


@pytest.mark.django_db
def test_an_ou_whose_ldap_ou_went_says_its_policies_are_still_applied_at_google(
    google_integration: GoogleIntegration, admin_client_: Any
) -> None:
    from tests.chromeos.policies_helpers import link_ldap

    ou = OrgUnit.unscoped.create(
        tenant=google_integration.tenant,
        integration=google_integration,
        org_unit_id="03ph8a2z1",
        path="/Écoles",
        name="Écoles",
    )
    link_ldap(ou)
    _assign(google_integration, "/Écoles")
    ou.refresh_from_db()
    ou.ldap_org_unit.delete()  # deleted in the directory, then by the LDAP sync: the link goes (SET_NULL)
    page = admin_client_.get(reverse("chromeos:policies")).content.decode()
    assert "Unité LDAP disparue ou renommée" in page and "restent appliquées chez Google" in page
