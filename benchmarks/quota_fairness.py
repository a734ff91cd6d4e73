"""Benchmark: fairness of the quota governor's project bucket between a big and a small tenant (issue 18, point 3).

Usage: ``.venv/bin/python benchmarks/quota_fairness.py [--calls 200] [--rate 600] [--big-callers 8]``

Real Redis (``REDIS_URL``), no Google and no database: a project bucket of ``--rate`` calls a minute, 0.1 s deep;
a big tenant with ``--big-callers`` callers and a small tenant with one, every caller asking the governor in a
loop (``acquire`` then ``release``) until ``--calls`` calls were admitted in all. Run twice: first come, first
served (the fair queue switched off by making every waiter stale at once), then the fair queue. Prints the calls
admitted per second (against the bucket's rate: the fair queue must leave no capacity unused), the small tenant's
share of the calls (fair: 1/2), and its waits per call (p50, p99, max).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm.settings")


def run(*, fair: bool, calls: int, rate: int, big_callers: int) -> str:
    from django.conf import settings

    from chromeos.google import quota

    settings.GOOGLE_QUOTA_PROJECT_PER_MINUTE = rate
    settings.GOOGLE_QUOTA_BURST_SECONDS = 0.1
    settings.GOOGLE_QUOTA_USER_PER_MINUTE = rate * 100  # only the project bucket holds anyone back
    settings.GOOGLE_QUOTA_TENANT_CONCURRENCY = big_callers * 2
    settings.GOOGLE_QUOTA_KEY_PREFIX = f"bench-fair-{uuid.uuid4().hex[:8]}:google-quota"
    stale = quota.WAITER_STALE_SECONDS
    quota.WAITER_STALE_SECONDS = stale if fair else 0.0
    big = quota.Subject("bench-fair.apps", "admin@big.example", "C0big")
    small = quota.Subject("bench-fair.apps", "admin@small.example", "C0small")
    admitted = {big.customer: 0, small.customer: 0}
    small_waits: list[float] = []
    lock = threading.Lock()
    done = threading.Event()

    def caller(subject: quota.Subject) -> None:
        while not done.is_set():
            lease = quota.acquire(subject, max_wait=60)
            lease.release()
            with lock:
                admitted[subject.customer] += 1
                if subject is small:
                    small_waits.append(lease.waited_seconds)
                if sum(admitted.values()) >= calls:
                    done.set()

    threads = [threading.Thread(target=caller, args=(big,)) for _ in range(big_callers)]
    threads.append(threading.Thread(target=caller, args=(small,)))
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started
    quota.WAITER_STALE_SECONDS = stale
    total = sum(admitted.values())
    waits = sorted(small_waits) or [0.0]

    def pct(q: float) -> float:
        return waits[min(len(waits) - 1, int(q * len(waits)))] * 1000

    return (
        f"{'fair queue' if fair else 'first come':<10} | {total:>5} | {seconds:>6.1f} | "
        f"{total / seconds:>5.1f} / {rate / 60:<4.1f} | {admitted[small.customer] / total:>11.0%} | "
        f"{pct(0.5):>8.0f} | {pct(0.99):>8.0f} | {waits[-1] * 1000:>8.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rate", type=int, default=600, help="project bucket, calls per minute")
    parser.add_argument("--big-callers", type=int, default=8)
    args = parser.parse_args()
    import django

    django.setup()
    print(
        f"big tenant: {args.big_callers} callers, small tenant: 1 caller, project bucket {args.rate}/min; "
        f"load average {Path('/proc/loadavg').read_text().split()[0]}"
    )
    print(
        f"{'':<10} | {'calls':>5} | {'wall s':>6} | {'calls/s / rate':>14} | {'small share':>11} | "
        f"{'p50 ms':>8} | {'p99 ms':>8} | {'max ms':>8}"
    )
    for fair in (False, True):
        print(run(fair=fair, calls=args.calls, rate=args.rate, big_callers=args.big_callers), flush=True)


if __name__ == "__main__":
    main()
