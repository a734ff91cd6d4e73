"""Per-tenant time zone (issue 17, What to build 5 and 7): each tenant's pages, exports and support views show
times in the tenant's zone (``Tenant.time_zone``), chosen by its admins in « Paramètres »."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from mdm.models import AuditEvent, Role, Tenant
from tests.factories import AuditEventFactory, ChromeOSDeviceFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db

# 17:05 UTC on 15 January: 12:05 in New York, 18:05 in Paris.
MOMENT = datetime(2026, 1, 15, 17, 5, tzinfo=UTC)


def _signed_in(client, tenant: Tenant, role: str = Role.ADMIN):
    user = UserFactory(tenant=tenant, role=role)
    client.force_login(user)
    return client


@pytest.fixture
def new_york(db) -> Tenant:
    return TenantFactory(slug="nyc-school", name="NYC School", time_zone="America/New_York")


@pytest.fixture
def paris(db) -> Tenant:
    return TenantFactory(slug="ecole-paris", name="École de Paris")


def test_a_new_tenant_takes_the_console_zone(paris, settings):
    assert paris.time_zone == settings.TIME_ZONE == "Europe/Paris"


@pytest.mark.parametrize(
    ("which", "shown", "not_shown"), [("new_york", "12:05", "18:05"), ("paris", "18:05", "12:05")]
)
def test_the_device_page_and_the_audit_log_show_each_tenants_own_zone(
    client, new_york, paris, which, shown, not_shown
):
    tenant = {"new_york": new_york, "paris": paris}[which]
    device = ChromeOSDeviceFactory(tenant=tenant, last_sync=MOMENT)
    event = AuditEventFactory(tenant=tenant, action="blueprint.create", target="Bornes")
    AuditEvent.unscoped.filter(pk=event.pk).update(created_at=MOMENT)
    _signed_in(client, tenant)

    page = client.get(reverse("chromeos:device_detail", args=[device.pk])).content.decode()
    assert f"15/01/2026 {shown}" in page
    assert f"15/01/2026 {not_shown}" not in page

    journal = client.get(reverse("mdm:audit")).content.decode()
    assert f"15/01/2026 {shown}" in journal
    assert f"15/01/2026 {not_shown}" not in journal


def test_csv_exports_use_the_tenants_zone(client, new_york):
    ChromeOSDeviceFactory(tenant=new_york, last_sync=MOMENT)
    AuditEventFactory(tenant=new_york, action="blueprint.create", target="Bornes")
    AuditEvent.unscoped.filter(tenant=new_york).update(created_at=MOMENT)
    _signed_in(client, new_york)
    devices = b"".join(client.get(reverse("chromeos:device_export")).streaming_content).decode("utf-8-sig")
    assert "12:05" in devices and "18:05" not in devices
    audit = b"".join(client.get(reverse("mdm:audit_export")).streaming_content).decode("utf-8-sig")
    assert "12:05" in audit and "18:05" not in audit


def test_an_admin_chooses_the_zone_in_parametres_and_it_is_audited(client, paris):
    _signed_in(client, paris)
    page = client.get(reverse("mdm:settings"))
    assert page.status_code == 200 and "Fuseau horaire" in page.content.decode()
    response = client.post(reverse("mdm:settings"), {"time_zone": "America/New_York"})
    assert response.status_code == 302
    paris.refresh_from_db()
    assert paris.time_zone == "America/New_York"
    event = AuditEvent.unscoped.get(tenant=paris, action="tenant.settings.update")
    assert event.details == {"time_zone": "America/New_York", "previous_time_zone": "Europe/Paris"}


@pytest.mark.parametrize("typed", ["Mars/Olympus_Mons", "", "../../etc/passwd", "x" * 300])
def test_an_unknown_zone_is_a_clear_error_not_a_500(client, paris, typed):
    _signed_in(client, paris)
    response = client.post(reverse("mdm:settings"), {"time_zone": typed})
    assert response.status_code == 400
    assert 'class="field-error"' in response.content.decode()
    paris.refresh_from_db()
    assert paris.time_zone == "Europe/Paris"


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.READ_ONLY])
def test_only_admins_change_the_zone(client, paris, role):
    _signed_in(client, paris, role)
    page = client.get(reverse("mdm:settings")).content.decode()
    assert "Réservé aux administrateurs" in page
    assert client.post(reverse("mdm:settings"), {"time_zone": "America/New_York"}).status_code == 403
    paris.refresh_from_db()
    assert paris.time_zone == "Europe/Paris"


def test_support_reads_a_tenants_times_in_its_zone_and_is_told_which(client, new_york, support_user):
    from chromeos.models import SyncRun
    from tests.factories import GoogleIntegrationFactory

    integration = GoogleIntegrationFactory(tenant=new_york)
    run = SyncRun.unscoped.create(
        tenant=new_york, integration=integration, trigger="manual", status="succeeded"
    )
    SyncRun.unscoped.filter(pk=run.pk).update(
        created_at=MOMENT, log=[{"at": MOMENT.isoformat(), "level": "info", "msg": "Début", "params": {}}]
    )
    client.force_login(support_user)
    tenant_page = client.get(reverse("admin:mdm_tenant_change", args=[new_york.pk])).content.decode()
    assert "America/New_York" in tenant_page and 'id="support-time-zone"' in tenant_page
    assert "15/01/2026 12:05" in tenant_page
    run_page = client.get(reverse("admin:chromeos_syncrun_change", args=[run.pk])).content.decode()
    assert 'id="support-time-zone"' in run_page
    assert "12:05:00 info" in run_page
