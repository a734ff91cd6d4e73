"""Benchmark: the fixed WAL cost of a no-change sync of a small tenant (issue 18: a fleet is mostly small tenants).

Usage: ``.venv/bin/python benchmarks/sync_wal_small.py [--devices 500] [--syncs 20] [--keep-db]``

Starts the Google emulator with ``--devices`` devices (no latency), makes one tenant with an authorized
integration in its own database (``DATABASE_URL``, default ``mdm_bench_wal_small``: created and migrated, dropped
at the end unless ``--keep-db``), runs a first (full) sync, then ``--syncs`` no-change syncs in this process,
one after the other, and reads back the WAL this database wrote during them (``benchmarks/wal.py``: pg_waldump,
this database's records only). Prints the WAL per sync, per 100,000 devices (as a fleet of such tenants would
write it), and by table. The first no-change sync after the full one is measured too (it may carry full-page
images after a checkpoint); the figure that matters for a fleet is the average over all of them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mdm_bench_wal_small")

from bench_db import migrated_database  # noqa: E402
from sync import Emulator, setup_tenant  # noqa: E402
from wal import wal_between, wal_position  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--syncs", type=int, default=20)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    with migrated_database(keep=args.keep_db):
        emulator = Emulator(args.devices, None, 4)
        try:
            os.environ["GOOGLE_EMULATOR_HOST"] = emulator.host
            os.environ["GOOGLE_QUOTA_KEY_PREFIX"] = f"bench-wal-small-{os.getpid()}"
            run_syncs(setup_tenant(emulator), args.devices, args.syncs)
        finally:
            emulator.stop()


def sync_once(integration_id: int) -> None:
    from chromeos.models import GoogleIntegration, SyncTrigger
    from chromeos.services.sync import devices_sync, sync_request
    from mdm.tenancy import tenant_context

    integration = GoogleIntegration.unscoped.select_related("tenant").get(pk=integration_id)
    with tenant_context(integration.tenant):
        run, _created = sync_request(integration=integration, trigger=SyncTrigger.MANUAL, enqueue=False)
        run = devices_sync(run)
    if run.status != "succeeded":
        raise SystemExit(f"sync {run.status}: {run.error} {run.log[-3:]}")


def run_syncs(integration_id: int, devices: int, syncs: int) -> None:
    from django.conf import settings
    from django.db import connection

    settings.GOOGLE_EMULATOR_HOST = os.environ["GOOGLE_EMULATOR_HOST"]
    settings.GOOGLE_QUOTA_KEY_PREFIX = os.environ["GOOGLE_QUOTA_KEY_PREFIX"]
    sync_once(integration_id)  # the full sync: devices in
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE chromeos_chromeosdevice")
    started = time.monotonic()
    before = wal_position()
    for _ in range(syncs):
        sync_once(integration_id)
    wal = wal_between(before, wal_position())
    seconds = time.monotonic() - started
    per_sync = wal.bytes / syncs
    mark = "" if wal.source == "pg_waldump" else " (cluster-wide: pg_waldump unavailable)"
    print(f"{syncs} no-change syncs of a {devices:,}-device tenant in {seconds:.1f} s: {wal.label()}")
    print(
        f"WAL per sync {per_sync / 1e3:.1f} KB{mark}; per 100,000 devices (fleet of such tenants) "
        f"{per_sync * 100_000 / devices / 1e6:.2f} MB; load {os.getloadavg()[0]:.1f}"
    )
    print(
        "by table, per sync: "
        + ", ".join(f"{name} {size / syncs / 1e3:.1f} KB" for name, size in wal.top_relations(12))
    )


if __name__ == "__main__":
    main()
