"""Assignments that explain themselves (issue 17, What to build 6): the OU tree with what each OU inherits from its
ancestors and its device counts; « Réaffecter » an assignment whose OU disappeared (issue 15, What to build 4)."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from chromeos.models import AssignmentState, OrgUnit, PolicyAssignment
from mdm.models import AuditEvent, Blueprint
from tests.chromeos.policies_helpers import google_policies, mirror_org_units
from tests.factories import BlueprintFactory, ChromeOSDeviceFactory


@pytest.fixture
def ous(google_integration: Any, google_emulator: Any, in_tenant: Any) -> dict[str, OrgUnit]:
    return mirror_org_units(google_integration, google_emulator)


@pytest.fixture
def blueprint(tenant: Any) -> Blueprint:
    return BlueprintFactory(tenant=tenant, name="Salles de classe", settings={"guest_mode": False})


def text(response: Any) -> str:
    return html.unescape(response.content.decode()).replace("\u00a0", " ")


def row_html(page: str, path: str) -> str:
    match = re.search(rf'<tr class="ou-row" data-path="{re.escape(path)}">(.*?)</tr>', page, re.S)
    assert match, f"no row for {path}"
    return match[1]


def test_the_ou_tree_shows_inherited_assignments_and_device_counts(
    admin_client_, ous, blueprint, google_integration, tenant, admin_user
):
    PolicyAssignment.objects.create(
        integration=google_integration, org_unit=ous["/Paris"], blueprint=blueprint, assigned_by=admin_user
    )
    child = "/Paris/Ventes et Marketing"
    for path in ("/Paris", child, child, "/Lyon"):
        ChromeOSDeviceFactory(tenant=tenant, integration=google_integration, org_unit_path=path)
    ChromeOSDeviceFactory(
        tenant=tenant, integration=google_integration, org_unit_path="/Paris", removed_at=timezone.now()
    )
    page = text(admin_client_.get(reverse("chromeos:policies")))

    paris, sub, lyon = row_html(page, "/Paris"), row_html(page, child), row_html(page, "/Lyon")
    assert 'class="assignment"' in paris and "hérité de" not in paris
    assert "Salles de classe" in sub and "hérité de /Paris" in sub and 'class="assignment"' not in sub
    assert "Salles de classe" not in lyon
    # Devices: the OU's own, then with its sub-OUs (removed devices are not counted); linked to the fleet.
    assert re.search(r'class="num ou-devices"><a [^>]*>1 <small>\(3 avec les sous-unités\)', paris)
    assert re.search(r'class="num ou-devices"><a [^>]*>2</a>', sub)
    assert "org_unit=/Paris/Ventes%20et%20Marketing&amp;include_children=1" in html.escape(
        sub, quote=False
    ) or ("org_unit=/Paris/Ventes%20et%20Marketing&include_children=1" in sub)
    # A tree: every OU after its parent, indented by depth.
    paths = re.findall(r'<tr class="ou-row" data-path="([^"]+)"', page)
    assert paths[0] == "/" and paths.index("/Paris") < paths.index(child)
    assert re.search(r'data-depth="2"><strong>Ventes et Marketing</strong>', sub)


def test_the_ou_tree_lists_sub_ous_right_after_their_parent(ous, google_integration, tenant):
    from chromeos.selectors.policies import org_unit_rows

    for path in ("/A b", "/A", "/A/Z"):
        OrgUnit.objects.create(
            integration=google_integration, org_unit_id=f"id:{path}", path=path, name=path.rsplit("/", 1)[1]
        )
    order = [r.org_unit.path for r in org_unit_rows(google_integration)]
    assert order.index("/A") + 1 == order.index("/A/Z")
    assert order.index("/A/Z") < order.index("/A b")


# -- « Réaffecter » ----------------------------------------------------------------------------------------------
def _applied(admin_client_: Any, assignment: PolicyAssignment, capture: Any) -> PolicyAssignment:
    with capture(execute=True):
        admin_client_.post(reverse("chromeos:policy_apply", kwargs={"pk": assignment.pk}))
    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.APPLIED, assignment.google_error
    return assignment


def test_an_assignment_on_a_vanished_ou_is_retargeted_then_applied_through_the_normal_flow(
    admin_client_,
    ous,
    blueprint,
    google_integration,
    google_emulator,
    admin_user,
    django_capture_on_commit_callbacks,
):
    old = PolicyAssignment.objects.create(
        integration=google_integration, org_unit=ous["/Lyon"], blueprint=blueprint, assigned_by=admin_user
    )
    _applied(admin_client_, old, django_capture_on_commit_callbacks)
    OrgUnit.objects.filter(pk=ous["/Lyon"].pk).update(missing_since=timezone.now())  # gone from Google

    overview = text(admin_client_.get(reverse("chromeos:policies")))
    url = reverse("chromeos:policy_retarget", kwargs={"pk": old.pk})
    assert f'href="{url}"' in row_html(overview, "/Lyon")
    page = text(admin_client_.get(url))
    assert "OU disparue" in page and "Désactivé" in page  # what Google still holds, as a state
    offered = re.findall(r'<option value="(\d+)">([^<]+)</option>', page)
    assert ("/Paris" in [p for _pk, p in offered]) and "/Lyon" not in [p for _pk, p in offered]
    assert "/Lille" not in [p for _pk, p in offered]  # not supported: not a target

    before = len(google_emulator.requests())
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_.post(url, {"org_unit": ous["/Paris"].pk})
    moved = PolicyAssignment.objects.get(org_unit=ous["/Paris"], blueprint=blueprint)
    assert response.status_code == 302 and response["Location"] == reverse(
        "chromeos:policy_assignment", kwargs={"pk": moved.pk}
    )
    # Nothing at Google yet: the new OU goes through preview and apply; the vanished OU is forgotten.
    assert moved.state == AssignmentState.PENDING and moved.apply_requested_at is None
    assert not [r for r in google_emulator.requests()[before:] if r["method"].startswith("chromepolicy.")]
    assert not PolicyAssignment.objects.filter(pk=old.pk).exists()
    assert not OrgUnit.objects.filter(pk=ous["/Lyon"].pk).exists()
    event = AuditEvent.unscoped.get(action="policy.retarget")
    assert (event.details["from_org_unit"], event.details["to_org_unit"]) == ("/Lyon", "/Paris")
    assert event.actor == admin_user

    _applied(admin_client_, moved, django_capture_on_commit_callbacks)
    assert google_policies(google_emulator, "/Paris")["chrome.devices.GuestMode"] == {
        "guestModeEnabled": False
    }


def test_an_assignment_whose_ldap_ou_went_is_retargeted_and_the_old_ou_restored_at_google(
    admin_client_,
    ous,
    blueprint,
    google_integration,
    google_emulator,
    admin_user,
    django_capture_on_commit_callbacks,
):
    old = PolicyAssignment.objects.create(
        integration=google_integration, org_unit=ous["/Lyon"], blueprint=blueprint, assigned_by=admin_user
    )
    _applied(admin_client_, old, django_capture_on_commit_callbacks)
    assert "chrome.devices.GuestMode" in google_policies(google_emulator, "/Lyon")
    ous["/Lyon"].ldap_org_unit.delete()  # deleted in the directory: the link goes (SET_NULL)

    page = text(admin_client_.get(reverse("chromeos:policy_assignment", kwargs={"pk": old.pk})))
    assert 'id="retarget-link"' in page
    with django_capture_on_commit_callbacks(execute=True):
        admin_client_.post(
            reverse("chromeos:policy_retarget", kwargs={"pk": old.pk}), {"org_unit": ous["/Paris"].pk}
        )
    # The old OU still exists at Google: what the console wrote there is put back (released).
    assert not PolicyAssignment.objects.filter(pk=old.pk).exists()
    assert "chrome.devices.GuestMode" not in google_policies(google_emulator, "/Lyon")
    assert PolicyAssignment.objects.filter(org_unit=ous["/Paris"], blueprint=blueprint).exists()
    assert AuditEvent.unscoped.filter(action="policy.retarget").count() == 1


def test_retarget_is_refused_for_a_managed_ou_a_bad_target_and_a_read_only_user(
    admin_client_, client_for, readonly_user, ous, blueprint, google_integration, admin_user
):
    assignment = PolicyAssignment.objects.create(
        integration=google_integration, org_unit=ous["/Lyon"], blueprint=blueprint, assigned_by=admin_user
    )
    url = reverse("chromeos:policy_retarget", kwargs={"pk": assignment.pk})
    response = admin_client_.post(url, {"org_unit": ous["/Paris"].pk})
    assert response.status_code == 400 and "est prise en charge" in text(response)
    OrgUnit.objects.filter(pk=ous["/Lyon"].pk).update(missing_since=timezone.now())
    for bad in ("", "x", "99999999999999999999999", str(ous["/Lille"].pk), str(ous["/"].pk)):
        assert admin_client_.post(url, {"org_unit": bad}).status_code == 400
    assert client_for(readonly_user).post(url, {"org_unit": ous["/Paris"].pk}).status_code == 403
    assert PolicyAssignment.objects.filter(pk=assignment.pk).exists()
    assert not PolicyAssignment.objects.filter(org_unit=ous["/Paris"]).exists()
    # Another tenant's assignment: 404.
    assert admin_client_.get(reverse("chromeos:policy_retarget", kwargs={"pk": 10**9})).status_code == 404


# -- values worded as states ---------------------------------------------------------------------------------------
def test_values_read_as_states_and_unknown_google_values_are_never_bare_enums():
    from chromeos.policy_schemas import APP_POLICIES, SETTINGS_BY_KEY

    assert SETTINGS_BY_KEY["guest_mode"].display(False) == "Désactivé"
    assert SETTINGS_BY_KEY["auto_update_disabled"].display(True) == "Bloquées"
    assert SETTINGS_BY_KEY["logout_button"].display(True) == "Affiché"
    incognito = SETTINGS_BY_KEY["incognito_mode"]
    assert incognito.display("INCOGNITO_MODE_AVAILABILITY_ENUM_UNAVAILABLE") == "Navigation privée interdite"
    restriction = SETTINGS_BY_KEY["sign_in_restriction"]
    assert (
        restriction.display("DEVICE_ALLOW_NEW_USERS_ENUM_ANY_USER")
        == "Tous les utilisateurs peuvent se connecter"
    )
    assert (
        restriction.display("DEVICE_ALLOW_NEW_USERS_ENUM_GUEST_ONLY") == "Autre valeur de Google : guest only"
    )
    assert APP_POLICIES["users"].display("SOMETHING_NEW") == "Autre valeur de Google : SOMETHING_NEW"
    # The form still asks with verbs.
    assert dict(SETTINGS_BY_KEY["guest_mode"].choices)[False] == "Désactiver le mode invité"


# -- the newcomer path ---------------------------------------------------------------------------------------------
def test_a_newcomer_assigns_each_seeded_blueprint_and_app_with_the_forms_defaults_and_applies_it(
    admin_client_, ous, tenant, google_emulator, django_capture_on_commit_callbacks
):
    """The README's walk-through, step 4: the demo seed's Blueprints and apps, assigned as the page offers them
    (default context and install type), previewed, then applied at Google."""
    from mdm.management.commands.demo_seed import DEMO_APPS, DEMO_BLUEPRINTS
    from mdm.models import App, Platform

    for name, description, settings in DEMO_BLUEPRINTS:
        Blueprint.objects.create(
            name=name, description=description, settings=settings, platform=Platform.CHROMEOS
        )
    for name, kind, identifier in DEMO_APPS:
        App.objects.create(name=name, kind=kind, identifier=identifier)
    page = admin_client_.get(reverse("chromeos:policies"))
    form = page.context["form"]
    offered = [value for _group, options in form.fields["subject"].choices[1:] for value, _label in options]
    assert len(offered) == len(DEMO_BLUEPRINTS) + len(DEMO_APPS)  # every seeded one is offered
    assert 'id="unassignable-blueprints"' not in page.content.decode()
    defaults = {
        "app_context": form.fields["app_context"].initial,
        "install_type": form.fields["install_type"].initial,
    }
    # The two seeded Blueprints both set the guest mode: each goes to its own OU (on one OU they would clash,
    # and the page says so); the apps go next to the first.
    targets = iter(["/Paris", "/Lyon"])
    for subject in offered:
        path = next(targets) if subject.startswith("blueprint:") else "/Paris"
        response = admin_client_.post(
            reverse("chromeos:policy_assign"), {"org_unit": ous[path].pk, "subject": subject, **defaults}
        )
        assert response.status_code == 302, text(response)[-2000:]
        assignment = PolicyAssignment.objects.latest("pk")
        preview = admin_client_.get(reverse("chromeos:policy_preview", kwargs={"pk": assignment.pk}))
        assert 'role="alert"' not in preview.content.decode()
        _applied(admin_client_, assignment, django_capture_on_commit_callbacks)
    assert PolicyAssignment.objects.filter(state=AssignmentState.APPLIED).count() == len(offered)


def test_an_app_can_be_retargeted_to_an_ou_that_has_it_in_another_context_only(
    ous, google_integration, tenant, admin_user
):
    from chromeos.services.policies import retarget_choices
    from mdm.models import AppKind
    from tests.factories import AppFactory

    app = AppFactory(tenant=tenant, kind=AppKind.CHROME, identifier="a" * 32, name="Traduction")

    def assign(path: str, context: str) -> PolicyAssignment:
        return PolicyAssignment.objects.create(
            integration=google_integration,
            org_unit=ous[path],
            app=app,
            app_context=context,
            install_type="force_install",
            assigned_by=admin_user,
        )

    gone = assign("/Lyon", "users")
    assign("/Paris", "kiosk")
    other = AppFactory(tenant=tenant, kind=AppKind.CHROME, identifier="b" * 32, name="Dictionnaire")
    PolicyAssignment.objects.create(  # /Paris has this app (kiosk) and another app for users: still a target
        integration=google_integration,
        org_unit=ous["/Paris"],
        app=other,
        app_context="users",
        install_type="allow",
        assigned_by=admin_user,
    )
    assign("/Paris/Ventes et Marketing", "users")
    OrgUnit.objects.filter(pk=ous["/Lyon"].pk).update(missing_since=timezone.now())
    gone.refresh_from_db()
    paths = [ou.path for ou in retarget_choices(gone)]
    assert "/Paris" in paths and "/Paris/Ventes et Marketing" not in paths and "/Lyon" not in paths
