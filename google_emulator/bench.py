"""Measure a full FULL-projection listing through google-api-python-client.

``python -m google_emulator.bench --devices 100000`` prints the seeding time, then the time of a
cold listing (device JSON encoded on first use) and of a warm one (served from the cache).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from types import SimpleNamespace

from google_emulator.server import EmulatorServer
from google_emulator.state import EmulatorConfig
from google_emulator.testing import EmulatorHandle


@dataclass
class Listing:
    devices: int
    pages: int
    seconds: float


def list_everything(handle: EmulatorHandle, projection: str = "FULL", page_size: int = 300) -> Listing:
    directory = handle.directory()
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--emulator-host", help="bench a running emulator (host:port) instead of an in-process one"
    )
    args = parser.parse_args()
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
