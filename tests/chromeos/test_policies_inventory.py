"""The per-device inventory: which assignments reach a device through its OU, their state, after real syncs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.template.loader import render_to_string
from django.utils import timezone

from chromeos.models import (
    AssignmentState,
    ChromeOSDevice,
    OrgUnit,
    PolicyAssignment,
    SyncStatus,
    SyncTrigger,
)
from chromeos.selectors import policies as selectors
from chromeos.services import policies as services
from chromeos.services.sync import devices_sync, sync_request
from mdm.tenancy import tenant_context
from tests.chromeos.policies_helpers import LOCAL_OUS
from tests.factories import BlueprintFactory, ChromeOSDeviceFactory
from tests.ldap.factories import LdapOrgUnitFactory


def run_sync(integration: Any) -> None:
    run, created = sync_request(integration=integration, trigger=SyncTrigger.MANUAL, enqueue=False)
    assert created
    assert devices_sync(run).status == SyncStatus.SUCCEEDED


def google_time_after_now() -> str:
    """A ``lastSync`` as Google writes it (whole seconds), strictly after anything the test did so far."""
    return (timezone.now() + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.mark.django_db(transaction=True)
@pytest.mark.google_emulator(devices=30)
def test_inventory_after_a_sync_moved_a_device_to_another_ou(google_integration, google_emulator, admin_user):
    tenant = google_integration.tenant
    for unit in google_emulator.state.org_units:
        if unit.path != "/" and unit.path not in LOCAL_OUS:
            LdapOrgUnitFactory(tenant=tenant, path=unit.path, name=unit.name)
    # A device in /Paris whatever the seed drew.
    google_emulator.control("POST", "/devices/move", {"org_unit_path": "/Paris", "count": 1, "seed": 1})
    run_sync(google_integration)
    ous = {ou.path: ou for ou in OrgUnit.unscoped.filter(integration=google_integration)}
    assert ous["/Paris"].ldap_org_unit_id is not None and ous["/Lille"].ldap_org_unit_id is None

    paris = BlueprintFactory(tenant=tenant, name="Paris", settings={"guest_mode": False})
    lyon = BlueprintFactory(tenant=tenant, name="Lyon", settings={"screen_lock": False})
    moved = next(
        d for d in google_emulator.control("GET", "/devices")["devices"] if d["orgUnitPath"] == "/Paris"
    )
    with tenant_context(tenant):
        for blueprint, path in ((paris, "/Paris"), (lyon, "/Lyon")):
            assignment = services.policy_assignment_create(
                integration=google_integration, org_unit=ous[path], blueprint=blueprint, actor=admin_user
            )
            # No atomic block around the test: the apply task runs (inline) when the request commits.
            services.policy_assignment_apply_request(assignment=assignment, actor=admin_user)
        assert set(PolicyAssignment.objects.values_list("state", flat=True)) == {AssignmentState.APPLIED}

        device = ChromeOSDevice.objects.get(device_id=moved["deviceId"])
        [entry] = selectors.device_policy_inventory(device)
        assert (entry.assignment.blueprint, entry.via, entry.inherited) == (paris, "/Paris", False)
        # Google confirmed, but the device has not fetched its policies since.
        assert entry.state == "pending" and "prochaine synchronisation du périphérique" in entry.detail

    # At Google: an admin moves the device to /Lyon, and the device syncs its policies there.
    google_emulator.control(
        "POST", "/devices/move", {"org_unit_path": "/Lyon", "device_ids": [moved["deviceId"]]}
    )
    google_emulator.control(
        "POST",
        "/devices/update",
        {"device_id": moved["deviceId"], "changes": {"lastSync": google_time_after_now()}},
    )
    run_sync(google_integration)

    with tenant_context(tenant):
        device = ChromeOSDevice.objects.get(device_id=moved["deviceId"])
        assert device.org_unit_path == "/Lyon"
        [entry] = selectors.device_policy_inventory(device)
        assert (entry.assignment.blueprint, entry.via, entry.state) == (lyon, "/Lyon", "applied")
        # The reports follow too: the device left Paris' report and joined Lyon's.
        paris_devices = selectors.subject_devices(selectors.subject_assignments(blueprint=paris))
        lyon_devices = selectors.subject_devices(selectors.subject_assignments(blueprint=lyon))
        assert device not in paris_devices and device in lyon_devices
        page = render_to_string("chromeos/_device_policies.html", {"device": device})
        assert "Lyon" in page and "Appliquée" in page and "Paris" not in page


@pytest.mark.django_db
def test_nearest_ou_wins_and_states_per_device(google_integration, google_emulator, admin_user, in_tenant):
    from tests.chromeos.policies_helpers import mirror_org_units

    ous = mirror_org_units(google_integration, google_emulator)
    tenant = google_integration.tenant
    wide = BlueprintFactory(tenant=tenant, name="Large", settings={"guest_mode": True})
    narrow = BlueprintFactory(tenant=tenant, name="Étroite", settings={"guest_mode": False})
    both = BlueprintFactory(tenant=tenant, name="Mixte", settings={"guest_mode": False, "screen_lock": True})
    applied_at = timezone.now() - timedelta(hours=1)
    common = {"integration": google_integration, "assigned_by": admin_user}
    on_paris = PolicyAssignment.objects.create(
        org_unit=ous["/Paris"], blueprint=wide, state=AssignmentState.APPLIED, applied_at=applied_at, **common
    )
    on_sales = PolicyAssignment.objects.create(
        org_unit=ous["/Paris/Ventes et Marketing"],
        blueprint=narrow,
        state=AssignmentState.FAILED,
        google_error="Invalid value",
        **common,
    )
    device = ChromeOSDeviceFactory(
        tenant=tenant,
        integration=google_integration,
        org_unit_path="/Paris/Ventes et Marketing",
        last_sync=timezone.now(),
    )
    entries = selectors.device_policy_inventory(device)
    assert [(e.assignment, e.state) for e in entries] == [(on_sales, "failed"), (on_paris, "overridden")]
    assert entries[0].detail == "Invalid value" and not entries[0].inherited and entries[1].inherited

    # A Blueprint that also sets something the nearer one does not is not overridden: it still applies.
    on_paris.blueprint = both
    on_paris.save()
    entries = selectors.device_policy_inventory(device)
    assert [(e.assignment, e.state) for e in entries] == [(on_sales, "failed"), (on_paris, "applied")]
    # A device elsewhere sees none of it; a device in /Paris that never synced since the apply waits.
    assert (
        selectors.device_policy_inventory(
            ChromeOSDeviceFactory(tenant=tenant, integration=google_integration, org_unit_path="/Lyon")
        )
        == []
    )
    stale = ChromeOSDeviceFactory(
        tenant=tenant,
        integration=google_integration,
        org_unit_path="/Paris",
        last_sync=applied_at - timedelta(days=1),
    )
    assert [e.state for e in selectors.device_policy_inventory(stale)] == ["pending"]
    assert selectors.assignment_device_counts(on_paris) == {"total": 2, "synced": 1}
