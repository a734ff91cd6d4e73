"""Bulk previews (issue 17, What to build 6): before confirming a move, a status change or an annotation edit,
each device shows its current → new value, and the whole selection is summed up in grouped sentences
(« 12 périphériques de /Écoles/A vers /Écoles/B, 3 déjà dans cette unité »)."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.urls import reverse

from chromeos.models import DeviceActionJob
from tests.factories import ChromeOSDeviceFactory, OrgUnitFactory
from tests.ldap.factories import LdapOrgUnitFactory

PREPARE = reverse("chromeos:device_action_prepare")
A, B = "/Écoles/A", "/Écoles/B"


def text(response: Any) -> str:
    return html.unescape(response.content.decode()).replace("\u00a0", " ")


def prepare(client: Any, action: str, devices: list[Any]) -> tuple[str, DeviceActionJob]:
    response = client.post(PREPARE, {"action": action, "scope": "selection", "ids": [d.pk for d in devices]})
    assert response.status_code == 302, response.content[:300]
    return response["Location"], DeviceActionJob.unscoped.latest("id")


def rows(page: str) -> list[tuple[str, str, str]]:
    return re.findall(
        r'<tr class="change-row[^"]*"><td>([^<]*)</td><td><code>[^<]*</code></td><td>([^<]*)</td><td>([^<]*)</td>',
        page,
    )


@pytest.fixture
def schools(tenant: Any) -> None:
    for path in ("/Écoles", A, B):
        OrgUnitFactory(
            tenant=tenant,
            path=path,
            name=path.rsplit("/", 1)[1],
            ldap_org_unit=LdapOrgUnitFactory(tenant=tenant, path=path),
        )


def test_a_bulk_move_previews_each_device_current_to_new_and_a_grouped_summary(
    admin_client_, tenant, schools
):
    devices = [ChromeOSDeviceFactory(tenant=tenant, org_unit_path=A) for _ in range(12)]
    devices += [ChromeOSDeviceFactory(tenant=tenant, org_unit_path=B) for _ in range(3)]
    url, job = prepare(admin_client_, "move", devices)
    page = text(admin_client_.get(url))
    assert 'id="preview-button"' in page and "change-row" not in page  # destination not chosen yet

    response = admin_client_.post(url, {"org_unit_path": B, "preview": "1"})
    assert response.status_code == 200
    page = text(response)
    summary = re.search(r'<ul id="change-summary">(.*?)</ul>', page, re.S)[1]
    assert re.findall(r"<li>([^<]+)</li>", summary) == [
        "12 périphériques de /Écoles/A vers /Écoles/B",
        "3 déjà dans cette unité",
    ]
    listed = {serial: (current, new) for serial, current, new in rows(page)}
    assert listed[devices[0].serial_number] == (A, "→ " + B)
    assert listed[devices[-1].serial_number] == (B, "inchangé")
    # The destination stays chosen, and nothing was confirmed.
    assert re.search(rf'<option value="{B}" selected>', page)
    job.refresh_from_db()
    assert job.status == "draft"


def test_a_bulk_status_change_and_an_annotation_edit_preview_current_to_new(admin_client_, tenant):
    active = [ChromeOSDeviceFactory(tenant=tenant, status="ACTIVE") for _ in range(2)]
    disabled = ChromeOSDeviceFactory(tenant=tenant, status="DISABLED")
    url, _job = prepare(admin_client_, "disable", [*active, disabled])
    page = text(admin_client_.get(url))
    summary = re.findall(r"<li>([^<]+)</li>", re.search(r'<ul id="change-summary">(.*?)</ul>', page, re.S)[1])
    assert summary == ["2 périphériques de « Actif » à « Désactivé »", "1 déjà dans cet état"]
    assert (active[0].serial_number, "Actif", "→ Désactivé") in rows(page)

    same = ChromeOSDeviceFactory(tenant=tenant, annotated_location="Salle 12")
    other = ChromeOSDeviceFactory(tenant=tenant, annotated_location="CDI")
    url, _job = prepare(admin_client_, "annotate", [same, other])
    response = admin_client_.post(
        url, {"annotate_fields": ["annotated_location"], "annotated_location": "Salle 12", "preview": "1"}
    )
    page = text(response)
    summary = re.findall(r"<li>([^<]+)</li>", re.search(r'<ul id="change-summary">(.*?)</ul>', page, re.S)[1])
    assert summary == ["1 périphérique modifié", "1 déjà à ces valeurs"]
    assert (other.serial_number, "Emplacement : CDI", "→ Emplacement : Salle 12") in rows(page)


def test_a_preview_with_a_forged_destination_shows_no_change_and_confirming_still_validates(
    admin_client_, tenant, schools
):
    device = ChromeOSDeviceFactory(tenant=tenant, org_unit_path=A)
    url, job = prepare(admin_client_, "move", [device])
    page = text(admin_client_.post(url, {"org_unit_path": "/Nowhere", "preview": "1"}))
    assert "change-row" not in page
    assert admin_client_.post(url, {"org_unit_path": "/Nowhere"}).status_code == 400
    job.refresh_from_db()
    assert job.status == "draft"
