"""Two tenants of the console, each authorized against its own Google customer of one emulator: each sync sees
only its customer's devices and OUs (issue 18: the console had never run more than one tenant against one Google)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from chromeos.google.client import SCOPES
from chromeos.models import ChromeOSDevice, GoogleIntegration, IntegrationStatus, OrgUnit, SyncStatus
from google_emulator.testing import EmulatorHandle
from mdm.models import Tenant
from tests.chromeos.test_sync_service import run_sync
from tests.factories import UserFactory


def authorize(tenant: Tenant, google_emulator: EmulatorHandle, customer: str) -> GoogleIntegration:
    token = google_emulator.grant(list(SCOPES), customer=customer)
    state = google_emulator.state.find_customer(customer)
    return GoogleIntegration.unscoped.create(
        tenant=tenant,
        status=IntegrationStatus.ACTIVE,
        customer_id=state.customer["id"],
        domain=state.customer["customerDomain"],
        customer_info=dict(state.customer),
        admin_email=state.admin_email,
        authorized_by=UserFactory(tenant=tenant),
        authorized_at=timezone.now(),
        scopes=token["scope"].split(),
        refresh_token=token["refresh_token"],
        access_token=token["access_token"],
        access_token_expires_at=timezone.now() + timedelta(seconds=int(token["expires_in"])),
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.google_emulator(customers=2, devices=40)
def test_each_tenant_syncs_only_its_google_customer(
    emulator_settings: Any, google_emulator: EmulatorHandle, tenant: Tenant, other_tenant: Tenant
) -> None:
    first, second = google_emulator.state.customers
    google_emulator.control("POST", "/devices", {"count": 5, "customer": "2"})
    acme = authorize(tenant, google_emulator, "1")
    globex = authorize(other_tenant, google_emulator, "2")

    for integration, customer in ((acme, first), (globex, second)):
        run = run_sync(integration)
        assert run.status == SyncStatus.SUCCEEDED, run.log
        synced = set(
            ChromeOSDevice.unscoped.filter(integration=integration, removed_at__isnull=True).values_list(
                "device_id", flat=True
            )
        )
        assert synced == set(customer.devices)
        paths = set(OrgUnit.unscoped.filter(integration=integration).values_list("path", flat=True))
        assert paths == {u.path for u in customer.org_units}
    assert (len(first.devices), len(second.devices)) == (40, 45)
