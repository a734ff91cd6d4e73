"""The inventory of a Blueprint or an app as counts per state (issue 17, What to build 6): per device OU and
assignment, applied / pending / failed / overridden; the devices only once filtered; a CSV export in the
interface's language (``mdm/csv_export.py``)."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from chromeos.models import AssignmentState, OrgUnit, PolicyAssignment
from mdm.models import AuditEvent, Blueprint
from tests.chromeos.policies_helpers import mirror_org_units
from tests.factories import BlueprintFactory, ChromeOSDeviceFactory

SUB = "/Paris/Ventes et Marketing"


@pytest.fixture
def ous(google_integration: Any, google_emulator: Any, in_tenant: Any) -> dict[str, OrgUnit]:
    return mirror_org_units(google_integration, google_emulator)


@pytest.fixture
def blueprint(tenant: Any) -> Blueprint:
    return BlueprintFactory(tenant=tenant, name="Salles de classe", settings={"guest_mode": False})


@pytest.fixture
def fleet(ous, blueprint, google_integration, tenant, admin_user) -> dict[str, Any]:
    """/Paris applied an hour ago: 3 devices synced since, 2 not (one never); /Paris/Ventes et Marketing gets
    it from /Paris (4 devices, 1 synced); /Lyon failed (2 devices); a removed device counts nowhere."""
    applied_at = timezone.now() - timedelta(hours=1)
    after, before = applied_at + timedelta(minutes=5), applied_at - timedelta(minutes=5)
    PolicyAssignment.objects.create(
        integration=google_integration,
        org_unit=ous["/Paris"],
        blueprint=blueprint,
        assigned_by=admin_user,
        state=AssignmentState.APPLIED,
        applied_at=applied_at,
        applied_values={"chrome.devices.GuestMode": {"guestModeEnabled": False}},
    )
    PolicyAssignment.objects.create(
        integration=google_integration,
        org_unit=ous["/Lyon"],
        blueprint=blueprint,
        assigned_by=admin_user,
        state=AssignmentState.FAILED,
        google_error="Nope.",
    )
    make = lambda path, last_sync, **kw: ChromeOSDeviceFactory(  # noqa: E731
        tenant=tenant, integration=google_integration, org_unit_path=path, last_sync=last_sync, **kw
    )
    devices = {
        "paris_synced": [make("/Paris", after) for _ in range(3)],
        "paris_waiting": [make("/Paris", before), make("/Paris", None)],
        "sub": [make(SUB, after), make(SUB, before), make(SUB, before), make(SUB, None)],
        "lyon": [make("/Lyon", after), make("/Lyon", None)],
    }
    make("/Paris", after, removed_at=timezone.now())
    make("/Lille", after)  # not reached
    return devices


def text(response: Any) -> str:
    return html.unescape(response.content.decode()).replace("\u00a0", " ")


def counts(page: str) -> dict[tuple[str, str], dict[str, str]]:
    found = {}
    for path, via, body in re.findall(
        r'<tr class="inventory-group" data-path="([^"]+)" data-via="([^"]+)">(.*?)</tr>', page, re.S
    ):
        cells = re.findall(r'data-state="(\w+)">(?:<a [^>]*>)?(\d+)', body)
        found[(path, via)] = {state: n for state, n in cells if n != "0"}
    return found


def test_the_inventory_counts_devices_per_state_instead_of_listing_them(admin_client_, blueprint, fleet):
    url = reverse("chromeos:policy_blueprint_report", kwargs={"pk": blueprint.pk})
    page = text(admin_client_.get(url))
    assert counts(page) == {
        ("/Lyon", "/Lyon"): {"failed": "2"},
        ("/Paris", "/Paris"): {"applied": "3", "pending": "2"},
        (SUB, "/Paris"): {"applied": "1", "pending": "3"},
    }
    assert "hérité de /Paris" in page
    total = re.search(r'<tr class="inventory-total">(.*?)</tr>', page, re.S)[1]
    assert re.findall(r'data-state="(\w+)">(\d+)', total) == [
        ("applied", "4"),
        ("pending", "5"),
        ("failed", "2"),
        ("overridden", "0"),
    ]
    # No device rows until a state or an OU is picked: the page no longer grows with the fleet.
    assert 'class="report-device"' not in page


def test_the_inventory_filter_lists_the_devices_of_one_state_and_ou(admin_client_, blueprint, fleet):
    url = reverse("chromeos:policy_blueprint_report", kwargs={"pk": blueprint.pk})
    response = admin_client_.get(url, {"state": "pending", "ou": "/Paris"})
    page = text(response)
    listed = set(re.findall(r'class="report-device" data-serial="([^"]+)"', page))
    waiting = {d.serial_number for d in fleet["paris_waiting"]} | {d.serial_number for d in fleet["sub"][1:]}
    assert listed == waiting
    assert set(counts(page)) == {("/Paris", "/Paris"), (SUB, "/Paris")}  # /Lyon filtered out
    page = text(admin_client_.get(url, {"state": "failed"}))
    assert set(re.findall(r'data-serial="([^"]+)"', page)) == {d.serial_number for d in fleet["lyon"]}
    # A bad filter filters nothing rather than failing.
    for query in ({"state": "nope"}, {"ou": "x" * 5000}, {"page": "-1", "state": "applied"}):
        assert admin_client_.get(url, query).status_code == 200


def test_the_inventory_export_is_a_french_csv_of_the_filtered_devices(
    admin_client_, blueprint, fleet, tenant
):
    url = reverse("chromeos:policy_blueprint_inventory_export", kwargs={"pk": blueprint.pk})
    response = admin_client_.get(url, {"state": "applied"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    lines = body.strip().splitlines()
    assert lines[0].startswith("Numéro de série;device_id;Unité du périphérique;")
    applied = {d.serial_number for d in fleet["paris_synced"]} | {fleet["sub"][0].serial_number}
    assert {line.split(";")[0] for line in lines[1:]} == applied
    assert all(";Appliquée;" in line for line in lines[1:])
    assert any(f";{SUB};Salles de classe;/Paris;oui;" in line for line in lines[1:])
    assert AuditEvent.unscoped.filter(action="policy.inventory_export", tenant=tenant).exists()
    admin_client_.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    english = b"".join(admin_client_.get(url, {"state": "applied"}).streaming_content).decode("utf-8-sig")
    assert english.splitlines()[0].startswith("Serial number,device_id,")
    assert ",Applied," in english.splitlines()[1]


def test_the_inventory_export_neutralises_formulas(
    admin_client_, blueprint, fleet, tenant, google_integration
):
    ChromeOSDeviceFactory(
        tenant=tenant, integration=google_integration, org_unit_path="/Lyon", serial_number="=HYPERLINK(1)"
    )
    url = reverse("chromeos:policy_blueprint_inventory_export", kwargs={"pk": blueprint.pk})
    body = b"".join(admin_client_.get(url).streaming_content).decode("utf-8-sig")
    assert "'=HYPERLINK(1)" in body


def test_a_nearer_assignment_of_the_same_blueprint_is_counted_as_overriding(
    admin_client_, ous, blueprint, fleet, google_integration, admin_user
):
    PolicyAssignment.objects.create(
        integration=google_integration, org_unit=ous[SUB], blueprint=blueprint, assigned_by=admin_user
    )
    page = text(admin_client_.get(reverse("chromeos:policy_blueprint_report", kwargs={"pk": blueprint.pk})))
    found = counts(page)
    assert found[(SUB, "/Paris")] == {"overridden": "4"}
    assert found[(SUB, SUB)] == {"pending": "4"}
