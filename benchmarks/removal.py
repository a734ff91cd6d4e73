"""Benchmark: removing an integration with 100,000 ChromeOS devices (the chunked, all-or-nothing deletion).

Usage: ``.venv/bin/python benchmarks/removal.py [--devices 100000] [--chunk-size 5000] [--keep-db]``

Works in its own database (``DATABASE_URL``, default ``mdm_bench_removal``: created and migrated if missing,
dropped at the end unless ``--keep-db``). It builds one tenant with N devices (plus commands, change history,
OUs, assignments and sync runs, as a real tenant has), then runs the removal's deletion
(``integration_data_delete``, the step after revocation) while another tenant keeps writing, and prints:

* per model: rows, chunks, the slowest chunk — each chunk is one short ``DELETE`` statement;
* the whole transaction's duration: how long this tenant's integration row stays locked (a sync of THIS tenant
  waits that long at its next merge, then stops);
* the other tenant's writes during the deletion: their slowest latency shows they are never blocked.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm.settings")
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/mdm_bench_removal"
os.environ.setdefault("DATABASE_URL", DEFAULT_DB)

from bench_db import migrated_database  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--chunk-size", type=int, default=None)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    with migrated_database(keep=args.keep_db):
        run(args.devices, args.chunk_size)


def run(device_count: int, chunk_size: int | None) -> None:
    from django.db import close_old_connections, transaction
    from django.utils import timezone

    from chromeos.models import (
        ChromeOSDevice,
        DeviceChange,
        DeviceCommand,
        GoogleIntegration,
        OrgUnit,
        SyncRun,
    )
    from chromeos.services.removal import CHUNK_SIZE, ChunkReport, integration_data_delete, model_key
    from mdm.models import Tenant

    chunk_size = chunk_size or CHUNK_SIZE
    Tenant.objects.filter(slug__in=["bench-removal", "bench-other"]).delete()
    tenant = Tenant.objects.create(slug="bench-removal", name="Bench removal")
    other = Tenant.objects.create(slug="bench-other", name="Bench other tenant")

    def integration_for(t: Tenant, customer: str) -> GoogleIntegration:
        return GoogleIntegration.unscoped.create(
            tenant=t,
            status="active",
            customer_id=customer,
            domain=f"{t.slug}.example.com",
            admin_email=f"admin@{t.slug}.example.com",
            authorized_at=timezone.now(),
            refresh_token="1//bench-not-a-real-token",  # noqa: S106 - never sent anywhere
        )

    integration = integration_for(tenant, "Cbenchrem")
    other_integration = integration_for(other, "Cbenchoth")

    started = time.monotonic()
    units = OrgUnit.unscoped.bulk_create(
        OrgUnit(
            tenant=tenant, integration=integration, org_unit_id=f"id:ou{i}", path=f"/Sites/{i}", name=str(i)
        )
        for i in range(100)
    )
    runs = SyncRun.unscoped.bulk_create(
        SyncRun(tenant=tenant, integration=integration, trigger="scheduled", status="succeeded")
        for _ in range(24)
    )
    batch = 5000
    for start in range(0, device_count, batch):
        ChromeOSDevice.unscoped.bulk_create(
            ChromeOSDevice(
                tenant=tenant,
                integration=integration,
                device_id=f"dev-{i:07d}",
                serial_number=f"5CD{i:07d}",
                status="ACTIVE",
                model="HP Chromebook 14 G7",
                org_unit_path=units[i % len(units)].path,
                annotated_user=f"user{i}@bench-removal.example.com",
                payload={"deviceId": f"dev-{i:07d}", "serialNumber": f"5CD{i:07d}", "status": "ACTIVE"},
            )
            for i in range(start, min(device_count, start + batch))
        )
    device_ids = list(ChromeOSDevice.unscoped.filter(tenant=tenant).values_list("pk", flat=True))
    DeviceCommand.unscoped.bulk_create(
        (DeviceCommand(tenant=tenant, device_id=pk, command_type="REBOOT") for pk in device_ids[::10]),
        batch_size=batch,
    )
    DeviceChange.unscoped.bulk_create(
        (
            DeviceChange(
                tenant=tenant, device_id=pk, sync_run=runs[-1], changes={"status": ["DISABLED", "ACTIVE"]}
            )
            for pk in device_ids[::5]
        ),
        batch_size=batch,
    )
    other_devices = ChromeOSDevice.unscoped.bulk_create(
        ChromeOSDevice(tenant=other, integration=other_integration, device_id=f"o-{i}", serial_number=f"O{i}")
        for i in range(200)
    )
    print(
        f"setup: {device_count} devices (+ commands, changes, OUs, runs) in {time.monotonic() - started:.1f}s"
    )

    # Another tenant keeps writing during the deletion: its latency shows whether the removal blocks it.
    stop = threading.Event()
    latencies: list[float] = []

    def other_tenant_writes() -> None:
        try:
            i = 0
            while not stop.is_set():
                t0 = time.monotonic()
                with transaction.atomic():
                    ChromeOSDevice.unscoped.filter(pk=other_devices[i % 200].pk).update(notes=str(i))
                    DeviceCommand.unscoped.create(
                        tenant=other, device=other_devices[i % 200], command_type="REBOOT"
                    )
                latencies.append(time.monotonic() - t0)
                i += 1
                time.sleep(0.01)
        finally:
            close_old_connections()

    writer = threading.Thread(target=other_tenant_writes)
    writer.start()
    reports: list[ChunkReport] = []
    t0 = time.monotonic()
    with transaction.atomic():
        deleted = integration_data_delete(tenant, chunk_size=chunk_size, on_chunk=reports.append)
        commit_start = time.monotonic()
    commit_seconds = time.monotonic() - commit_start
    total = time.monotonic() - t0
    stop.set()
    writer.join()

    print(f"\nchunk size {chunk_size}")
    print(f"{'model':<20} {'rows':>9} {'chunks':>7} {'max chunk s':>12} {'median s':>9}")
    for key, rows in deleted.items():
        chunks = [r.seconds for r in reports if model_key(r.model) == key]
        if not chunks:
            print(f"{key:<20} {rows:>9} {0:>7} {'-':>12} {'-':>9}")
            continue
        print(f"{key:<20} {rows:>9} {len(chunks):>7} {max(chunks):>12.3f} {statistics.median(chunks):>9.3f}")
    all_chunks = [r.seconds for r in reports]
    print(f"\nmax lock duration per chunk (slowest DELETE statement): {max(all_chunks):.3f}s")
    print(f"whole transaction (integration row locked, rows invisible to others until commit): {total:.2f}s")
    print(f"  of which COMMIT (deferred foreign-key checks): {commit_seconds:.2f}s")
    if latencies:
        print(
            f"other tenant during the deletion: {len(latencies)} write transactions, "
            f"median {statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
        )
    left = ChromeOSDevice.unscoped.filter(tenant=tenant).count()
    kept = ChromeOSDevice.unscoped.filter(tenant=other).count()
    print(f"devices left for the removed tenant: {left}; other tenant's devices kept: {kept}")
    Tenant.objects.filter(pk__in=[tenant.pk, other.pk]).delete()


if __name__ == "__main__":
    main()
