"""Benchmark: which Celery pool runs the ChromeOS sync queue (issue 18, "sync as I/O-bound work").

Usage: ``.venv/bin/python benchmarks/sync_pool.py [--tenants 16] [--devices 3000] [--latency-ms 300:100]
[--pools prefork:2 prefork:8 threads:16 threads:32] [--keep-db]``

A sync spends most of its life waiting on Google; how many can one small machine run at once, and at what cost?
The Google emulator runs as its own process with ``--customers N`` (one Google customer per tenant, each with
``--devices`` devices) and Google-like latency on every device page (``--latency-ms MEAN[:SPREAD]``, 1/3 of it on
the other calls). One console tenant per customer, authorized, in a throwaway database (``DATABASE_URL``, default
``mdm_bench_pool``). Then, for each pool (``POOL:CONCURRENCY``; ``gevent:N`` if gevent is installed), on an
empty devices table:

1. a real ``celery worker -Q <the sync queue> --pool POOL --concurrency N`` is started (its own broker prefix);
2. every tenant's first full sync is queued at once, the way ``sync_request`` queues them (outbox → broker);
3. until all runs are finished, every 0.2 s: syncs in flight (runs RUNNING), RSS of each worker process;
4. then: wall time (first queued → last finished), mean sync duration, peak syncs in flight, peak RSS of the
   whole worker and of its largest process, RSS per slot (peak total / concurrency) and per busy slot
   ((peak total − idle total) / peak in flight), the worker's CPU seconds (every process of it), the emulator's,
   the machine's busy CPU seconds (worker + emulator + PostgreSQL + whatever else runs), and the load average.

The machine is shared: read the ratios between pools, not the seconds.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mdm_bench_pool")
# Our own queues on the shared Redis: no other worker takes our syncs, ours takes no one else's.
os.environ["CELERY_BROKER_KEY_PREFIX"] = f"bench-pool-{uuid.uuid4().hex[:8]}:"
os.environ.setdefault("GOOGLE_QUOTA_KEY_PREFIX", f"bench-pool-{uuid.uuid4().hex[:8]}:google-quota")

from bench_db import migrated_database  # noqa: E402
from emulator_control import EmulatorControl  # noqa: E402
from sync import SCOPES, busy_cpu_seconds, free_port  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- the emulator ------------------------------------------------------------------------------------------------
class Emulator(EmulatorControl):
    control_timeout = 900

    def __init__(self, customers: int, devices: int, latency: str) -> None:

        mean, _, spread = latency.partition(":")
        other = f"{float(mean) / 3:g}:{float(spread or 0) / 3:g}"
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        command = [
            sys.executable, "-m", "google_emulator", "--port", str(self.port), "--customers", str(customers),
            "--devices", str(devices), "--latency", f"directory.chromeosdevices.list={latency}",
            "--latency", f"*={other}",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.wait_until_up(900)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def setup_tenants(emulator: Emulator) -> list[int]:
    from datetime import timedelta

    from django.utils import timezone

    from chromeos.models import GoogleIntegration
    from mdm.models import Tenant

    ids = []
    for position, customer in enumerate(emulator.control("GET", "/customers")["customers"], start=1):
        token = emulator.control("POST", "/oauth/grant", {"scopes": SCOPES, "user": customer["admin"]})
        tenant, _ = Tenant.objects.get_or_create(
            slug=f"bench-{position}", defaults={"name": f"Bench {position}"}
        )
        GoogleIntegration.unscoped.filter(tenant=tenant).delete()
        integration = GoogleIntegration.unscoped.create(
            tenant=tenant,
            status="active",
            customer_id=customer["id"],
            domain=customer["domain"],
            admin_email=customer["admin"],
            authorized_at=timezone.now(),
            scopes=token["scope"].split(),
            refresh_token=token["refresh_token"],
            access_token=token["access_token"],
            access_token_expires_at=timezone.now() + timedelta(seconds=int(token["expires_in"])),
        )
        ids.append(integration.pk)
    return ids


def clear() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE chromeos_chromeosdevice, chromeos_syncrun CASCADE")
        cursor.execute("VACUUM ANALYZE chromeos_chromeosdevice")


# -- the worker's processes ----------------------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _status(pid: int, key: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


@dataclass
class Result:
    pool: str
    concurrency: int
    syncs: int = 0
    succeeded: int = 0
    devices: int = 0
    wall_s: float = 0.0
    mean_sync_s: float = 0.0
    peak_in_flight: int = 0
    idle_rss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    peak_process_rss_mb: float = 0.0
    processes: int = 0
    worker_cpu_s: float = 0.0
    emulator_cpu_s: float = 0.0
    machine_cpu_s: float = 0.0
    load: tuple[str, str] = ("", "")
    samples: list[int] = field(default_factory=list)


def run_pool(
    pool: str, concurrency: int, integration_ids: list[int], emulator: Emulator, log: Path
) -> Result:
    from django.db import connection
    from django.db.models import Max, Min

    from chromeos.models import GoogleIntegration, SyncRun, SyncStatus, SyncTrigger
    from chromeos.services.sync import sync_request
    from mdm.tenancy import tenant_context

    clear()
    result = Result(pool, concurrency, load=(Path("/proc/loadavg").read_text().split()[0], ""))
    env = {
        **os.environ,
        "GOOGLE_EMULATOR_HOST": emulator.host,
        "DATABASE_CONN_MAX_AGE": "0",
        "LOG_LEVEL": "WARNING",
    }
    command = [
        sys.executable, "-m", "celery", "-A", "celery_app", "worker", "--queues", _sync_queue(),
        f"--pool={pool}", f"--concurrency={concurrency}", "--loglevel=INFO", "--without-gossip",
        "--without-mingle", "--without-heartbeat", f"--hostname=bench-{pool}-{concurrency}-{uuid.uuid4().hex[:4]}@%h",
    ]  # fmt: skip
    worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while "ready" not in log.read_text():
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        time.sleep(1.0)  # prefork children finish importing after "ready"

        def pids() -> list[int]:
            return [worker.pid, *_children(worker.pid)]

        result.idle_rss_mb = sum(_status(p, "VmRSS") for p in pids())
        cpu_before = busy_cpu_seconds()
        emulator_before = _cpu_seconds(emulator.process.pid)
        for integration in GoogleIntegration.unscoped.select_related("tenant").filter(pk__in=integration_ids):
            with tenant_context(integration.tenant):
                sync_request(integration=integration, trigger=SyncTrigger.MANUAL)
        active = (SyncStatus.QUEUED, SyncStatus.RUNNING)
        deadline = time.monotonic() + 3600
        while True:
            running = SyncRun.unscoped.filter(status=SyncStatus.RUNNING).count()
            result.samples.append(running)
            result.peak_in_flight = max(result.peak_in_flight, running)
            live = pids()
            result.peak_rss_mb = max(result.peak_rss_mb, sum(_status(p, "VmRSS") for p in live))
            if not SyncRun.unscoped.filter(status__in=active).exists():
                break
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker died or too slow: {log.read_text()[-2000:]}")
            connection.close()
            time.sleep(0.2)
        live = pids()
        result.processes = len(live)
        result.worker_cpu_s = sum(_cpu_seconds(p) for p in live)
        result.peak_process_rss_mb = max(_status(p, "VmHWM") for p in live)
        result.machine_cpu_s = busy_cpu_seconds() - cpu_before
        result.emulator_cpu_s = _cpu_seconds(emulator.process.pid) - emulator_before
        runs = SyncRun.unscoped.all()
        times = runs.aggregate(first=Min("created_at"), last=Max("finished_at"))
        result.wall_s = (times["last"] - times["first"]).total_seconds()
        finished = list(runs.values_list("status", "started_at", "finished_at", "devices_seen"))
        result.syncs = len(finished)
        result.succeeded = sum(1 for status, *_ in finished if status == SyncStatus.SUCCEEDED)
        result.devices = sum(seen or 0 for *_, seen in finished)
        durations = [(end - start).total_seconds() for _s, start, end, _d in finished if start and end]
        result.mean_sync_s = sum(durations) / len(durations) if durations else 0.0
        result.load = (result.load[0], Path("/proc/loadavg").read_text().split()[0])
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)
    return result


def _sync_queue() -> str:
    from django.conf import settings

    return str(settings.CHROMEOS_SYNC_QUEUE)


HEADER = (
    f"{'pool':<8} | {'slots':>5} | {'ok/syncs':>8} | {'wall s':>7} | {'sync s':>6} | {'in flight':>9} | "
    f"{'procs':>5} | {'RSS idle→peak MB':>16} | {'max proc MB':>11} | {'MB/slot':>7} | {'MB/busy slot':>12} | "
    f"{'worker CPU s':>12} | {'emulator CPU s':>14} | {'machine CPU s':>13} | {'load 1m':>11}"
)


def format_row(r: Result) -> str:
    per_busy = (r.peak_rss_mb - r.idle_rss_mb) / r.peak_in_flight if r.peak_in_flight else 0.0
    return (
        f"{r.pool:<8} | {r.concurrency:>5} | {r.succeeded:>3}/{r.syncs:<4} | {r.wall_s:>7.1f} | "
        f"{r.mean_sync_s:>6.1f} | {r.peak_in_flight:>9} | {r.processes:>5} | "
        f"{r.idle_rss_mb:>7.0f} → {r.peak_rss_mb:>6.0f} | {r.peak_process_rss_mb:>11.0f} | "
        f"{r.peak_rss_mb / r.concurrency:>7.1f} | {per_busy:>12.1f} | {r.worker_cpu_s:>12.1f} | "
        f"{r.emulator_cpu_s:>14.1f} | {r.machine_cpu_s:>13.1f} | {r.load[0]:>5}→{r.load[1]:<5}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=16)
    parser.add_argument("--devices", type=int, default=3000, help="devices per tenant")
    parser.add_argument("--latency-ms", default="300:100", metavar="MEAN[:SPREAD]", help="per device page")
    parser.add_argument("--pools", nargs="+", default=["prefork:2", "prefork:8", "threads:16", "threads:32"])
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    pools = []
    for spec in args.pools:
        name, _, slots = spec.partition(":")
        if name == "gevent" and importlib.util.find_spec("gevent") is None:
            print(f"skipping {spec}: gevent is not installed")
            continue
        pools.append((name, int(slots or 1)))

    scratch = Path(tempfile.mkdtemp(prefix="bench-sync-pool-"))
    results = []
    with migrated_database(keep=args.keep_db):
        print(
            f"emulator: {args.tenants} customers × {args.devices:,} devices, {args.latency_ms} ms per page",
            flush=True,
        )
        emulator = Emulator(args.tenants, args.devices, args.latency_ms)
        try:
            ids = setup_tenants(emulator)
            pages = -(-args.devices // 300)
            mean = float(args.latency_ms.partition(":")[0])
            print(
                f"one sync's listing floor: {pages} pages × {mean:g} ms = {pages * mean / 1000:.1f} s",
                flush=True,
            )
            print(HEADER, flush=True)
            for name, slots in pools:
                result = run_pool(name, slots, ids, emulator, scratch / f"worker-{name}-{slots}.log")
                results.append(result)
                print(format_row(result), flush=True)
        finally:
            emulator.stop()
    print("\n" + HEADER)
    print("-" * len(HEADER))
    for result in results:
        print(format_row(result))
    print(f"(worker logs: {scratch})")


if __name__ == "__main__":
    main()
