"""Assignments that explain themselves: a Blueprint without ChromeOS settings is listed, greyed out, with the way
to fix it; the demo seed's Blueprints and apps can be assigned as a newcomer following the README finds them."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.core.management import call_command
from django.urls import reverse

from chromeos.models import OrgUnit
from chromeos.policy_schemas import blueprint_writes
from mdm.models import App, Blueprint, Tenant
from mdm.tenancy import tenant_context
from tests.chromeos.policies_helpers import mirror_org_units
from tests.factories import BlueprintFactory


@pytest.fixture
def ous(google_integration: Any, google_emulator: Any, in_tenant: Any) -> dict[str, OrgUnit]:
    return mirror_org_units(google_integration, google_emulator)


def test_a_blueprint_without_chromeos_settings_is_listed_disabled_with_a_way_to_fix_it(
    admin_client_, ous, tenant
):
    empty = BlueprintFactory(tenant=tenant, name="Bornes d'accueil", settings={})
    BlueprintFactory(tenant=tenant, name="Écoles primaires", settings={"guest_mode": False})
    page = html.unescape(admin_client_.get(reverse("chromeos:policies")).content.decode())
    option = re.search(r'<option value="unassignable:(\d+)"[^>]*>([^<]+)</option>', page)
    assert option and int(option[1]) == empty.pk and " disabled" in option[0]
    assert option[2] == "Bornes d'accueil — aucun paramètre ChromeOS"
    note = page[page.index('id="unassignable-blueprints"') :]
    assert "aucun paramètre ChromeOS — " in note
    assert f'href="{reverse("mdm:blueprint_edit", args=[empty.pk])}">modifier</a>' in note


def test_a_forged_post_of_an_unassignable_blueprint_is_refused(admin_client_, ous, tenant):
    empty = BlueprintFactory(tenant=tenant, settings={})
    response = admin_client_.post(
        reverse("chromeos:policy_assign"),
        {"org_unit": ous["/Paris"].pk, "subject": f"unassignable:{empty.pk}"},
    )
    assert response.status_code == 400


@pytest.mark.django_db
def test_the_demo_seed_gives_blueprints_and_apps_that_can_be_assigned():
    call_command("demo_seed", stdout=None)
    tenant = Tenant.objects.get(slug="demo")
    with tenant_context(tenant):
        blueprints = list(Blueprint.objects.all())
        assert blueprints
        for blueprint in blueprints:
            assert blueprint_writes(blueprint.settings), f"{blueprint.name} has no ChromeOS setting"
        from chromeos.policy_schemas import app_target_id

        assert any(app_target_id(app) for app in App.objects.all())


@pytest.mark.django_db
def test_the_demo_seed_repairs_blueprints_seeded_before(tenant):
    call_command("demo_seed")
    demo = Tenant.objects.get(slug="demo")
    Blueprint.unscoped.filter(tenant=demo).update(settings={})
    call_command("demo_seed")
    assert all(blueprint_writes(b.settings) for b in Blueprint.unscoped.filter(tenant=demo))
