"""Accueil as a cockpit: the guide's setup steps until done, then the fleet's health linking into Périphériques."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from chromeos.models import DeviceActionJob
from ldap_sync.models import LdapDirectory
from tests.factories import ChromeOSDeviceFactory, DeviceActionJobFactory, GoogleIntegrationFactory

pytestmark = pytest.mark.django_db

HOME = "/"


def _steps(body: str) -> dict[str, str]:
    """data-step → its state (done / next / todo)."""
    found = re.findall(r'<li class="step ([a-z]*)" data-step="([a-z]+)">', body)
    return {key: state or "todo" for state, key in found}


def test_a_new_tenant_is_walked_through_the_guide_in_order(admin_client_, tenant):
    body = admin_client_.get(HOME).content.decode()
    assert "Mise en route" in body
    assert list(_steps(body)) == ["ldap", "ous", "authorize", "sync"]
    assert _steps(body) == {"ldap": "next", "ous": "todo", "authorize": "todo", "sync": "todo"}
    assert f'href="{reverse("ldap_sync:directory")}" id="next-step"' in body
    assert 'id="fleet-health"' not in body


def test_the_next_step_follows_what_is_done(admin_client_, tenant):
    LdapDirectory.unscoped.create(tenant=tenant, uri="ldap://ldap.acme.test", base_dn="dc=acme,dc=test")
    body = admin_client_.get(HOME).content.decode()
    assert _steps(body)["ldap"] == "done" and _steps(body)["ous"] == "next"
    GoogleIntegrationFactory(tenant=tenant, first_sync_at=None)
    body = admin_client_.get(HOME).content.decode()
    assert _steps(body)["authorize"] == "done" and _steps(body)["sync"] == "todo"


@pytest.fixture
def synced_fleet(tenant):
    now, today = timezone.now(), timezone.localdate()
    integration = GoogleIntegrationFactory(
        tenant=tenant, first_sync_at=now, last_sync_at=now, next_sync_at=now + timedelta(hours=1)
    )
    make = ChromeOSDeviceFactory
    make(tenant=tenant, last_sync=now - timedelta(days=40), auto_update_expiration=today - timedelta(days=3))
    make(tenant=tenant, last_sync=now, auto_update_expiration=today + timedelta(days=90))
    make(tenant=tenant, last_sync=now, auto_update_expiration=today + timedelta(days=900))
    make(tenant=tenant, status="DISABLED", last_sync=now)
    make(tenant=tenant, last_sync=None)  # never synced: counts as "not synced for 30 days"
    job = DeviceActionJobFactory(tenant=tenant, status="failed", action="cmd_reboot")
    DeviceActionJob.unscoped.filter(pk=job.pk).update(created_at=now)
    return integration


def test_fleet_health_counts_link_into_the_filtered_device_list(admin_client_, synced_fleet):
    body = admin_client_.get(HOME).content.decode()
    health = body[body.index('id="fleet-health"') :]
    assert "6 périphériques" in health  # the job's own device included
    assert re.search(r'data-status="ACTIVE">Actif</a> <span class="count">5</span>', health)
    assert re.search(r'data-status="DISABLED">Désactivé</a> <span class="count">1</span>', health)
    figures = {
        "health-stale": 3,  # 40 days, never, and the job's own device (never)
        "health-aue-passed": 1,
        "health-aue-soon": 1,
    }
    for anchor, expected in figures.items():
        match = re.search(rf'<a href="([^"]+)" id="{anchor}"><strong>(\d+)</strong>', health)
        assert match, anchor
        url, shown = match[1].replace("&amp;", "&"), int(match[2])
        assert shown == expected, anchor
        # The link shows exactly the devices the figure counts.
        assert admin_client_.get(url).context["total"] == expected, anchor
    assert "Redémarrer" in health and "Échec" in health  # the failing job
    assert "Prochaine synchro" in health


def test_when_setup_is_done_the_checklist_gives_way(admin_client_, tenant, synced_fleet, monkeypatch):
    from chromeos.selectors import home

    monkeypatch.setattr(home, "setup_steps", lambda tenant, integration: [{"key": "x", "done": True}])
    body = admin_client_.get(HOME).content.decode()
    assert 'id="setup-checklist"' not in body and 'id="fleet-health"' in body


def test_home_in_english(admin_client_, synced_fleet):
    admin_client_.cookies["django_language"] = "en"
    body = admin_client_.get(HOME).content.decode()
    assert "Getting started" in body and "Fleet health" in body and "6 devices" in body
