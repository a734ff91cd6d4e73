"""The assignment pages over HTTP: who may do what, supported OUs only, preview, apply, unassign, reports, the
typed ChromeOS settings of the Blueprint page."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from chromeos.models import AssignmentState, OrgUnit, PolicyAssignment
from mdm.models import AppKind, Blueprint, Platform
from tests.chromeos.policies_helpers import google_policies, mirror_org_units
from tests.factories import AppFactory, BlueprintFactory

CHROME_ID = "aapbdbdomjkkjkaonfhkkikfgjllcleb"


@pytest.fixture
def ous(google_integration: Any, google_emulator: Any, in_tenant: Any) -> dict[str, OrgUnit]:
    return mirror_org_units(google_integration, google_emulator)


@pytest.fixture
def blueprint(tenant: Any) -> Blueprint:
    return BlueprintFactory(tenant=tenant, name="Salles de classe", settings={"guest_mode": False})


def text(response: Any) -> str:
    # French pages put non-breaking spaces inside « » (mdm/typography.py): compare words, not spaces.
    return html.unescape(response.content.decode()).replace("\u00a0", " ")


def test_overview_offers_supported_ous_only_and_explains_the_others(admin_client_, ous, blueprint):
    response = admin_client_.get(reverse("chromeos:policies"))
    assert response.status_code == 200
    page = text(response)
    offered = dict(response.context["form"].fields["org_unit"].choices)
    assert ous["/Paris"].pk in offered
    assert ous["/Lille"].pk not in offered and ous["/"].pk not in offered
    assert (
        "seules les unités organisationnelles importées depuis une source LDAP sont prises en charge" in page
    )
    assert "Unité racine" in page
    subjects = str(response.context["form"].fields["subject"].choices)
    assert f"blueprint:{blueprint.pk}" in subjects


def test_read_only_users_see_state_but_cannot_assign_apply_or_unassign(
    client_for, readonly_user, admin_user, ous, blueprint, google_integration
):
    assignment = PolicyAssignment.objects.create(
        integration=google_integration, org_unit=ous["/Paris"], blueprint=blueprint, assigned_by=admin_user
    )
    client = client_for(readonly_user)
    overview = client.get(reverse("chromeos:policies"))
    assert overview.status_code == 200 and 'id="assign-button"' not in text(overview)
    detail = client.get(reverse("chromeos:policy_assignment", kwargs={"pk": assignment.pk}))
    assert detail.status_code == 200
    assert 'id="apply-button"' not in text(detail) and 'id="unassign-button"' not in text(detail)
    post = {"org_unit": ous["/Paris"].pk, "subject": f"blueprint:{blueprint.pk}"}
    assert client.post(reverse("chromeos:policy_assign"), post).status_code == 403
    assert client.post(reverse("chromeos:policy_apply", kwargs={"pk": assignment.pk})).status_code == 403
    unassign = reverse("chromeos:policy_unassign", kwargs={"pk": assignment.pk})
    assert client.post(unassign, {"mode": "inherit"}).status_code == 403
    assert PolicyAssignment.objects.filter(pk=assignment.pk, state=AssignmentState.PENDING).exists()


def test_operator_assigns_previews_applies_and_unassigns(
    client_for, operator_user, ous, blueprint, google_emulator, django_capture_on_commit_callbacks
):
    client = client_for(operator_user)
    response = client.post(
        reverse("chromeos:policy_assign"),
        {"org_unit": ous["/Marseille"].pk, "subject": f"blueprint:{blueprint.pk}"},
    )
    assignment = PolicyAssignment.objects.get()
    assert response["Location"] == reverse("chromeos:policy_assignment", kwargs={"pk": assignment.pk})
    assert assignment.assigned_by == operator_user
    # A fresh assignment is pending but idle: its page offers "Appliquer" and does not poll.
    page = text(client.get(response["Location"]))
    assert re.search(r'<button type="submit" id="apply-button"\s*>', page), page
    assert "every 2s" not in page

    preview = client.get(reverse("chromeos:policy_preview", kwargs={"pk": assignment.pk}))
    assert "Désactivé" in text(preview) and "1 valeur changera." in text(preview)

    with django_capture_on_commit_callbacks(execute=True):
        applied = client.post(reverse("chromeos:policy_apply", kwargs={"pk": assignment.pk}))
    assert applied.status_code == 302
    state = client.get(
        reverse("chromeos:policy_state", kwargs={"pk": assignment.pk}), headers={"HX-Request": "true"}
    )
    assert "Appliquée" in text(state) and "hx-trigger" not in text(state)  # no more polling once applied
    assert state["HX-Refresh"] == "true"  # the page reloads once to follow the new state
    assert google_policies(google_emulator, "/Marseille") == {
        "chrome.devices.GuestMode": {"guestModeEnabled": False}
    }

    unassign_preview = client.get(reverse("chromeos:policy_unassign_preview", kwargs={"pk": assignment.pk}))
    assert "Après « rétablir »" in text(unassign_preview)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("chromeos:policy_unassign", kwargs={"pk": assignment.pk}), {"mode": "inherit"})
    assert not PolicyAssignment.objects.exists()
    assert google_policies(google_emulator, "/Marseille") == {}


def test_assigning_to_an_unsupported_ou_is_refused_with_a_message(admin_client_, ous, blueprint):
    response = admin_client_.post(
        reverse("chromeos:policy_assign"),
        {"org_unit": ous["/Lille"].pk, "subject": f"blueprint:{blueprint.pk}"},
    )
    assert response.status_code == 400  # not even a choice of the form
    assert not PolicyAssignment.objects.exists()


def test_a_failed_apply_shows_googles_reason(
    admin_client_, ous, blueprint, google_emulator, django_capture_on_commit_callbacks
):
    admin_client_.post(
        reverse("chromeos:policy_assign"),
        {"org_unit": ous["/Paris"].pk, "subject": f"blueprint:{blueprint.pk}"},
    )
    assignment = PolicyAssignment.objects.get()
    google_emulator.add_fault(
        method="chromepolicy.customers.policies.orgunits.batchModify",
        status=403,
        reason="forbidden",
        message="Nope.",
    )
    with django_capture_on_commit_callbacks(execute=True):
        admin_client_.post(reverse("chromeos:policy_apply", kwargs={"pk": assignment.pk}))
    page = text(admin_client_.get(reverse("chromeos:policy_assignment", kwargs={"pk": assignment.pk})))
    assert "Échec" in page and "n'est pas (ou plus) administrateur" in page
    assert "Détail technique" in page and "Nope. (forbidden) [HTTP 403]" in page


def test_reports_per_blueprint_and_per_app(
    admin_client_, ous, blueprint, google_integration, tenant, admin_user
):
    from tests.factories import ChromeOSDeviceFactory

    PolicyAssignment.objects.create(
        integration=google_integration, org_unit=ous["/Paris"], blueprint=blueprint, assigned_by=admin_user
    )
    inside = ChromeOSDeviceFactory(
        tenant=tenant, integration=google_integration, org_unit_path="/Paris/Ventes et Marketing"
    )
    outside = ChromeOSDeviceFactory(tenant=tenant, integration=google_integration, org_unit_path="/Lyon")
    url = reverse("chromeos:policy_blueprint_report", kwargs={"pk": blueprint.pk})
    page = text(admin_client_.get(url, {"state": "pending"}))
    assert inside.serial_number in page and outside.serial_number not in page
    assert "Mode invité</th><td>Désactivé" in page  # the Blueprint's settings in words, as states

    app = AppFactory(tenant=tenant, kind=AppKind.CHROME, identifier=CHROME_ID, name="Traduction")
    PolicyAssignment.objects.create(
        integration=google_integration,
        org_unit=ous["/Lyon"],
        app=app,
        app_context="users",
        install_type="allow",
        assigned_by=admin_user,
    )
    page = text(admin_client_.get(reverse("chromeos:policy_app_report", kwargs={"pk": app.pk}), {"ou": "/"}))
    assert f"chrome:{CHROME_ID}" in page
    assert outside.serial_number in page and inside.serial_number not in page
    assert "Installation autorisée" in page


# -- the Blueprint page's typed ChromeOS settings ---------------------------------------------------------------
def test_chromeos_blueprint_page_has_typed_settings_not_json(admin_client_):
    page = text(admin_client_.get(reverse("mdm:blueprint_create")))
    assert "Paramètres ChromeOS" in page
    assert 'name="settings-guest_mode"' in page and 'name="settings-incognito_mode"' in page
    assert "Session Invité gérée" in page
    assert 'name="settings"' not in page  # the raw JSON field is gone for ChromeOS


def test_typed_settings_save_wire_values_and_keep_unknown_keys(admin_client_, tenant):
    blueprint = BlueprintFactory(
        tenant=tenant, name="Kiosques", settings={"guest_mode": True, "custom": {"a": 1}}
    )
    response = admin_client_.post(
        reverse("mdm:blueprint_edit", kwargs={"pk": blueprint.pk}),
        {
            "name": "Kiosques",
            "platform": Platform.CHROMEOS,
            "description": "",
            "settings-guest_mode": "",  # back to "not configured"
            "settings-sign_in_restriction": "DEVICE_ALLOW_NEW_USERS_ENUM_RESTRICTED_LIST",
            "settings-sign_in_allowlist": "*@acme.test\nzoe@acme.test\nzoe@acme.test",
            "settings-auto_update_disabled": "false",
            "settings-screen_lock": "true",
        },
    )
    assert response.status_code == 302, response.context["settings_form"].errors
    blueprint.refresh_from_db()
    assert blueprint.settings == {
        "custom": {"a": 1},
        "sign_in_restriction": "DEVICE_ALLOW_NEW_USERS_ENUM_RESTRICTED_LIST",
        "sign_in_allowlist": ["*@acme.test", "zoe@acme.test"],
        "auto_update_disabled": False,
        "screen_lock": True,
    }
    form = admin_client_.get(reverse("mdm:blueprint_edit", kwargs={"pk": blueprint.pk})).context[
        "settings_form"
    ]
    assert form["screen_lock"].value() == "true"
    assert form["sign_in_allowlist"].value() == "*@acme.test\nzoe@acme.test"


@pytest.mark.parametrize(
    "fields,error",
    [
        (
            {"settings-sign_in_restriction": "DEVICE_ALLOW_NEW_USERS_ENUM_RESTRICTED_LIST"},
            "au moins un utilisateur",
        ),
        ({"settings-sign_in_allowlist": "zoe@acme.test"}, "La liste ne sert qu'avec"),
        (
            {
                "settings-sign_in_restriction": "DEVICE_ALLOW_NEW_USERS_ENUM_RESTRICTED_LIST",
                "settings-sign_in_allowlist": "pas une adresse",
            },
            "n'est ni une adresse e-mail",
        ),
        (
            {"settings-incognito_mode": "INCOGNITO_MODE_AVAILABILITY_ENUM_SOMETIMES"},
            "Sélectionnez un choix valide",
        ),
    ],
)
def test_typed_settings_refuse_bad_input_and_keep_nothing(admin_client_, in_tenant, fields, error):
    data = {"name": "Neuf", "platform": Platform.CHROMEOS, "description": "", **fields}
    response = admin_client_.post(reverse("mdm:blueprint_create"), data)
    assert response.status_code == 400
    assert error in text(response)
    assert not Blueprint.objects.exists()


def test_other_platforms_keep_the_json_settings(admin_client_, tenant):
    blueprint = BlueprintFactory(tenant=tenant, platform=Platform.IOS, settings={"x": 1})
    page = text(admin_client_.get(reverse("mdm:blueprint_edit", kwargs={"pk": blueprint.pk})))
    assert 'name="settings"' in page and "Paramètres ChromeOS" not in page


def test_report_query_count_does_not_grow_with_devices(
    admin_client_, ous, blueprint, google_integration, tenant, admin_user, django_assert_max_num_queries
):
    from tests.factories import ChromeOSDeviceFactory

    for path in ("/Paris", "/Paris/Ressources Humaines"):
        PolicyAssignment.objects.create(
            integration=google_integration, org_unit=ous[path], blueprint=blueprint, assigned_by=admin_user
        )
    url = reverse("chromeos:policy_blueprint_report", kwargs={"pk": blueprint.pk}) + "?state=pending"
    ChromeOSDeviceFactory(tenant=tenant, integration=google_integration, org_unit_path="/Paris")
    with CaptureQueriesContext(connection) as few:
        admin_client_.get(url)
    for n in range(40):
        path = "/Paris/Ressources Humaines" if n % 2 else "/Paris"
        ChromeOSDeviceFactory(tenant=tenant, integration=google_integration, org_unit_path=path)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = admin_client_.get(url)
    assert len(response.context["device_rows"]) == 41
