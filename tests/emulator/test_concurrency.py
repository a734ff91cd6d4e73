"""The server is threaded: concurrent listings and mutations must neither fail nor corrupt the state."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from google_emulator.bench import list_everything


@pytest.mark.google_emulator(devices=600)
def test_parallel_listings_while_the_domain_changes(emulator):
    def lister(_: int) -> int:
        return list_everything(emulator, projection="BASIC", page_size=50).devices

    def mutator(_: int) -> None:
        for _ in range(10):
            emulator.control("POST", "/devices/change", {"count": 20})
            emulator.control("POST", "/devices/move", {"count": 10, "org_unit_path": "/Paris"})

    with ThreadPoolExecutor(max_workers=6) as pool:
        listings = [pool.submit(lister, i) for i in range(4)]
        changes = [pool.submit(mutator, i) for i in range(2)]
        counts = [f.result(timeout=60) for f in listings]
        for change in changes:
            change.result(timeout=60)
    assert counts == [600] * 4  # changes and moves, no deletions: every listing is complete
    assert all(r["status"] == 200 for r in emulator.requests())
