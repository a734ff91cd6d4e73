"""The sync service against the emulator over HTTP and a real PostgreSQL: counts, idempotence, faults."""

from __future__ import annotations

from typing import Any

import pytest

from chromeos.models import ChromeOSDevice, GoogleIntegration, OrgUnit, SyncRun, SyncStatus, SyncTrigger
from chromeos.selectors.sync import run_log
from chromeos.services.sync import devices_sync, sync_request
from google_emulator.testing import EmulatorHandle


def run_sync(integration: GoogleIntegration, trigger: str = SyncTrigger.MANUAL) -> SyncRun:
    run, created = sync_request(integration=integration, trigger=trigger, enqueue=False)
    assert created
    return devices_sync(run)


def stored(integration: GoogleIntegration) -> dict[str, str]:
    return dict(
        ChromeOSDevice.unscoped.filter(integration=integration, removed_at__isnull=True).values_list(
            "device_id", "etag"
        )
    )


def google_devices(google_emulator: EmulatorHandle) -> dict[str, str]:
    return {d["deviceId"]: d["etag"] for d in google_emulator.control("GET", "/devices")["devices"]}


@pytest.mark.django_db(transaction=True)
@pytest.mark.google_emulator(devices=120)
def test_first_sync_stores_every_device_and_ou(
    google_integration: GoogleIntegration, google_emulator: Any
) -> None:
    run = run_sync(google_integration)
    assert run.status == SyncStatus.SUCCEEDED, run.log
    assert (run.added, run.updated, run.unchanged, run.removed) == (120, 0, 0, 0)
    assert stored(google_integration) == google_devices(google_emulator)
    assert OrgUnit.unscoped.filter(integration=google_integration).count() == len(
        google_emulator.state.org_units
    )
    again = run_sync(google_integration)
    assert (again.added, again.updated, again.unchanged, again.removed) == (0, 0, 120, 0)


@pytest.mark.django_db
def test_google_ous_are_linked_to_ldap_ous_by_path(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle
) -> None:
    from tests.ldap.factories import LdapDirectoryFactory, LdapOrgUnitFactory

    directory = LdapDirectoryFactory(tenant=google_integration.tenant)
    paris = LdapOrgUnitFactory(
        tenant=google_integration.tenant, directory=directory, name="Paris", path="/Paris"
    )
    # Google compares OU paths case-insensitively; accents and spaces are kept as they are.
    ventes = LdapOrgUnitFactory(
        tenant=google_integration.tenant,
        directory=directory,
        name="ventes et marketing",
        path="/paris/ventes et marketing",
    )
    LdapOrgUnitFactory(
        tenant=google_integration.tenant, directory=directory, name="Lyon", path="/Lyon", added=False
    )
    run = run_sync(google_integration)
    units = {ou.path: ou for ou in OrgUnit.unscoped.filter(integration=google_integration)}
    assert units["/Paris"].ldap_org_unit_id == paris.pk and units["/Paris"].supported
    assert units["/Paris/Ventes et Marketing"].ldap_org_unit_id == ventes.pk
    assert not units["/Lyon"].supported  # its LDAP OU exists but was not added to the console
    assert not units["/"].supported  # kept, "non pris en charge"
    assert any("2 prises en charge" in line.text for line in run_log(run))
    # Unlinked when the LDAP OU goes; OUs deleted at Google are deleted here.
    paris.delete()
    google_emulator.control("POST", "/org-units/delete", {"paths": ["/Lyon/Équipe Réseau"]})
    run_sync(google_integration)
    units = {ou.path: ou for ou in OrgUnit.unscoped.filter(integration=google_integration)}
    assert not units["/Paris"].supported and "/Lyon/Équipe Réseau" not in units
