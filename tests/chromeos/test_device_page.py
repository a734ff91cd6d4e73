"""A device's page people read: sections in words and human units, Google's raw data behind a disclosure."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import ChromeOSDeviceFactory

pytestmark = pytest.mark.django_db

# A device as the Directory API's FULL projection sends it (the shapes of Google's reference and the emulator).
PAYLOAD = {
    "kind": "admin#directory#chromeosdevice",
    "deviceId": "5e2db5d7-4d6f-436d-a6eb-ecc28eaf829f",
    "serialNumber": "5CD1234567",
    "status": "ACTIVE",
    "model": "HP Chromebook 14 G7",
    "lastSync": "2026-11-12T18:03:00.000Z",
    "supportEndDate": "2029-06-01",
    "macAddress": "a1b2c3d4e5f6",
    "ethernetMacAddress": "00e04c680a01",
    "bootMode": "Verified",
    "osVersion": "126.0.6478.222",
    "osVersionCompliance": "compliant",
    "chromeOsType": "chromeOs",
    "deviceLicenseType": "education",
    "autoUpdateExpiration": "1874966400000",
    "autoUpdateThrough": "2029-06-01",
    "manufactureDate": "2023-02-17",
    "firstEnrollmentTime": "2023-03-01T08:15:00.000Z",
    "lastEnrollmentTime": "2024-09-02T07:30:00.000Z",
    "recentUsers": [{"type": "USER_TYPE_MANAGED", "email": "zoe@acme.test"}, {"type": "USER_TYPE_UNMANAGED"}],
    "activeTimeRanges": [
        {"date": "2026-11-12", "activeTime": 11_520_000},
        {"date": "2026-11-11", "activeTime": 1_800_000},
    ],
    "systemRamTotal": "17179869184",
    "systemRamFreeReports": [{"reportTime": "2026-11-12T18:03:00Z", "systemRamFreeInfo": ["4294967296"]}],
    "diskSpaceUsage": {"capacityBytes": "128000000000", "usedBytes": "96000000000"},
    "cpuInfo": [
        {"model": "Intel(R) Core(TM) i5-10210U", "architecture": "x64", "maxClockSpeedKhz": 2_800_000}
    ],
    "tpmVersionInfo": {"family": "322e3000", "specLevel": "116"},
    "lastKnownNetwork": [{"ipAddress": "10.1.2.3", "wanIpAddress": "203.0.113.7"}],
}


@pytest.fixture
def device(tenant):
    return ChromeOSDeviceFactory(tenant=tenant, payload=PAYLOAD, serial_number="5CD1234567")


def _readable_part(body: str) -> str:
    """The page above « Données brutes Google »: what people read."""
    return body[: body.index('id="raw-payload"')]


def test_the_device_page_speaks_in_words_and_human_units(admin_client_, device):
    body = admin_client_.get(reverse("chromeos:device_detail", args=[device.pk])).content.decode()
    readable = _readable_part(body)
    for heading in (
        "Identité",
        "Matériel",
        "Système et mises à jour",
        "Réseau",
        "Utilisateurs et activité",
        "Inscription",
    ):
        assert f">{heading}</h2>" in readable
    assert "12 Gio utilisés sur 16 Gio" in readable  # RAM in GiB
    assert "96 Go utilisés sur 128 Go" in readable and '<progress value="75" max="100"' in readable
    assert "2,8 GHz" in readable  # French decimal comma
    assert "01/06/2029" in readable  # AUE (epoch milliseconds) as dd/mm/yyyy
    assert "a1:b2:c3:d4:e5:f6" in readable and "00:e0:4c:68:0a:01" in readable
    assert "10.1.2.3" in readable and "203.0.113.7" in readable
    assert "Conforme" in readable and "Vérifié" in readable and "Chrome Education" in readable
    assert "zoe@acme.test (Géré)" in readable and "Non géré" in readable
    assert "3 h 12 min" in readable and "3 h 42 min sur 2 jours" in readable
    assert "TPM 2.0" in readable
    assert "12/11/2026 19:03" in readable  # lastSync in the tenant's zone (Paris)
    for raw in (
        "17179869184",
        "1874966400000",
        "a1b2c3d4e5f6",
        "compliant",
        "Verified",
        "chromeOs",
        "USER_TYPE",
    ):
        assert raw not in readable, raw


def test_the_raw_google_data_stays_behind_a_disclosure(admin_client_, device):
    body = admin_client_.get(reverse("chromeos:device_detail", args=[device.pk])).content.decode()
    raw = body[body.index('id="raw-payload"') :]
    assert body.count("<details") >= 1 and "<summary>Données brutes Google</summary>" in raw
    assert "17179869184" in raw and "a1b2c3d4e5f6" in raw


def test_the_device_page_in_english(admin_client_, device):
    admin_client_.cookies["django_language"] = "en"
    body = admin_client_.get(reverse("chromeos:device_detail", args=[device.pk])).content.decode()
    readable = _readable_part(body)
    assert "12 GiB used of 16 GiB" in readable and "2.8 GHz" in readable
    assert "Compliant" in readable and "Managed" in readable and "Raw Google data" in body


def test_a_payload_with_odd_values_still_renders(admin_client_, tenant):
    odd = ChromeOSDeviceFactory(
        tenant=tenant,
        payload={
            "systemRamTotal": "n/a",
            "diskSpaceUsage": {"capacityBytes": None},
            "autoUpdateExpiration": "bientôt",
            "cpuInfo": ["x"],
            "recentUsers": [None, {"type": "NEW_KIND"}],
            "activeTimeRanges": [{"date": "2026-13-40", "activeTime": "x"}],
            "tpmVersionInfo": {"family": "zz"},
            "bootMode": "SomethingNew",
        },
    )
    response = admin_client_.get(reverse("chromeos:device_detail", args=[odd.pk]))
    assert response.status_code == 200
    assert "SomethingNew" in _readable_part(response.content.decode())
