"""Measure a full FULL-projection listing through google-api-python-client.

``python -m google_emulator.bench --devices 100000`` prints the seeding time, then the time of a
cold listing (device JSON encoded on first use) and of a warm one (served from the cache).

``python -m google_emulator.bench --customers 1000 --devices 1000`` (the fleet's memory): seeds that many customers
of that many devices each in one emulator, with no device cache, and prints the resident memory (VmRSS, VmHWM)
after seeding and after listing every device of the last customer and of the first one.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from google_emulator.server import EmulatorServer
from google_emulator.state import EmulatorConfig
from google_emulator.testing import EmulatorHandle


@dataclass
class Listing:
    devices: int
    pages: int
    seconds: float


def list_everything(
    handle: EmulatorHandle, projection: str = "FULL", page_size: int = 300, credentials: Any = None
) -> Listing:
    directory = handle.directory(credentials)
    devices = directory.chromeosdevices()
    started = time.perf_counter()
    request = devices.list(customerId="my_customer", projection=projection, maxResults=page_size)
    count = pages = 0
    while request is not None:
        page = request.execute()
        count += len(page.get("chromeosdevices", []))
        pages += 1
        request = devices.list_next(request, page)
    return Listing(count, pages, time.perf_counter() - started)


class RemoteServer:
    """Enough of EmulatorServer for EmulatorHandle to drive an emulator running elsewhere."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.url = f"http://{host}"
        self.state = SimpleNamespace(config=EmulatorConfig())


def memory_mb() -> str:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    rss, peak = (int(status[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM"))
    return f"RSS {rss:,.0f} MB (peak {peak:,.0f} MB)"


def bench_customers(customers: int, devices: int, seed: int) -> None:
    started = time.perf_counter()
    server = EmulatorServer(devices=devices, customers=customers, seed=seed, device_cache=0).start()
    total = sum(len(c.devices) for c in server.state.customers)
    print(
        f"seeded {customers:,} customers, {total:,} devices in {time.perf_counter() - started:.1f} s: {memory_mb()}"
    )
    try:
        handle = EmulatorHandle(server)
        for number in (customers, 1):
            grant = handle.grant(customer=str(number))
            listing = list_everything(
                handle, credentials=handle.credentials(refresh_token=grant["refresh_token"])
            )
            print(
                f"customer {number}: {listing.devices:,} devices, {listing.pages} pages of FULL in "
                f"{listing.seconds:.2f} s: {memory_mb()}"
            )
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--customers", type=int, help="that many customers of --devices each (memory)")
    parser.add_argument(
        "--emulator-host", help="bench a running emulator (host:port) instead of an in-process one"
    )
    args = parser.parse_args()
    if args.customers:
        bench_customers(args.customers, args.devices, args.seed)
        return
    if args.emulator_host:
        handle = EmulatorHandle(RemoteServer(args.emulator_host))  # type: ignore[arg-type]
        for label in ("first", "second"):
            listing = list_everything(handle)
            print(
                f"{label}: {listing.devices} devices, {listing.pages} pages of FULL in {listing.seconds:.2f} s"
            )
        return
    started = time.perf_counter()
    server = EmulatorServer(devices=args.devices, org_units=40, seed=args.seed).start()
    print(f"seeded {args.devices} devices in {time.perf_counter() - started:.1f} s")
    try:
        handle = EmulatorHandle(server)
        for label in ("cold", "warm"):
            listing = list_everything(handle)
            print(
                f"{label}: {listing.devices} devices, {listing.pages} pages of FULL in {listing.seconds:.2f} s"
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
