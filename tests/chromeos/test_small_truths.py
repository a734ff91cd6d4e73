"""Small truths of issue 15: Google's dates in UTC whatever the server's zone, only the scopes used are asked,
"Prochaine synchronisation : suspendue" and the suspended state shown in the shell on every page."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from django.urls import reverse

from chromeos.google.client import SCOPES
from chromeos.models import ChromeOSDevice, GoogleIntegration, IntegrationStatus
from chromeos.selectors.integration import SCOPE_LABELS
from google_emulator.testing import CONSOLE_SCOPES
from tests.chromeos.test_sync_service import run_sync


@pytest.mark.django_db(transaction=True)
@pytest.mark.google_emulator(devices=30)
@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Pacific/Kiritimati"])
def test_aue_is_googles_utc_day_on_a_server_in_any_time_zone(
    google_integration: GoogleIntegration, google_emulator: Any, settings: Any, zone: str
) -> None:
    settings.TIME_ZONE = zone  # the process zone too (Django sets TZ): a server in America or in the Pacific
    run = run_sync(google_integration)
    assert run.status == "succeeded", run.log
    expected = {
        d["deviceId"]: datetime.fromtimestamp(int(d["autoUpdateExpiration"]) / 1000, UTC).date()
        for d in google_emulator.control("GET", "/devices")["devices"]
        if d.get("autoUpdateExpiration")
    }
    assert expected
    stored = dict(
        ChromeOSDevice.unscoped.filter(device_id__in=expected).values_list(
            "device_id", "auto_update_expiration"
        )
    )
    assert stored == expected
    # The emulator's AUE dates are the 1st of June: never shown as the 31st of May.
    assert all(isinstance(v, date) and (v.month, v.day) == (6, 1) for v in stored.values())


def test_the_console_asks_only_the_scopes_it_uses_and_the_emulator_agrees() -> None:
    names = [s.removeprefix("https://www.googleapis.com/auth/") for s in SCOPES]
    assert "admin.directory.user.readonly" not in names
    assert sorted(SCOPES) == sorted(CONSOLE_SCOPES)
    assert all(name in SCOPE_LABELS for name in names)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "label"),
    [
        (IntegrationStatus.REAUTH_REQUIRED, "Réautorisation requise"),
        (IntegrationStatus.REMOVAL_FAILED, "Échec de la suppression"),
    ],
)
def test_a_suspended_sync_is_said_on_every_page_and_next_sync_says_suspended(
    admin_client_: Any, google_integration: GoogleIntegration, status: str, label: str
) -> None:
    GoogleIntegration.unscoped.filter(pk=google_integration.pk).update(
        status=status,
        first_sync_at=datetime(2026, 1, 1, tzinfo=UTC),
        next_sync_at=datetime(2026, 1, 1, 1, tzinfo=UTC),
    )
    for name in ("home", "chromeos:device_list", "mdm:audit"):
        page = admin_client_.get(reverse(name)).content.decode()
        assert 'id="integration-alert"' in page and label in page, name
        assert "synchronisation horaire est suspendue" in page
    manage = admin_client_.get(reverse("chromeos:manage")).content.decode()
    next_sync = manage.split('id="next-sync">', 1)[1].split("</p>", 1)[0]
    assert next_sync.startswith("Suspendue") and label in next_sync


@pytest.mark.django_db
def test_an_active_integration_shows_no_alert_and_its_next_sync_time(
    admin_client_: Any, google_integration: GoogleIntegration
) -> None:
    GoogleIntegration.unscoped.filter(pk=google_integration.pk).update(
        first_sync_at=datetime(2026, 1, 1, tzinfo=UTC), next_sync_at=datetime(2026, 1, 1, 1, tzinfo=UTC)
    )
    assert 'id="integration-alert"' not in admin_client_.get(reverse("home")).content.decode()
    manage = admin_client_.get(reverse("chromeos:manage")).content.decode()
    assert "Suspendue" not in manage.split('id="next-sync">', 1)[1].split("</p>", 1)[0]


@pytest.mark.django_db(transaction=True)
@pytest.mark.google_emulator(devices=30)
def test_googles_retries_during_the_listing_reach_the_run_log(
    google_integration: GoogleIntegration, google_emulator: Any
) -> None:
    google_emulator.add_fault(method="directory.chromeosdevices.list", status=503, count=2)
    run = run_sync(google_integration)
    assert run.status == "succeeded", run.log
    retries = [line for line in run.log if "nouvelle tentative" in str(line.get("msg", ""))]
    assert len(retries) == 2 and all(line["level"] == "warning" for line in retries)
