"""Benchmark: the ChromeOS sync at 10,000 and 100,000 devices, against the emulator over HTTP.

Usage: ``.venv/bin/python benchmarks/sync.py [--sizes 10000 100000] [--naive-at 10000] [--keep-db]
[--latency-ms MEAN[:SPREAD]] [--runs full "no change" ...] [--repeat N]``

``--latency-ms 300`` (or ``250:100``) makes the emulator answer each Directory call (device pages, counts, OUs)
after MEAN ± SPREAD ms, as Google does (its latency model, ``google_emulator/limits.py``): the fetch floor then is
the sequential floor of any lister (pages × latency, also printed), and the ratios say how much the sync adds to it.
The naive run is skipped under latency.

``parallel`` is the sync's parallel listing alone (``chromeos/services/sync/partitions.py``: plan by OU, list the
partitions in ``CHROMEOS_SYNC_LISTING_THREADS`` threads, prove it complete with Google's counts), storing nothing:
its ratio to the sequential floor is the issue's "parallel listing" figure. The emulator spreads the devices over
``--org-units`` OUs (12 besides the root, as by default). The syncs list in parallel too (N ≥
``CHROMEOS_SYNC_PARALLEL_MIN_DEVICES``): their ``× par.`` column compares them with it. The machine's load average
(1 min) is printed with each row: on a shared machine, read ratios, not seconds. Machines of one kind differ in
speed (~2× per core between two sessions' machines): the run starts by timing a fixed Python loop, and each sync
is also compared with the least wall time its CPU work allows on this machine's cores (its CPU seconds / cores):
a sync cannot beat the larger of that and its listing.

For each N it starts the Google emulator as its own process (``python -m google_emulator``) seeded with N
devices, makes one tenant with an authorized integration in its own database (``DATABASE_URL``, default
``mdm_bench_sync``: created and migrated, dropped at the end unless ``--keep-db``) and measures, each in a fresh
worker process (so its peak RSS is its own; its garbage collector set as a worker's, ``ops/worker.py``):

* ``fetch floor``: the sync's own client paging through the same emulator (``list_device_pages``), storing nothing;
* ``parallel``: the parallel listing (plan, threads, proof), storing nothing;
* ``naive`` (at ``--naive-at`` only): one ORM ``update_or_create`` per device, into an empty table;
* ``full``: the first sync into an empty table;
* ``no change``: a re-sync with nothing changed at Google (after a VACUUM and a CHECKPOINT);
* ``no change 2``: the same again at once, no checkpoint between (no full-page images: what one more sync adds);
* ``1% changed``: a re-sync after 1% of the devices changed at Google.

For each: wall time, devices/s, the worker's peak RSS, the WAL written between ``pg_current_wal_lsn()`` before
and after — counting only this database's records (``benchmarks/wal.py`` reads them back with ``pg_waldump``: the
PostgreSQL server is shared, other databases write WAL meanwhile; without pg_waldump or access to the WAL
directory, the cluster-wide difference is shown, marked ``*``) — and the devices table size (heap + TOAST +
indexes) afterwards, with its growth during the run. Under the table, for each sync: its WAL per 100,000 devices,
by table, the records without a relation (the server's share) apart, and the sizes of the devices and OU tables
before → after (a no-change sync must not grow them). For a sync, ``after list s`` is the time from
the end of the listing (its last page and Google's count after it) to the end of the run, from the run's own
log: what storing adds after Google's latency. ``--runs`` picks measurements (e.g. ``--runs "no change"``). The emulator is listed once before any
measurement so that its one-off JSON encoding is not charged to the first run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm.settings")
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/mdm_bench_sync"
os.environ.setdefault("DATABASE_URL", DEFAULT_DB)

from bench_db import migrated_database  # noqa: E402
from emulator_control import EmulatorControl  # noqa: E402
from wal import relation_sizes, wal_between, wal_position  # noqa: E402

SCOPES = [
    "https://www.googleapis.com/auth/admin.directory.device.chromeos",
    "https://www.googleapis.com/auth/admin.directory.orgunit.readonly",
    "https://www.googleapis.com/auth/admin.directory.customer.readonly",
]


# -- database ----------------------------------------------------------------------------------------------------
# The tables a sync writes and that must not grow when nothing changed at Google.
TABLES = ["chromeos_chromeosdevice", "chromeos_orgunit"]


# -- the emulator ------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Emulator(EmulatorControl):
    def __init__(self, devices: int, latency: str | None = None, org_units: int = 12) -> None:
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        command = [
            sys.executable,
            "-m",
            "google_emulator",
            "--port",
            str(self.port),
            "--devices",
            str(devices),
            "--org-units",
            str(org_units),
        ]
        if latency:
            # Every API call: the parallel listing's counts cost a round trip like a page.
            command += ["--latency", f"*={latency}"]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.wait_until_up(600)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


# -- a worker process: one measured operation --------------------------------------------------------------------
def child(mode: str, integration_id: int) -> None:
    import django

    django.setup()
    from ops.worker import tune_gc

    tune_gc()  # this process stands for a sync worker: its garbage collector as a worker's starts
    from chromeos.google.client import GoogleClient
    from chromeos.models import ChromeOSDevice, GoogleIntegration, SyncTrigger
    from chromeos.services.sync import MSG, STRING_COLUMNS, devices_sync, list_device_pages, sync_request
    from chromeos.services.sync.listing import _count_devices, _org_units
    from chromeos.services.sync.partitions import PartitionedListing
    from mdm.tenancy import tenant_context

    integration = GoogleIntegration.unscoped.select_related("tenant").get(pk=integration_id)
    started = time.monotonic()
    devices = 0
    with tenant_context(integration.tenant):
        if mode == "floor":
            client = GoogleClient(integration)
            for page in list_device_pages(client, integration):
                devices += len(page)
        elif mode == "parallel":
            client = GoogleClient(integration)
            total = _count_devices(client, integration)
            listing = PartitionedListing(
                customer=integration.customer_id,
                units=_org_units(client, integration),
                total_before=total,
                page_size=300,
                make_client=lambda: GoogleClient(integration),
                list_pages=lambda c, p: list_device_pages(
                    c, integration, org_unit=p.org_unit_id, with_children=p.with_children
                ),
            )
            if not listing.plan():
                raise SystemExit(f"no parallel plan: {listing.reason}")
            try:
                for page in listing:
                    devices += len(page)
            finally:
                listing.close()
            reasons = listing.proof(_count_devices(client, integration))
            if reasons:
                raise SystemExit(f"parallel listing not proven: {reasons}")
            extra = {
                "partitions": len(listing.partitions),
                "threads": listing.threads,
                "plan_counts": listing.plan_counts,
                "quota_waits": listing.pool.quota_waits,
                "quota_wait_s": round(listing.pool.quota_wait_seconds, 1),
            }
        elif mode == "naive":
            client = GoogleClient(integration)
            for page in list_device_pages(client, integration):
                for device in page:
                    defaults = {column: device.get(field) or "" for column, field, _m in STRING_COLUMNS}
                    ChromeOSDevice.objects.update_or_create(
                        device_id=device["deviceId"],
                        defaults={
                            **defaults,
                            "integration": integration,
                            "etag": device.get("etag", ""),
                            "payload": device,
                        },
                    )
                    devices += 1
        else:
            run, _created = sync_request(integration=integration, trigger=SyncTrigger.MANUAL, enqueue=False)
            run = devices_sync(run)
            if run.status != "succeeded":
                raise SystemExit(f"sync {run.status}: {run.error} {run.log[-3:]}")
            devices = run.devices_seen
            extra = {"added": run.added, "updated": run.updated, "unchanged": run.unchanged}
            # The run's own clock (its log): seconds from the end of the listing (last page and Google's count
            # after it) to the end of the run, i.e. what storing adds after Google's latency.
            logged = {entry["msg"]: entry["params"] for entry in run.log}
            listed = logged.get(MSG["listed"], {}).get("seconds")
            finished = logged.get(MSG["finished"], {}).get("seconds")
            if listed is not None and finished is not None:
                extra["tail_s"] = finished - listed
    seconds = time.monotonic() - started
    result: dict[str, Any] = {"seconds": seconds, "devices": devices, "rss_mb": peak_rss_mb()}
    if mode not in ("floor", "naive"):
        result.update(extra)
    if mode not in ("floor", "naive", "parallel"):
        result["parallel_log"] = next(
            (
                e["msg"] % e["params"]
                for e in run.log
                if "partitions" in e["params"] or "reason" in e["params"]
            ),
            "",
        )
    print(json.dumps(result))


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM): unlike ru_maxrss it is not inherited from the parent across exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def busy_cpu_seconds() -> float:
    """Core-seconds this machine has spent busy since boot (every process: worker, emulator, PostgreSQL)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


