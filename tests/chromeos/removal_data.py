"""Test data for the removal tests: one row (or many) of every model a removal deletes, for one tenant."""

from __future__ import annotations

from django.utils import timezone

from chromeos.models import (
    ChromeOSDevice,
    DeviceActionItem,
    DeviceActionJob,
    DeviceChange,
    DeviceCommand,
    GoogleIntegration,
    OrgUnit,
    PolicyAssignment,
    SyncRun,
)
from mdm.models import AppKind, Tenant
from tests.factories import AppFactory, BlueprintFactory


def populate_integration_data(integration: GoogleIntegration, *, devices: int = 30) -> dict[str, int]:
    """Rows of every removed model for ``integration``'s tenant; returns how many of each were made."""
    tenant: Tenant = integration.tenant
    now = timezone.now()
    units = OrgUnit.unscoped.bulk_create(
        OrgUnit(
            tenant=tenant,
            integration=integration,
            org_unit_id=f"id:{tenant.slug}-ou{i}",
            path=f"/Ecoles/{tenant.slug}-{i}",
            name=f"{tenant.slug}-{i}",
        )
        for i in range(3)
    )
    runs = SyncRun.unscoped.bulk_create(
        SyncRun(tenant=tenant, integration=integration, trigger="manual", status="succeeded")
        for _ in range(2)
    )
    made = ChromeOSDevice.unscoped.bulk_create(
        ChromeOSDevice(
            tenant=tenant,
            integration=integration,
            device_id=f"{tenant.slug}-dev-{i:06d}",
            serial_number=f"SN{tenant.slug.upper()}{i:06d}",
            status="ACTIVE",
            org_unit_path=units[i % 3].path,
            payload={"deviceId": f"{tenant.slug}-dev-{i:06d}"},
            last_seen_run_id=runs[0].pk,
        )
        for i in range(devices)
    )
    job = DeviceActionJob.unscoped.create(tenant=tenant, action="cmd_reboot", status="succeeded", total=2)
    items = DeviceActionItem.unscoped.bulk_create(
        DeviceActionItem(tenant=tenant, job=job, device=d, google_device_id=d.device_id) for d in made[:2]
    )
    commands = DeviceCommand.unscoped.bulk_create(
        DeviceCommand(tenant=tenant, device=d, command_type="REBOOT", command_id=str(1000 + i), job=job)
        for i, d in enumerate(made[:5])
    )
    changes = DeviceChange.unscoped.bulk_create(
        DeviceChange(
            tenant=tenant, device=d, sync_run=runs[1], changes={"status": ["DISABLED", "ACTIVE"]}, at=now
        )
        for d in made[:4]
    )
    blueprint = BlueprintFactory(tenant=tenant)
    app = AppFactory(tenant=tenant, kind=AppKind.CHROME, identifier="a" * 32)
    assignments = PolicyAssignment.unscoped.bulk_create(
        [
            PolicyAssignment(tenant=tenant, integration=integration, org_unit=units[0], blueprint=blueprint),
            PolicyAssignment(
                tenant=tenant,
                integration=integration,
                org_unit=units[1],
                app=app,
                app_context="user",
                install_type="FORCED",
            ),
        ]
    )
    return {
        "devicechange": len(changes),
        "deviceactionitem": len(items),
        "devicecommand": len(commands),
        "deviceactionjob": 1,
        "chromeosdevice": len(made),
        "policyassignment": len(assignments),
        "orgunit": len(units),
        "syncrun": len(runs),
        "googleintegration": 1,
    }
