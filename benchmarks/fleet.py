"""Benchmark: a fleet of tenants in hourly sync, against one multi-customer emulator with Google's latency and limits.

Usage (small, a few minutes): ``.venv/bin/python benchmarks/fleet.py --tenants 20 --devices-min 500
--devices-max 1500 --cycles 2 --cycle-seconds 120``; the goal of issue 18: ``.venv/bin/python benchmarks/fleet.py``
(1,000 tenants of 200–5,000 devices, most of them small, plus 3 of 50,000: ~1.1 M devices; 3 compressed hours of
600 s).

What it runs, each as its own process, as in production:

* the Google emulator (``python -m google_emulator``): one Google customer per tenant, devices generated from
  seeds on demand (google_emulator/device_store.py), ``--latency-ms`` on every device page (default 250:100 ms),
  Google's limits (``--user-rate-limit`` per admin per minute, 2,400 as Google; ``--customer-concurrency-limit``
  in flight per customer; ``--project-rate-limit`` per minute for the project, off by default);
* ``celery beat`` (the real schedule: the sync dispatcher every ``--dispatch-seconds``);
* ``--workers`` sync workers on the sync queue (``--pool threads --concurrency 16`` by default, as
  ``scripts/prod.sh sync-worker``) and one worker for every other queue (prefork, 2), as ``scripts/prod.sh worker``.

Tenants, their Google integrations and grants are written in bulk (``bulk_create``: the consent flow is the
browser journey's business, not the fleet's). The first sync of every tenant is then requested at once (as many
"Synchroniser" clicks), and once they are all done, ``--cycles`` compressed hours follow:
``CHROMEOS_SYNC_INTERVAL_SECONDS=--cycle-seconds`` (600 s stand for the hour by default), each tenant at its own
offset in the cycle, started by the dispatcher alone.

It prints, for the first syncs and for each cycle: runs, skipped tenants (no run started in the cycle), start lag
(how late each scheduled run started against its slot: p50/p99/max), sync duration p50/p99, Google calls and
refusals (403 ``userRateLimitExceeded``/``quotaExceeded``, 429 ``rateLimitExceeded``, from the emulator's
``/_emulator/limits``), queue depth (broker list length and queued runs, sampled every 2 s: max), the database
size; then the peak RSS of every process (VmHWM, also of each pool child) and the CPU seconds of the console
(workers, beat and their PostgreSQL backends) per million devices synced, beside the emulator's own (Google's
side: not the console's cost). Own database (``DATABASE_URL``, default ``mdm_bench_fleet``: created, migrated,
dropped at the end unless ``--keep-db``) and own broker/cache/quota key prefixes in the shared Redis.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm.settings")
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/mdm_bench_fleet"
os.environ["DATABASE_URL"] = os.environ.get("FLEET_DATABASE_URL", DEFAULT_DB)
PREFIX = os.environ.get("FLEET_KEY_PREFIX", "fleet-bench")
# The processes started below and this one share these: own queues, cache and quota buckets in the shared Redis.
os.environ["CELERY_BROKER_KEY_PREFIX"] = f"{PREFIX}:"
os.environ["CACHE_KEY_PREFIX"] = PREFIX
os.environ["GOOGLE_QUOTA_KEY_PREFIX"] = f"{PREFIX}:google-quota"

from bench_db import migrated_database  # noqa: E402
from emulator_control import EmulatorControl  # noqa: E402
from wal import WalReading, wal_position, wal_reading_between  # noqa: E402

SCOPES = [
    "https://www.googleapis.com/auth/admin.directory.device.chromeos",
    "https://www.googleapis.com/auth/admin.directory.orgunit.readonly",
    "https://www.googleapis.com/auth/admin.directory.customer.readonly",
]
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- the fleet's shape -------------------------------------------------------------------------------------------
def fleet_sizes(args: argparse.Namespace) -> list[int]:
    """Sizes between --devices-min and --devices-max, min·(max/min)^(u^skew) for u uniform: skew 1 is
    log-uniform, 2 (the default) has more small tenants (1,000 tenants of 200–5,000: median ~460, ~975,000
    devices); plus --large-tenants of --large-devices, spread through the list."""
    rng = random.Random(args.seed)
    ratio = args.devices_max / args.devices_min
    sizes = [round(args.devices_min * ratio ** (rng.random() ** args.skew)) for _ in range(args.tenants)]
    for k in range(min(args.large_tenants, args.tenants)):
        sizes[(k * 7919) % args.tenants] = args.large_devices
    return sizes


# -- processes ---------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_tree(pid: int) -> list[int]:
    """The process and its descendants (a prefork worker's pool children)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1]).split()
    except OSError:
        return None
    # utime, stime, and the children's once reaped (a pool child that was replaced).
    return sum(int(v) for v in fields[11:15]) / CLK_TCK


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    role: str  # "console" or "google"
    peak_mb: dict[int, float] = field(default_factory=dict)
    cpu: dict[int, float] = field(default_factory=dict)

    def sample(self) -> None:
        for pid in proc_tree(self.popen.pid):
            rss, cpu = peak_rss_mb(pid), cpu_seconds(pid)
            if rss is not None:
                self.peak_mb[pid] = max(rss, self.peak_mb.get(pid, 0.0))
            if cpu is not None:
                self.cpu[pid] = max(cpu, self.cpu.get(pid, 0.0))

    def cpu_total(self) -> float:
        # The parent's cutime/cstime already hold the children it reaped; live children are counted apart.
        return sum(self.cpu.values())

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


def start(name: str, command: list[str], env: dict[str, str], role: str, log: Path) -> Process:
    handle = log.open("ab")
    popen = subprocess.Popen(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
    return Process(name, popen, role)


# -- the emulator ------------------------------------------------------------------------------------------------
class Emulator(EmulatorControl):
    def __init__(self, args: argparse.Namespace, first_size: int, env: dict[str, str], log: Path) -> None:
        self.host = f"127.0.0.1:{free_port()}"
        command = [
            sys.executable,
            "-m",
            "google_emulator",
            "--port",
            self.host.rsplit(":", 1)[1],
            "--domain",
            "t1.fleet.test",
            "--devices",
            str(first_size),
            "--seed",
            "1",
            "--device-cache",
            str(args.device_cache),
            "--latency",
            f"directory.chromeosdevices.list={args.latency_ms}",
            "--latency",
            f"*={args.other_latency_ms}",
        ]
        for flag in ("user_rate_limit", "customer_concurrency_limit", "project_rate_limit"):
            if getattr(args, flag):
                command += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
        self.process = start("emulator", command, env, "google", log)
        self.wait_until_up(600)


# -- the console side, in bulk -----------------------------------------------------------------------------------
def create_fleet(emulator: Emulator, sizes: list[int]) -> None:
    """Google customers (one per tenant), then tenants, integrations and grants in bulk."""
    from django.utils import timezone

    from chromeos.models import GoogleIntegration
    from mdm.models import Tenant

    started = time.monotonic()
    for number, size in enumerate(sizes[1:], start=2):
        emulator.control(
            "POST", "/customers", {"domain": f"t{number}.fleet.test", "devices": size, "seed": number}
        )
    customers = emulator.control("GET", "/customers")["customers"]
    print(f"  {len(customers)} Google customers seeded in {time.monotonic() - started:.0f} s", flush=True)
    started = time.monotonic()
    tenants = Tenant.objects.bulk_create(
        [Tenant(slug=f"fleet-{n}", name=f"Flotte {n}") for n in range(1, len(sizes) + 1)], batch_size=1000
    )
    now = timezone.now()
    integrations = []
    for number, (tenant, customer) in enumerate(zip(tenants, customers, strict=True), start=1):
        grant = emulator.control("POST", "/oauth/grant", {"scopes": SCOPES, "customer": str(number)})
        integrations.append(
            GoogleIntegration(
                tenant=tenant,
                status="active",
                customer_id=customer["id"],
                domain=customer["domain"],
                admin_email=customer["admin"],
                authorized_at=now,
                scopes=grant["scope"].split(),
                refresh_token=grant["refresh_token"],
                access_token=grant["access_token"],
                access_token_expires_at=now + timedelta(seconds=int(grant["expires_in"])),
            )
        )
    GoogleIntegration.unscoped.bulk_create(integrations, batch_size=500)
    print(
        f"  {len(tenants)} tenants, integrations and grants in {time.monotonic() - started:.0f} s", flush=True
    )


def request_first_syncs() -> None:
    from chromeos.models import GoogleIntegration, SyncTrigger
    from chromeos.services.sync import sync_request

    for integration in GoogleIntegration.unscoped.select_related("tenant").order_by("pk"):
        sync_request(integration=integration, trigger=SyncTrigger.MANUAL)


# -- sampling ----------------------------------------------------------------------------------------------------
class Sampler(threading.Thread):
    """Every 2 s: each process's peak RSS and CPU, our PostgreSQL backends' CPU, queue depths."""

    def __init__(self, processes: list[Process]) -> None:
        super().__init__(daemon=True)
        import redis
        from django.conf import settings

        self.processes = processes
        self.redis = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        self.queue_key = f"{PREFIX}:{sync_queue()}"
        self.backend_cpu: dict[int, float] = {}
        self.depths: list[tuple[float, int, int]] = []  # (time, broker list length, queued runs)
        self.stopping = threading.Event()

    def run(self) -> None:
        import psycopg

        url = os.environ["DATABASE_URL"]
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(url, autocommit=True) as conn:
            while not self.stopping.wait(2.0):
                for process in self.processes:
                    process.sample()
                pids = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [name]
                ).fetchall()
                for (pid,) in pids:
                    cpu = cpu_seconds(pid)
                    if cpu is not None:
                        self.backend_cpu[pid] = max(cpu, self.backend_cpu.get(pid, 0.0))
                queued = conn.execute(
                    "SELECT count(*) FROM chromeos_syncrun WHERE status = 'queued'"
                ).fetchone()
                try:
                    length = int(self.redis.llen(self.queue_key))
                except Exception:  # a figure, not a failure
                    length = -1
                self.depths.append((time.time(), length, int(queued[0]) if queued else 0))

    def depth_between(self, start: float, end: float) -> tuple[int, int]:
        inside = [(b, q) for t, b, q in self.depths if start <= t < end] or [(0, 0)]
        return max(b for b, _ in inside), max(q for _, q in inside)


def database_mb() -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_database_size(current_database())")
        return cursor.fetchone()[0] / 1e6


# The tables a no-change cycle must not grow (issue 18), beside the whole database (which also holds each run's
# row and log: the history grows by design).
WATCHED_TABLES = (
    "chromeos_chromeosdevice",
    "chromeos_orgunit",
    "chromeos_devicechange",
    "chromeos_syncstage",
    "chromeos_syncbatch",
    "chromeos_syncrun",
)


def table_sizes() -> dict[str, float]:
    """MB of each watched table (heap, TOAST and indexes)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relname = ANY(%s) AND relkind = 'r'",
            [list(WATCHED_TABLES)],
        )
        return {name: size / 1e6 for name, size in cursor.fetchall()}


def print_table_sizes(labels: list[str], sizes: list[dict[str, float]]) -> None:
    print("\ntables at each boundary (MB, heap + TOAST + indexes): " + " → ".join(labels))
    for name in WATCHED_TABLES:
        values = [s.get(name) for s in sizes]
        if any(v is not None for v in values):
            print(f"  {name:<26} " + " → ".join("–" if v is None else f"{v:,.1f}" for v in values))


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def slot_of(created: datetime, offset: int, interval: int) -> datetime:
    """The tenant's slot the dispatcher served when it created this run (the last one at or before it)."""
    offset %= interval
    k = math.floor((created.timestamp() - offset) / interval)
    return datetime.fromtimestamp(k * interval + offset, UTC)


def runs_between(start: datetime, end: datetime, trigger: str) -> list[Any]:
    from chromeos.models import SyncRun

    return list(
        SyncRun.unscoped.filter(trigger=trigger, created_at__gte=start, created_at__lt=end).select_related(
            "integration"
        )
    )


def google_counters(emulator: Emulator) -> dict[str, int]:
    limits = emulator.control("GET", "/limits")
    return {"calls": sum(limits.get("calls", {}).values()), **limits.get("refused", {})}


def diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)}


