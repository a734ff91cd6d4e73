"""The fleet table: accent- and case-insensitive search and OU filter, never-synced devices last in both
directions (and on pages read from the other end), active filters as removable chips."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import ChromeOSDeviceFactory, OrgUnitFactory

pytestmark = pytest.mark.django_db

LIST = reverse("chromeos:device_list")


def _serials(response) -> list[str]:
    return [d.serial_number for d in response.context["rows"]]


def test_search_ignores_accents_and_case(admin_client_, tenant):
    ChromeOSDeviceFactory(tenant=tenant, serial_number="5CDZOE", annotated_user="Zoé Lefèvre")
    ChromeOSDeviceFactory(tenant=tenant, serial_number="5CDOTHER", annotated_user="Marc Dupont")
    for typed in ("zoe lefevre", "ZOÉ", "Lefevre", "lefèvre"):
        assert _serials(admin_client_.get(LIST, {"q": typed})) == ["5CDZOE"], typed


def test_the_ou_filter_ignores_accents_and_case(admin_client_, tenant):
    OrgUnitFactory(tenant=tenant, name="Écoles", path="/Écoles")
    OrgUnitFactory(tenant=tenant, name="Ventes et Marketing", path="/Paris/Ventes et Marketing")
    ChromeOSDeviceFactory(tenant=tenant, serial_number="5CDECOLE", org_unit_path="/Écoles/CM1")
    ChromeOSDeviceFactory(tenant=tenant, serial_number="5CDVENTE", org_unit_path="/Paris/Ventes et Marketing")
    ChromeOSDeviceFactory(tenant=tenant, serial_number="5CDROOT", org_unit_path="/")
    assert _serials(admin_client_.get(LIST, {"org_unit": "/ecoles"})) == ["5CDECOLE"]
    assert _serials(admin_client_.get(LIST, {"org_unit": "paris/ventes ET marketing"})) == ["5CDVENTE"]
    assert _serials(admin_client_.get(LIST, {"org_unit": "/Écoles", "include_children": "0"})) == []


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_never_synced_devices_come_last_whatever_the_direction(admin_client_, tenant, direction):
    now = timezone.now()
    ChromeOSDeviceFactory(tenant=tenant, serial_number="NEVER", last_sync=None)
    ChromeOSDeviceFactory(tenant=tenant, serial_number="OLD", last_sync=now - timedelta(days=9))
    ChromeOSDeviceFactory(tenant=tenant, serial_number="NEW", last_sync=now)
    serials = _serials(admin_client_.get(LIST, {"sort": "last_sync", "dir": direction}))
    assert serials[-1] == "NEVER"
    assert serials[:2] == (["OLD", "NEW"] if direction == "asc" else ["NEW", "OLD"])


def test_pages_read_from_the_other_end_keep_the_same_order(admin_client_, tenant):
    now = timezone.now()
    for n in range(60):
        ChromeOSDeviceFactory(
            tenant=tenant,
            serial_number=f"S{n:03d}",
            last_sync=None if n % 4 == 0 else now - timedelta(hours=n % 7),
        )
    session = admin_client_.session
    session["chromeos.device_per_page"] = 25
    session.save()
    query = {"sort": "last_sync", "dir": "desc"}
    seen = []
    for page in (1, 2, 3):  # page 3 is past the middle: read through the mirrored order
        seen += _serials(admin_client_.get(LIST, {**query, "page": page}))
    assert len(seen) == 60 and len(set(seen)) == 60
    never = {f"S{n:03d}" for n in range(0, 60, 4)}
    assert set(seen[-len(never) :]) == never


def test_active_filters_are_chips_that_remove_themselves(admin_client_, tenant):
    ChromeOSDeviceFactory(tenant=tenant, status="DISABLED")
    response = admin_client_.get(LIST, {"status": "DISABLED", "q": "5cd"})
    body = response.content.decode()
    assert 'data-filter="status">Statut : <strong>Désactivé</strong>' in body
    chip = next(c for c in response.context["chips"] if c["name"] == "status")
    assert chip["url"] == LIST + "?q=5cd"
    assert "Ajouter un filtre" in body