SPEED_LOOP = 5_000_000


def python_speed(iterations: int = SPEED_LOOP) -> float:
    """Seconds this machine takes for a fixed pure-Python loop (best of 3): machines of one kind differ (the
    sixth and seventh sessions' machines by ~2× per core, issue 18), so seconds and CPU seconds are read against
    it, and against the number of cores."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(iterations):
            total += i
        times.append(time.perf_counter() - started)
    return min(times)


def cpu_bound(row: dict[str, Any]) -> float:
    """The shortest wall time this row's work allows on this machine's cores: the machine's busy CPU seconds
    during the run (the worker, PostgreSQL, Redis and the emulator alike) spread evenly over every core."""
    return float(row["cpu_s"]) / (os.cpu_count() or 1)


def measure(mode: str, integration_id: int, env: dict[str, str]) -> dict[str, Any]:
    before_tables = relation_sizes(TABLES)
    before_wal = wal_position()
    before_cpu = busy_cpu_seconds()
    output = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--integration", str(integration_id)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if output.returncode != 0:
        raise RuntimeError(f"{mode} failed: {output.stderr[-3000:]}")
    result = json.loads(output.stdout.strip().splitlines()[-1])
    result["cpu_s"] = busy_cpu_seconds() - before_cpu
    wal = wal_between(before_wal, wal_position())
    result["wal_mb"] = wal.bytes / 1e6
    result["wal_source"] = wal.source
    result["wal_label"] = wal.label()
    result["wal_top"] = wal.top_relations()
    after_tables = relation_sizes(TABLES)
    result["tables"] = {t: (before_tables[t], after_tables[t]) for t in TABLES}
    result["table_mb"] = after_tables[TABLES[0]] / 1e6
    result["growth_mb"] = (after_tables[TABLES[0]] - before_tables[TABLES[0]]) / 1e6
    result["mode"] = mode
    result["load"] = os.getloadavg()[0]
    return result


# -- the run -----------------------------------------------------------------------------------------------------
def setup_tenant(emulator: Emulator) -> int:
    from datetime import timedelta

    from django.utils import timezone

    from chromeos.models import ChromeOSDevice, GoogleIntegration, SyncRun
    from mdm.models import Tenant

    token = emulator.control("POST", "/oauth/grant", {"scopes": SCOPES})
    customer = emulator.control("GET", "/state")["customer"]
    tenant, _ = Tenant.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    ChromeOSDevice.unscoped.filter(tenant=tenant).delete()
    SyncRun.unscoped.filter(tenant=tenant).delete()
    GoogleIntegration.unscoped.filter(tenant=tenant).delete()
    integration = GoogleIntegration.unscoped.create(
        tenant=tenant,
        status="active",
        customer_id=customer["id"],
        domain=customer["customerDomain"],
        admin_email=f"admin@{customer['customerDomain']}",
        authorized_at=timezone.now(),
        scopes=token["scope"].split(),
        refresh_token=token["refresh_token"],
        access_token=token["access_token"],
        access_token_expires_at=timezone.now() + timedelta(seconds=int(token["expires_in"])),
    )
    return integration.pk


def clear_devices() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE chromeos_chromeosdevice CASCADE")
        cursor.execute("VACUUM ANALYZE chromeos_chromeosdevice")


def best(
    mode: str, integration_id: int, env: dict[str, str], repeat: int, prepare: Any = None
) -> dict[str, Any]:
    """The fastest of ``repeat`` runs (this machine is shared: noise only ever adds time, and WAL: the cluster's
    WAL position moves with every database on the server, so the smallest reading is the closest to ours)."""
    runs = []
    for _ in range(repeat):
        if prepare is not None:
            prepare()
        runs.append(measure(mode, integration_id, env))
    fastest = min(runs, key=lambda r: r["seconds"])
    least = min(runs, key=lambda r: r["wal_mb"])  # cluster-wide fallback: the least polluted reading
    for key in ("wal_mb", "wal_source", "wal_label", "wal_top"):
        fastest[key] = least[key]
    return fastest


RUNS = ["floor", "parallel", "naive", "full", "no change", "1% changed"]
# The rows that are syncs (a run of the sync, not a listing alone).
SYNC_MODES = ("full", "no change", "no change 2", "1% changed")


def bench_size(
    size: int,
    naive: bool,
    repeat: int,
    latency: str | None = None,
    org_units: int = 12,
    runs: list[str] | None = None,
) -> list[dict[str, Any]]:
    from django.db import connection

    print(
        f"\n== N = {size:,}: starting the emulator" + (f" ({latency} ms per page)" if latency else ""),
        flush=True,
    )
    emulator = Emulator(size, latency, org_units)
    try:
        integration_id = setup_tenant(emulator)
        # Its own quota buckets: another benchmark or test on this Redis must not slow this one down.
        env = {
            **os.environ,
            "GOOGLE_EMULATOR_HOST": emulator.host,
            "GOOGLE_QUOTA_KEY_PREFIX": f"bench-sync-{os.getpid()}",
        }
        wanted = set(runs or RUNS)
        measure("floor", integration_id, env)  # warm-up: the emulator encodes each device once
        results = [best("floor", integration_id, env, repeat)]  # every ratio's denominator: always measured
        if size >= 2 * 300 and "parallel" in wanted:
            results.append(best("parallel", integration_id, env, repeat))
        if naive and "naive" in wanted:
            clear_devices()
            results.append(measure("naive", integration_id, env))

        def empty_table() -> None:
            clear_devices()
            connection.close()

        def checkpoint() -> None:
            with connection.cursor() as cursor:
                # An hourly re-sync comes long after autovacuum processed the previous sync's writes: do it now
                # rather than let it compete with the measured run. Then a checkpoint: the full-page images
                # after one are part of any real re-sync's WAL.
                cursor.execute("VACUUM ANALYZE chromeos_chromeosdevice")
                cursor.execute("CHECKPOINT")

        def change_one_percent() -> None:
            emulator.control("POST", "/devices/change", {"count": size // 100})
            measure("floor", integration_id, env)  # the emulator re-encodes changed devices: not ours to pay
            checkpoint()

        # A no-change or 1% re-sync needs a first sync before it.
        if wanted & {"full", "no change", "1% changed"}:
            results.append(best("full", integration_id, env, repeat if "full" in wanted else 1, empty_table))
        if "no change" in wanted:
            results.append(best("no change", integration_id, env, repeat, checkpoint))
            # Right after, with no checkpoint between: without the full-page images of the pages it touches (a
            # fleet's syncs share them: one per page per checkpoint), i.e. what each more sync costs.
            results.append(best("no change 2", integration_id, env, repeat))
        if "1% changed" in wanted:
            results.append(best("1% changed", integration_id, env, repeat, change_one_percent))
        parallel = next((r["seconds"] for r in results if r["mode"] == "parallel"), None)
        for row in results:
            row["n"] = size
            print(format_row(row, results[0]["seconds"], parallel), flush=True)
        return results
    finally:
        emulator.stop()


HEADER = (
    f"{'N':>8} | {'run':<11} | {'wall s':>7} | {'dev/s':>7} | {'× floor':>7} | {'× par.':>6} | "
    f"{'peak RSS MB':>11} | {'WAL MB':>8} | {'table MB':>8} | {'Δ table':>7} | {'CPU s':>6} | {'load':>5} | "
    f"{'after list s':>12}"
)


def format_row(row: dict[str, Any], floor: float, parallel: float | None = None) -> str:
    rate = row["devices"] / row["seconds"] if row["seconds"] else 0
    versus_parallel = f"{row['seconds'] / parallel:>6.2f}" if parallel else f"{'':>6}"
    return (
        f"{row['n']:>8,} | {row['mode']:<11} | {row['seconds']:>7.2f} | {rate:>7,.0f} | "
        f"{row['seconds'] / floor:>7.2f} | {versus_parallel} | {row['rss_mb']:>11.0f} | {wal_column(row)} | "
        f"{row['table_mb']:>8.1f} | {row['growth_mb']:>+7.1f} | {row['cpu_s']:>6.1f} | {row.get('load', 0):>5.1f} | "
        + (f"{row['tail_s']:>12.1f}" if "tail_s" in row else f"{'':>12}")
    )


def wal_column(row: dict[str, Any]) -> str:
    """This database's WAL; marked ``*`` when only the cluster-wide figure could be read."""
    mark = "" if row.get("wal_source") == "pg_waldump" else "*"
    return f"{row['wal_mb']:>7.2f}{mark or ' '}"