def print_runs(label: str, runs: list[Any], tenants: int, interval: int | None, extra: str) -> int:
    done = [r for r in runs if r.started_at and r.finished_at]
    durations = [(r.finished_at - r.started_at).total_seconds() for r in done]
    failed = sum(1 for r in runs if r.status == "failed")
    devices = sum(r.devices_seen for r in done)
    line = f"{label:<18}| runs {len(runs):>5} | failed {failed:>3} | skipped {max(0, tenants - len({r.tenant_id for r in runs})):>4}"
    if interval:
        lags = [
            (
                r.started_at - slot_of(r.created_at, r.integration.sync_offset_seconds, interval)
            ).total_seconds()
            for r in runs
            if r.started_at
        ]
        line += (
            f" | lag p50 {percentile(lags, 50):6.1f} s p99 {percentile(lags, 99):6.1f} s"
            f" max {max(lags or [float('nan')]):6.1f} s, not started {sum(1 for r in runs if not r.started_at)}"
        )
    line += f" | duration p50 {percentile(durations, 50):6.1f} s p99 {percentile(durations, 99):6.1f} s | devices {devices:>9,} | {extra}"
    print(line, flush=True)
    return devices


# -- the run -----------------------------------------------------------------------------------------------------
def wait_for(predicate: Any, timeout: float, every: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--devices-min", type=int, default=200)
    parser.add_argument("--devices-max", type=int, default=5000)
    parser.add_argument("--skew", type=float, default=2.0, help="size distribution (1: log-uniform; 2)")
    parser.add_argument("--large-tenants", type=int, default=3, help="tenants of --large-devices (default 3)")
    parser.add_argument("--large-devices", type=int, default=50_000)
    parser.add_argument("--cycles", type=int, default=3, help="compressed hours after the first syncs")
    parser.add_argument("--cycle-seconds", type=int, default=600, help="seconds standing for the hour (600)")
    parser.add_argument("--dispatch-seconds", type=int, default=10, help="beat's dispatcher tick (10)")
    parser.add_argument(
        "--workers", type=int, default=1, help="sync workers (processes) on the sync queue (1)"
    )
    parser.add_argument(
        "--pool", default="threads", help="the sync workers' --pool (threads, as scripts/prod.sh)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=16, help="slots per sync worker (16, as scripts/prod.sh)"
    )
    parser.add_argument("--latency-ms", default="250:100", help="device page latency MEAN[:SPREAD] (250:100)")
    parser.add_argument("--other-latency-ms", default="100:50", help="latency of every other Google call")
    parser.add_argument("--user-rate-limit", type=int, default=2400, help="per admin per minute (2400)")
    parser.add_argument("--customer-concurrency-limit", type=int, default=10, help="in flight per customer")
    parser.add_argument("--project-rate-limit", type=int, help="per minute for the project (off)")
    parser.add_argument("--device-cache", type=int, default=0, help="the emulator's --device-cache (0)")
    parser.add_argument("--first-sync-timeout", type=int, default=3 * 3600)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    if args.devices_min < 1 or args.devices_max < args.devices_min or args.tenants < 1 or args.cycles < 0:
        parser.error("need 1 ≤ --devices-min ≤ --devices-max, --tenants ≥ 1, --cycles ≥ 0")

    sizes = fleet_sizes(args)
    print(
        f"fleet: {len(sizes)} tenants, {sum(sizes):,} devices (min {min(sizes):,}, median "
        f"{int(statistics.median(sizes)):,}, max {max(sizes):,}); {args.cycles} cycles of {args.cycle_seconds} s; "
        f"latency {args.latency_ms} ms per page; {args.workers} worker(s) pool={args.pool} "
        f"concurrency={args.concurrency}; load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    logs = Path(os.environ.get("FLEET_LOG_DIR") or Path(tempfile.gettempdir()) / "fleet-bench")
    logs.mkdir(parents=True, exist_ok=True)
    for old in logs.glob("*.log"):
        old.unlink()
    processes: list[Process] = []
    with migrated_database(keep=args.keep_db, fresh=True):
        logging.getLogger("mdm.services").setLevel(logging.WARNING)  # one audit line per first-sync request
        env = {
            **os.environ,
            "CHROMEOS_SYNC_INTERVAL_SECONDS": str(args.cycle_seconds),
            "CHROMEOS_SYNC_DISPATCH_SECONDS": str(args.dispatch_seconds),
        }
        sampler: Sampler | None = None
        try:
            emulator = Emulator(args, sizes[0], env, logs / "emulator.log")
            processes.append(emulator.process)
            env["GOOGLE_EMULATOR_HOST"] = emulator.host
            os.environ["GOOGLE_EMULATOR_HOST"] = emulator.host
            create_fleet(emulator, sizes)
            _purge_queue()
            celery = [str(ROOT / ".venv/bin/celery"), "-A", "celery_app"]
            # As scripts/prod.sh runs them: sync workers on the sync queue, one worker for every other queue.
            for number in range(1, args.workers + 1):
                command = [
                    *celery,
                    "worker",
                    "--loglevel=INFO",
                    "-n",
                    f"fleet-sync{number}@%h",
                    "-Q",
                    sync_queue(),
                    f"--pool={args.pool}",
                    f"--concurrency={args.concurrency}",
                    "--without-gossip",
                    "--without-mingle",
                ]
                processes.append(
                    start(f"sync {number}", command, env, "console", logs / f"worker{number}.log")
                )
            command = [*celery, "worker", "--loglevel=INFO", "-n", "fleet-other@%h", "-Q", "celery"]
            command += ["--pool=prefork", "--concurrency=2", "--without-gossip", "--without-mingle"]
            processes.append(start("worker", command, env, "console", logs / "worker0.log"))
            schedule = logs / "beat-schedule"
            processes.append(
                start(
                    "beat",
                    [*celery, "beat", "--loglevel=WARNING", "-s", str(schedule)],
                    env,
                    "console",
                    logs / "beat.log",
                )
            )
            started = time.monotonic()
            for number in range(args.workers + 1):
                log = logs / f"worker{number}.log"
                if not wait_for(lambda log=log: b" ready." in log.read_bytes(), 600, every=1.0):
                    raise RuntimeError(f"worker {number} did not start: see {log}")
            print(f"  {args.workers} worker(s) ready in {time.monotonic() - started:.0f} s", flush=True)
            sampler = Sampler(processes)
            sampler.start()
            report(args, emulator, sampler, len(sizes))
        finally:
            if sampler is not None:
                sampler.stopping.set()
                sampler.join(timeout=10)
            for process in reversed(processes):
                process.stop()
            _purge_queue()
        if sampler is not None:
            print_processes(processes, sampler, args)


def sync_queue() -> str:
    from django.conf import settings

    return str(getattr(settings, "CHROMEOS_SYNC_QUEUE", "celery"))


def _purge_queue() -> None:
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    for key in client.scan_iter(f"{PREFIX}:*"):
        client.delete(key)


TOTALS: dict[str, float] = {}


def report(args: argparse.Namespace, emulator: Emulator, sampler: Sampler, tenants: int) -> None:
    from django.utils import timezone

    from chromeos.models import GoogleIntegration, SyncRun

    print(
        "\nphase              | runs       | failed     | skipped      | start lag | duration | devices synced | Google | queue, db",
        flush=True,
    )
    started = timezone.now()
    google_before = google_counters(emulator)
    boot_cpu, boot_google_cpu = (
        _console_cpu(sampler),
        _google_cpu(sampler),
    )  # start-up and seeding: not syncing
    request_first_syncs()

    def first_syncs_done() -> bool:
        return not GoogleIntegration.unscoped.filter(first_sync_at__isnull=True).exists() or not (
            SyncRun.unscoped.filter(status__in=["queued", "running"]).exists()
        )

    wait_for(first_syncs_done, args.first_sync_timeout)
    first_end = timezone.now()
    google_after = google_counters(emulator)
    broker, queued = sampler.depth_between(started.timestamp(), first_end.timestamp())
    runs = runs_between(started, first_end + timedelta(seconds=1), "manual")
    TOTALS["first_devices"] = print_runs(
        "first sync",
        runs,
        tenants,
        None,
        f"wall {(first_end - started).total_seconds():.0f} s | Google {_google(diff(google_after, google_before))} "
        f"| queue max {broker} msgs / {queued} runs | db {database_mb():,.0f} MB",
    )
    TOTALS["first_cpu"] = _console_cpu(sampler) - boot_cpu
    TOTALS["first_google_cpu"] = _google_cpu(sampler) - boot_google_cpu

    # Each tenant's first scheduled slot comes an interval after its first sync: the interval right after the
    # first syncs is the settling one (cycle 0, printed, partial by design); from then on every window of one
    # interval holds exactly one slot of every tenant, started by the dispatcher alone.
    interval = args.cycle_seconds
    boundaries = [first_end + timedelta(seconds=k * interval) for k in range(args.cycles + 2)]
    snapshots: list[tuple[dict[str, int], float, float, float]] = []
    sizes: list[dict[str, float]] = []
    # This database's WAL position at each boundary: one temporary replication slot (this session's) keeps the
    # WAL from the first one until the cycles are read back at the end (benchmarks/wal.py).
    positions: list[str] = []
    for boundary in boundaries:
        time.sleep(max(0.0, (boundary - timezone.now()).total_seconds()))
        positions.append(wal_position())
        sizes.append(table_sizes())
        snapshots.append(
            (google_counters(emulator), database_mb(), _console_cpu(sampler), _google_cpu(sampler))
        )
    # Runs created in the last cycle may still be running: let them finish (at most one more interval).
    wait_for(
        lambda: (
            not SyncRun.unscoped.filter(
                created_at__lt=boundaries[-1], status__in=["queued", "running"]
            ).exists()
        ),
        interval,
        every=2.0,
    )
    cycle_devices = 0
    cycle_wal: list[tuple[str, int, int, WalReading]] = []
    readings = wal_reading_between(positions)
    for cycle in range(args.cycles + 1):
        begin, end = boundaries[cycle], boundaries[cycle + 1]
        broker, queued = sampler.depth_between(begin.timestamp(), end.timestamp())
        label = f"cycle {cycle}" + (" (settling)" if cycle == 0 else "")
        cycle_runs = runs_between(begin, end, "scheduled")
        devices = print_runs(
            label,
            cycle_runs,
            tenants,
            interval,
            f"Google {_google(diff(snapshots[cycle + 1][0], snapshots[cycle][0]))} | queue max {broker} msgs / "
            f"{queued} runs | db {snapshots[cycle + 1][1]:,.0f} MB",
        )
        cycle_wal.append((label, len(cycle_runs), devices, readings[cycle]))
        if cycle:
            cycle_devices += devices
    print_wal(cycle_wal)
    print_table_sizes(
        ["after the first syncs", *(f"after cycle {cycle}" for cycle in range(args.cycles + 1))], sizes
    )
    TOTALS["cycle_devices"] = cycle_devices
    if args.cycles:
        TOTALS["cycle_cpu"] = snapshots[-1][2] - snapshots[1][2]
        TOTALS["cycle_google_cpu"] = snapshots[-1][3] - snapshots[1][3]


def print_wal(cycles: list[tuple[str, int, int, WalReading]]) -> None:
    """Each cycle's WAL (this database's records, by pg_waldump; ``*``: cluster-wide, not attributed), per sync
    and per 100,000 devices synced (issue 18: a no-change cycle under 5 MB per 100,000), and its top tables. The
    WAL of a window is everything written in it: runs started in the cycle before that end in this one count
    here, the reaper's and the dispatcher's writes too."""
    print("\nWAL of this database per cycle:")
    for label, runs, devices, wal in cycles:
        mark = "" if wal.source == "pg_waldump" else "*"
        shares = (
            f"{wal.bytes / runs / 1e3:,.1f} KB per sync, {wal.bytes / devices * 1e5 / 1e6:,.2f} MB per 100,000 devices"
            if runs and devices
            else "no sync"
        )
        print(
            f"  {label}: {wal.bytes / 1e6:,.2f} MB{mark} for {runs:,} runs, {devices:,} devices synced = "
            f"{shares} ({wal.label()})"
        )
        if wal.by_relation:
            print(
                "    by table: "
                + ", ".join(f"{name} {size / 1e6:.2f} MB" for name, size in wal.top_relations())
            )


def _google(counts: dict[str, int]) -> str:
    refused = {k: v for k, v in counts.items() if k != "calls" and v}
    return f"{counts.get('calls', 0):,} calls, refused {refused or 0}"


def _console_cpu(sampler: Sampler) -> float:
    for process in sampler.processes:
        process.sample()
    workers = sum(p.cpu_total() for p in sampler.processes if p.role == "console")
    return workers + sum(sampler.backend_cpu.values())


def _google_cpu(sampler: Sampler) -> float:
    return sum(p.cpu_total() for p in sampler.processes if p.role == "google")


def print_processes(processes: list[Process], sampler: Sampler, args: argparse.Namespace) -> None:
    print("\npeak RSS (VmHWM) of every process:")
    for process in processes:
        peaks = sorted(process.peak_mb.values(), reverse=True)
        main_peak = process.peak_mb.get(process.popen.pid, 0.0)
        children = [v for pid, v in process.peak_mb.items() if pid != process.popen.pid]
        extra = (
            f"; {len(children)} children: max {max(children):.0f} MB, sum {sum(children):.0f} MB"
            if children
            else ""
        )
        print(f"  {process.name:<10} {main_peak:7.0f} MB{extra}" if peaks else f"  {process.name}: no sample")
    backends = len(sampler.backend_cpu)
    print(f"  PostgreSQL backends of the benchmark database: {backends}")
    for label, devices_key, cpu_key, google_key in (
        ("first syncs", "first_devices", "first_cpu", "first_google_cpu"),
        ("cycles", "cycle_devices", "cycle_cpu", "cycle_google_cpu"),
    ):
        devices = TOTALS.get(devices_key, 0)
        if devices:
            per_million = TOTALS[cpu_key] / devices * 1e6
            google = TOTALS[google_key] / devices * 1e6
            print(
                f"CPU, {label}: console {TOTALS[cpu_key]:,.0f} s for {devices:,} devices = {per_million:,.0f} s per "
                f"million devices (workers + beat + their PostgreSQL backends); emulator {google:,.0f} s per million"
            )
    print(f"load average at the end: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
