"""The support cockpit in /support/: a tenant's page says how its integration, syncs, jobs, assignments and
directory are doing; devices, jobs, commands and runs have read-only admins; French under the console's name."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from chromeos.models import DeviceCommand, SyncRun
from ldap_sync.models import LdapDirectory
from tests.factories import ChromeOSDeviceFactory, DeviceActionJobFactory, GoogleIntegrationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def support(support_user, client_for):
    return client_for(support_user)


@pytest.fixture
def busy_tenant(tenant, other_tenant):
    integration = GoogleIntegrationFactory(tenant=tenant, domain="acme.example", status="reauth_required")
    for _ in range(3):
        ChromeOSDeviceFactory(tenant=tenant)
    ChromeOSDeviceFactory(tenant=other_tenant)
    SyncRun.unscoped.create(
        tenant=tenant, integration=integration, trigger="scheduled", status="failed", error="invalid_grant"
    )
    DeviceActionJobFactory(tenant=tenant, status="failed", action="disable", error="Google a refusé")
    LdapDirectory.unscoped.create(tenant=tenant, uri="ldap://ldap.acme.test", base_dn="dc=acme,dc=test")
    return tenant


def test_the_tenant_page_is_a_cockpit(support, busy_tenant):
    body = support.get(reverse("admin:mdm_tenant_change", args=[busy_tenant.pk])).content.decode()
    cockpit = body[body.index('id="support-cockpit"') :]
    assert "acme.example" in cockpit and "Réautorisation requise" in cockpit
    assert 'id="support-devices">4</a>' in cockpit  # this tenant's 3 and the job's, not the other tenant's
    assert "invalid_grant" in cockpit and "Échec" in cockpit
    assert "1 action en échec" in cockpit and "Google a refusé" in cockpit
    assert "ldap://ldap.acme.test" in cockpit
    assert f"tenant__id__exact={busy_tenant.pk}" in cockpit


def test_support_is_branded_and_french(support, busy_tenant):
    body = support.get(reverse("admin:index")).content.decode()
    assert "Administration de Django" not in body and "Site d’administration de Django" not in body
    assert "Console MDM · support" in body
    for label in (
        "Périphériques ChromeOS",
        "Actions sur des périphériques",
        "Commandes à distance",
        "Synchronisations",
    ):
        assert label in body, label


@pytest.mark.parametrize(
    "model", ["chromeosdevice", "deviceactionjob", "devicecommand", "syncrun", "orgunit", "policyassignment"]
)
def test_read_only_admins_for_every_tenant(support, busy_tenant, model):
    changelist = support.get(reverse(f"admin:chromeos_{model}_changelist"))
    assert changelist.status_code == 200
    assert reverse(f"admin:chromeos_{model}_add") not in changelist.content.decode()


def test_a_device_reads_but_cannot_be_changed_or_deleted(support, busy_tenant):
    device = ChromeOSDeviceFactory(tenant=busy_tenant, serial_number="5CDSUPPORT")
    change = reverse("admin:chromeos_chromeosdevice_change", args=[device.pk])
    page = support.get(change)
    assert page.status_code == 200 and "5CDSUPPORT" in page.content.decode()
    support.post(change, {"serial_number": "forged"})
    device.refresh_from_db()
    assert device.serial_number == "5CDSUPPORT"
    assert support.get(reverse("admin:chromeos_chromeosdevice_delete", args=[device.pk])).status_code == 403
    command = DeviceCommand.unscoped.create(tenant=busy_tenant, device=device, command_type="REBOOT")
    assert support.get(reverse("admin:chromeos_devicecommand_change", args=[command.pk])).status_code == 200


def test_tenants_cannot_be_deleted_from_support(support, busy_tenant):
    assert support.get(reverse("admin:mdm_tenant_delete", args=[busy_tenant.pk])).status_code == 403


def test_sync_log_times_are_in_the_consoles_zone(busy_tenant):
    from django.contrib import admin

    from chromeos.admin import SyncRunAdmin

    run = SyncRun.unscoped.filter(tenant=busy_tenant).first()
    run.log = [{"at": datetime(2026, 1, 15, 9, 30, tzinfo=UTC).isoformat(), "level": "info", "msg": "début"}]
    run.save()
    text = SyncRunAdmin(SyncRun, admin.site).log_lines(run)
    assert text.startswith("10:30:00")  # Paris in winter, not 09:30 UTC
