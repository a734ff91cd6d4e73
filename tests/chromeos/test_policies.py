"""Assign, preview, apply and unassign against the emulator over HTTP (the real Chrome Policy client), with
the Celery tasks run inline on commit."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from chromeos.models import AssignmentState, OrgUnit, PolicyAssignment, UnassignMode
from chromeos.policy_schemas import AppContext, InstallType
from chromeos.services import policies as services
from chromeos.tasks.policies import policy_assignment_apply_task
from mdm.models import AppKind, AuditEvent, Platform, User
from tests.chromeos.policies_helpers import (
    google_policies,
    mirror_org_units,
    resolve,
    set_policy,
)
from tests.factories import AppFactory, BlueprintFactory

CHROME_ID = "aapbdbdomjkkjkaonfhkkikfgjllcleb"
BLUEPRINT_SETTINGS = {
    "guest_mode": False,
    "sign_in_restriction": "DEVICE_ALLOW_NEW_USERS_ENUM_RESTRICTED_LIST",
    "sign_in_allowlist": ["*@example.com"],
    "incognito_mode": "INCOGNITO_MODE_AVAILABILITY_ENUM_UNAVAILABLE",
    "managed_guest_incognito_mode": "INCOGNITO_MODE_AVAILABILITY_ENUM_FORCED",
    "not_a_chromeos_key": 1,
}
BATCH_MODIFY = "chromepolicy.customers.policies.orgunits.batchModify"
BATCH_INHERIT = "chromepolicy.customers.policies.orgunits.batchInherit"


@pytest.fixture
def ous(google_integration: Any, google_emulator: Any, in_tenant: Any) -> dict[str, OrgUnit]:
    return mirror_org_units(google_integration, google_emulator)


@pytest.fixture
def blueprint(tenant: Any) -> Any:
    return BlueprintFactory(tenant=tenant, name="Postes partagés", settings=dict(BLUEPRINT_SETTINGS))


def actions() -> list[str]:
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))


def apply(assignment: PolicyAssignment, actor: User, capture: Any) -> PolicyAssignment:
    with capture(execute=True):
        services.policy_assignment_apply_request(assignment=assignment, actor=actor)
    return PolicyAssignment.objects.get(pk=assignment.pk)


def unassign(assignment: PolicyAssignment, mode: str, actor: User, capture: Any) -> bool:
    with capture(execute=True):
        return services.policy_assignment_unassign_request(assignment=assignment, mode=mode, actor=actor)


def test_assign_preview_apply_a_blueprint(
    google_integration, google_emulator, ous, blueprint, admin_user, django_capture_on_commit_callbacks
):
    # Another admin set guest mode on /Paris itself, and incognito at the root, before the console came.
    set_policy(google_emulator, "/Paris", "chrome.devices.GuestMode", {"guestModeEnabled": True})
    set_policy(
        google_emulator,
        "/",
        "chrome.users.IncognitoMode",
        {"incognitoModeAvailability": "INCOGNITO_MODE_AVAILABILITY_ENUM_AVAILABLE"},
    )
    google_emulator.control("DELETE", "/requests")
    assignment = services.policy_assignment_create(
        integration=google_integration, org_unit=ous["/Paris"], blueprint=blueprint, actor=admin_user
    )
    assert assignment.state == AssignmentState.PENDING
    assert google_emulator.requests(BATCH_MODIFY) == []  # assigning writes nothing at Google

    preview = services.policy_preview_apply(assignment)
    assert not preview.error
    rows = {r.label: r for r in preview.rows}
    assert (rows["Mode invité"].current.text, rows["Mode invité"].current.source) == (
        "Autorisé",
        "définie sur cette unité",
    )
    assert rows["Mode invité"].new.text == "Désactivé"  # worded as a state
    assert rows["Navigation privée"].current.source == "héritée de /"
    assert rows["Navigation privée"].new.text == "Navigation privée interdite"
    assert rows["Restriction de connexion"].current.text == "Non défini"
    assert rows["Utilisateurs autorisés à se connecter"].new.text == "*@example.com"
    assert preview.changes == 5

    applied = apply(assignment, admin_user, django_capture_on_commit_callbacks)
    assert applied.state == AssignmentState.APPLIED, applied.google_error
    assert applied.applied_at is not None
    assert google_policies(google_emulator, "/Paris") == {
        "chrome.devices.GuestMode": {"guestModeEnabled": False},
        "chrome.devices.SignInRestriction": {
            "deviceAllowNewUsers": "DEVICE_ALLOW_NEW_USERS_ENUM_RESTRICTED_LIST",
            "userAllowlist": ["*@example.com"],
        },
        "chrome.users.IncognitoMode": {
            "incognitoModeAvailability": "INCOGNITO_MODE_AVAILABILITY_ENUM_UNAVAILABLE"
        },
        "chrome.devices.managedguest.IncognitoMode": {
            "incognitoModeAvailability": "INCOGNITO_MODE_AVAILABILITY_ENUM_FORCED"
        },
    }
    # One batch per namespace, never two namespaces in one call.
    batches = google_emulator.requests(BATCH_MODIFY)
    namespaces = [
        {r["policyValue"]["policySchema"].rsplit(".", 1)[0] for r in b["body"]["requests"]} for b in batches
    ]
    assert sorted(n.pop() for n in namespaces if len(n) == 1) == [
        "chrome.devices",
        "chrome.devices.managedguest",
        "chrome.users",
    ]
    assert len(batches) == 3
    # The snapshot remembers only what /Paris held itself.
    assert applied.previous_values["chrome.devices.GuestMode"] == {
        "direct": True,
        "value": {"guestModeEnabled": True},
    }
    assert applied.previous_values["chrome.users.IncognitoMode"] == {"direct": False, "value": None}
    assert actions() == ["policy.assign", "policy.apply", "policy.applied"]

    # Applying again changes nothing at Google and keeps the original snapshot.
    again = apply(applied, admin_user, django_capture_on_commit_callbacks)
    assert again.state == AssignmentState.APPLIED
    assert again.previous_values == applied.previous_values
    assert services.policy_preview_apply(again).changes == 0


def test_unassign_restores_what_was_there_before(
    google_integration, google_emulator, ous, blueprint, admin_user, django_capture_on_commit_callbacks
):
    set_policy(google_emulator, "/Paris", "chrome.devices.GuestMode", {"guestModeEnabled": True})
    assignment = services.policy_assignment_create(
        integration=google_integration, org_unit=ous["/Paris"], blueprint=blueprint, actor=admin_user
    )
    applied = apply(assignment, admin_user, django_capture_on_commit_callbacks)

    preview = {r.label: r for r in services.policy_preview_unassign(applied).rows}
    assert preview["Mode invité"].current.text == "Désactivé"
    assert preview["Mode invité"].restore is not None
    assert preview["Mode invité"].restore.text == "Autorisé"
    assert preview["Mode invité"].new.text == "Non défini"  # the root sets nothing: Google's default

    assert unassign(applied, UnassignMode.RESTORE, admin_user, django_capture_on_commit_callbacks) is False
    assert not PolicyAssignment.objects.filter(pk=assignment.pk).exists()
    # /Paris holds its own guest mode again; everything else the console wrote is gone.
    assert google_policies(google_emulator, "/Paris") == {
        "chrome.devices.GuestMode": {"guestModeEnabled": True}
    }
    assert actions()[-2:] == ["policy.unassign", "policy.unassigned"]
    unassigned = AuditEvent.objects.get(action="policy.unassigned")
    assert unassigned.details["mode"] == "restore"
    assert unassigned.actor is None  # the worker's outcome; the request names the user
    assert AuditEvent.objects.get(action="policy.unassign").actor == admin_user


def test_unassign_inherits_from_the_parent(
    google_integration, google_emulator, ous, admin_user, django_capture_on_commit_callbacks
):
    set_policy(google_emulator, "/", "chrome.devices.GuestMode", {"guestModeEnabled": True})
    set_policy(
        google_emulator, "/Paris/Ventes et Marketing", "chrome.devices.GuestMode", {"guestModeEnabled": True}
    )
    blueprint = BlueprintFactory(tenant=google_integration.tenant, settings={"guest_mode": False})
    assignment = services.policy_assignment_create(
        integration=google_integration,
        org_unit=ous["/Paris/Ventes et Marketing"],
        blueprint=blueprint,
        actor=admin_user,
    )
    applied = apply(assignment, admin_user, django_capture_on_commit_callbacks)
    google_emulator.control("DELETE", "/requests")
    row = services.policy_preview_unassign(applied).rows[0]
    assert (row.new.text, row.new.source) == ("Autorisé", "héritée de /")

    unassign(applied, UnassignMode.INHERIT, admin_user, django_capture_on_commit_callbacks)
    # Even the value that was there before is gone: the OU now follows its parents.
    assert google_policies(google_emulator, "/Paris/Ventes et Marketing") == {}
    resolved = resolve(google_emulator, "/Paris/Ventes et Marketing", "chrome.devices.GuestMode")
    assert (
        resolved["sourceKey"]["targetResource"]
        == f"orgunits/{google_emulator.state.org_unit('/').org_unit_id}"
    )
    inherit_calls = google_emulator.requests(BATCH_INHERIT)
    assert [r["policySchema"] for r in inherit_calls[0]["body"]["requests"]] == ["chrome.devices.GuestMode"]


def test_a_refused_batch_modify_fails_with_googles_reason(
    google_integration, google_emulator, ous, blueprint, admin_user, django_capture_on_commit_callbacks
):
    google_emulator.add_fault(
        method=BATCH_MODIFY,
        status=400,
        reason="badRequest",
        message="Invalid value for field 'guestModeEnabled'.",
    )
    assignment = services.policy_assignment_create(
        integration=google_integration, org_unit=ous["/Paris"], blueprint=blueprint, actor=admin_user
    )
    failed = apply(assignment, admin_user, django_capture_on_commit_callbacks)
    assert failed.state == AssignmentState.FAILED
    assert "Invalid value for field 'guestModeEnabled'." in failed.google_error
    assert "HTTP 400" in failed.google_error
    assert failed.applied_values == {}  # the first namespace was refused: Google holds nothing of it
    assert google_policies(google_emulator, "/Paris") == {}
    event = AuditEvent.objects.get(action="policy.apply_failed")
    assert "Invalid value" in event.details["error"]

    # The admin fixes nothing at Google's side and applies again: this time Google accepts.
    assert apply(failed, admin_user, django_capture_on_commit_callbacks).state == AssignmentState.APPLIED
    assert google_policies(google_emulator, "/Paris")["chrome.devices.GuestMode"] == {
        "guestModeEnabled": False
    }


def test_google_unavailable_is_retried_then_fails(
    google_integration, google_emulator, ous, blueprint, admin_user, in_tenant, monkeypatch
):
    assignment = services.policy_assignment_create(
        integration=google_integration, org_unit=ous["/Paris"], blueprint=blueprint, actor=admin_user
    )
    google_emulator.add_fault(method=BATCH_MODIFY, status=503, count=None)
    # The worker only takes a requested apply (one withdrawn by « Annuler » is skipped).
    PolicyAssignment.objects.filter(pk=assignment.pk).update(apply_requested_at=timezone.now())
    # Not the last attempt: back to pending with the reason, and the task is asked to run again later.
    with pytest.raises(services.RetryLater):
        services.policy_assignment_apply(assignment.pk, final_attempt=False)
    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.PENDING
    assert "nouvel essai automatique" in assignment.google_error
    # Through Celery (eager: the retries run at once): every retry meets the outage, then the assignment fails.
    # Eager retries re-run at once (no countdown) unless the Retry is propagated as an error.
    monkeypatch.setitem(policy_assignment_apply_task.app.conf, "task_eager_propagates", False)
    result = policy_assignment_apply_task.apply(args=[assignment.pk])
    assert result.get() == AssignmentState.FAILED
    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.FAILED
    assert "HTTP 503" in assignment.google_error
    modify_calls = len(google_emulator.requests(BATCH_MODIFY))
    assert modify_calls >= 4 * 2  # the client's own retries inside each of the task's four runs


def test_an_ou_that_became_unsupported(
    google_integration, google_emulator, ous, blueprint, admin_user, django_capture_on_commit_callbacks
):
    assignment = services.policy_assignment_create(
        integration=google_integration, org_unit=ous["/Paris"], blueprint=blueprint, actor=admin_user
    )
    applied = apply(assignment, admin_user, django_capture_on_commit_callbacks)
    # The LDAP OU went away (or the link was lost at the last sync).
    OrgUnit.objects.filter(pk=ous["/Paris"].pk).update(ldap_org_unit=None)
    applied = PolicyAssignment.objects.get(pk=applied.pk)
    assert "Non prise en charge" in services.org_unit_unsupported_reason(applied.org_unit)
    with pytest.raises(services.PolicyError, match="Non prise en charge"):
        services.policy_assignment_apply_request(assignment=applied, actor=admin_user)
    preview = services.policy_preview_apply(applied)
    assert "Non prise en charge" in preview.error
    # An apply already queued when the link was lost fails instead of writing.
    PolicyAssignment.objects.filter(pk=applied.pk).update(
        state=AssignmentState.PENDING, apply_requested_at=timezone.now()
    )
    before = len(google_emulator.requests(BATCH_MODIFY))
    failed = services.policy_assignment_apply(applied.pk)
    assert failed.state == AssignmentState.FAILED and "Non prise en charge" in failed.google_error
    assert len(google_emulator.requests(BATCH_MODIFY)) == before
    # It can still be taken back at Google.
    unassign(failed, UnassignMode.INHERIT, admin_user, django_capture_on_commit_callbacks)
    assert google_policies(google_emulator, "/Paris") == {}
    assert not PolicyAssignment.objects.exists()


def test_apps_by_install_type_and_context(
    google_integration, google_emulator, ous, admin_user, django_capture_on_commit_callbacks
):
    tenant = google_integration.tenant
    chrome = AppFactory(tenant=tenant, kind=AppKind.CHROME, identifier=CHROME_ID, name="Traduction")
    android = AppFactory(tenant=tenant, kind=AppKind.ANDROID, identifier="com.example.notes", name="Notes")
    ou = ous["/Lyon"]
    pinned = services.policy_assignment_create(
        integration=google_integration,
        org_unit=ou,
        app=chrome,
        app_context=AppContext.USERS,
        install_type=InstallType.PIN,
        actor=admin_user,
    )
    blocked = services.policy_assignment_create(
        integration=google_integration,
        org_unit=ou,
        app=android,
        app_context=AppContext.USERS,
        install_type=InstallType.BLOCK,
        actor=admin_user,
    )
    kiosk = services.policy_assignment_create(
        integration=google_integration,
        org_unit=ou,
        app=chrome,
        app_context=AppContext.KIOSK,
        install_type=InstallType.FORCE_INSTALL,
        actor=admin_user,
    )
    row = services.policy_preview_apply(pinned).rows[0]
    assert (row.current.text, row.new.text) == ("Non gérée", "Installation forcée et épinglée")
    for assignment in (pinned, blocked, kiosk):
        assert (
            apply(assignment, admin_user, django_capture_on_commit_callbacks).state == AssignmentState.APPLIED
        )
    assert google_policies(google_emulator, "/Lyon") == {
        ("chrome.users.apps.InstallType", f"chrome:{CHROME_ID}"): {
            "appInstallType": "FORCED_AND_PIN_TO_TOOLBAR"
        },
        ("chrome.users.apps.InstallType", "android:com.example.notes"): {"appInstallType": "BLOCKED"},
        ("chrome.devices.kiosk.apps.ForceInstall", f"chrome:{CHROME_ID}"): {"forceInstall": True},
    }
    unassign(
        PolicyAssignment.objects.get(pk=pinned.pk),
        UnassignMode.RESTORE,
        admin_user,
        django_capture_on_commit_callbacks,
    )
    # Only that app left management at /Lyon: the inherit named its app_id.
    assert ("chrome.users.apps.InstallType", f"chrome:{CHROME_ID}") not in google_policies(
        google_emulator, "/Lyon"
    )
    assert len(google_policies(google_emulator, "/Lyon")) == 2


def test_blueprint_edited_after_apply_is_outdated_and_reapplies_exactly(
    google_integration, google_emulator, ous, admin_user, django_capture_on_commit_callbacks
):
    set_policy(google_emulator, "/Paris", "chrome.users.LockScreen", {"allowScreenLock": True})
    blueprint = BlueprintFactory(
        tenant=google_integration.tenant, settings={"guest_mode": False, "screen_lock": False}
    )
    assignment = services.policy_assignment_create(
        integration=google_integration, org_unit=ous["/Paris"], blueprint=blueprint, actor=admin_user
    )
    applied = apply(assignment, admin_user, django_capture_on_commit_callbacks)
    assert not services.assignment_is_outdated(applied)
    blueprint.settings = {"guest_mode": True}  # screen lock no longer configured
    blueprint.save()
    applied = PolicyAssignment.objects.get(pk=applied.pk)
    assert services.assignment_is_outdated(applied)
    reapplied = apply(applied, admin_user, django_capture_on_commit_callbacks)
    assert reapplied.applied_values == {"chrome.devices.GuestMode": {"guestModeEnabled": True}}
    # The setting the Blueprint dropped got back what /Paris had before.
    assert google_policies(google_emulator, "/Paris") == {
        "chrome.devices.GuestMode": {"guestModeEnabled": True},
        "chrome.users.LockScreen": {"allowScreenLock": True},
    }


def test_what_cannot_be_assigned(google_integration, ous, blueprint, admin_user):
    tenant = google_integration.tenant

    def refused(match: str, **kwargs: Any) -> None:
        kwargs.setdefault("org_unit", ous["/Paris"])
        with pytest.raises(services.PolicyError, match=match):
            services.policy_assignment_create(integration=google_integration, actor=admin_user, **kwargs)

    refused("Non prise en charge", org_unit=ous["/Lille"], blueprint=blueprint)
    refused("Unité racine", org_unit=ous["/"], blueprint=blueprint)
    refused(
        "Seules les configurations ChromeOS", blueprint=BlueprintFactory(tenant=tenant, platform=Platform.IOS)
    )
    refused(
        "aucun paramètre ChromeOS", blueprint=BlueprintFactory(tenant=tenant, settings={"wallpaper": "x"})
    )
    services.policy_assignment_create(
        integration=google_integration, org_unit=ous["/Paris"], blueprint=blueprint, actor=admin_user
    )
    refused("déjà affectée", blueprint=blueprint)
    other = BlueprintFactory(tenant=tenant, name="Autre", settings={"guest_mode": True, "screen_lock": True})
    refused("Mode invité \\(Postes partagés\\)", blueprint=other)
    uploaded = AppFactory(tenant=tenant, kind=AppKind.UPLOADED, identifier="outil.apk")
    refused(
        "ne peut pas distribuer", app=uploaded, app_context=AppContext.USERS, install_type=InstallType.ALLOW
    )
    android = AppFactory(tenant=tenant, kind=AppKind.ANDROID, identifier="com.example.a")
    refused(
        "ne peut pas distribuer",
        app=android,
        app_context=AppContext.KIOSK,
        install_type=InstallType.FORCE_INSTALL,
    )
    chrome = AppFactory(tenant=tenant, kind=AppKind.CHROME, identifier=CHROME_ID)
    refused("pas possible", app=chrome, app_context=AppContext.MANAGED_GUEST, install_type=InstallType.ALLOW)
    assert PolicyAssignment.objects.count() == 1


def test_deleting_a_blueprint_removes_its_assignments_and_restores_google(
    google_integration, google_emulator, ous, blueprint, admin_user, django_capture_on_commit_callbacks
):
    set_policy(google_emulator, "/Paris", "chrome.devices.GuestMode", {"guestModeEnabled": True})
    applied = apply(
        services.policy_assignment_create(
            integration=google_integration, org_unit=ous["/Paris"], blueprint=blueprint, actor=admin_user
        ),
        admin_user,
        django_capture_on_commit_callbacks,
    )
    pending = services.policy_assignment_create(
        integration=google_integration, org_unit=ous["/Lyon"], blueprint=blueprint, actor=admin_user
    )
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        blueprint.delete()
    assert len(callbacks) == 1  # only the applied one had anything at Google
    assert not PolicyAssignment.objects.filter(pk__in=[applied.pk, pending.pk]).exists()
    assert google_policies(google_emulator, "/Paris") == {
        "chrome.devices.GuestMode": {"guestModeEnabled": True}
    }
    event = AuditEvent.objects.get(action="policy.unassigned")
    assert event.details["reason"] == "subject_deleted" and event.details["org_unit"] == "/Paris"