def wal_details(row: dict[str, Any]) -> list[str]:
    """What a sync wrote, by table, per 100,000 devices, and the tables' sizes before → after."""
    per_100k = row["wal_mb"] * 100_000 / max(row["n"], 1)
    lines = [f"{row['mode']}: WAL {row['wal_label']}; {per_100k:.2f} MB per 100,000 devices"]
    if row.get("wal_top"):
        lines.append(
            "  by table: " + ", ".join(f"{name} {size / 1e6:.2f} MB" for name, size in row["wal_top"])
        )
    lines.append(
        "  tables before → after: "
        + ", ".join(
            f"{name} {before / 1e6:.1f} → {after / 1e6:.1f} MB ({(after - before) / 1e6:+.2f})"
            for name, (before, after) in row["tables"].items()
        )
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--naive-at", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the fastest is kept")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument(
        "--latency-ms",
        metavar="MEAN[:SPREAD]",
        help="the emulator's latency per device page, e.g. 300 or 250:100",
    )
    parser.add_argument(
        "--org-units", type=int, default=12, help="OUs of the emulator's customer (besides the root)"
    )
    parser.add_argument(
        "--runs",
        nargs="+",
        choices=RUNS,
        help="only these measurements (the fetch floor always; a first sync before any re-sync)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--integration", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.integration)
        return

    speed = python_speed()
    print(
        f"this machine: {os.cpu_count()} cores; a loop of {SPEED_LOOP:,} Python additions in {speed:.2f} s "
        "(read seconds and CPU seconds against it)",
        flush=True,
    )
    results: list[dict[str, Any]] = []
    with migrated_database(keep=args.keep_db):
        for size in args.sizes:
            naive = size == args.naive_at and not args.latency_ms
            results += bench_size(
                size,
                naive=naive,
                repeat=args.repeat,
                latency=args.latency_ms,
                org_units=args.org_units,
                runs=args.runs,
            )
    print("\n" + HEADER)
    print("-" * len(HEADER))
    for size in args.sizes:
        rows = [r for r in results if r["n"] == size]
        if not rows:
            continue
        floor = rows[0]["seconds"]
        by_mode = {r["mode"]: r for r in rows}
        parallel = by_mode["parallel"]["seconds"] if "parallel" in by_mode else None
        for row in rows:
            print(format_row(row, floor, parallel))
        if args.latency_ms:
            mean = float(args.latency_ms.partition(":")[0])
            pages = -(-size // 300)
            sequential = pages * mean / 1000
            print(
                f"{'':>8}   sequential floor at {mean:g} ms per page: {pages} pages × {mean:g} ms = {sequential:.1f} s"
            )
            if parallel:
                p = by_mode["parallel"]
                print(
                    f"{'':>8}   parallel listing: {parallel:.1f} s = {parallel / sequential:.2f}× that floor, "
                    f"{parallel / floor:.2f}× the measured one ({p['partitions']} partitions, {p['threads']} threads, "
                    f"{p['plan_counts']} counts to plan; {p['quota_waits']} calls waited for the quota governor, "
                    f"{p['quota_wait_s']} s in all)"
                )
        for row in rows:
            if row.get("parallel_log"):
                print(f"{'':>8}   {row['mode']}: {row['parallel_log']}")
        if parallel:
            # A run cannot end before its listing, nor before the machine has done its CPU work: how close each
            # sync is to the larger of the two says how much of the rest is overlap left undone.
            for row in rows:
                if row["mode"] in SYNC_MODES:
                    bound = cpu_bound(row)
                    print(
                        f"{'':>8}   {row['mode']}: {row['cpu_s']:.1f} CPU s on {os.cpu_count()} cores = at least "
                        f"{bound:.1f} s; wall {row['seconds']:.2f} s = {row['seconds'] / max(parallel, bound):.2f}× "
                        f"the larger of that and the parallel listing ({parallel:.2f} s)"
                    )
        for row in rows:
            if row["mode"] in SYNC_MODES:
                for line in wal_details(row):
                    print(f"{'':>8}   {line}")
        if "naive" in by_mode and "full" in by_mode:
            print(
                f"{'':>8}   full sync vs naive: {by_mode['naive']['seconds'] / by_mode['full']['seconds']:.1f}× faster"
            )


if __name__ == "__main__":
    main()
