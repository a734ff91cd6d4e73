"""100,000 devices served from memory, paged through with the real client.

The time it takes is printed, not asserted: on a shared 2-core machine a timed assertion only measures the
neighbours (benchmarks/ measure speed)."""

from __future__ import annotations

import time

import pytest

from google_emulator.bench import list_everything
from google_emulator.server import EmulatorServer
from google_emulator.testing import EmulatorHandle

DEVICES = 100_000


@pytest.mark.slow
def test_full_listing_of_100k_devices_with_the_real_client(capsys):
    started = time.perf_counter()
    server = EmulatorServer(devices=DEVICES, org_units=40, seed=5).start()
    seeded = time.perf_counter() - started
    try:
        listing = list_everything(EmulatorHandle(server), projection="FULL", page_size=300)
    finally:
        server.stop()
    with capsys.disabled():
        print(
            f"\n[bench] seeded {DEVICES} devices in {seeded:.1f} s; FULL listing: {listing.pages} pages in {listing.seconds:.2f} s"
        )
    assert listing.devices == DEVICES
    assert listing.pages == 334
