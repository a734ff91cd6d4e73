"""The parallel listing's plan, proof and threads, on a fake fleet (no Google, no database): the sync's own tests
(test_sync_parallel_listing.py) drive them against the emulator."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from chromeos.google.errors import AuthRevoked, TransientGoogleError
from chromeos.services.sync.partitions import (
    ClientPool,
    ParallelListing,
    Partition,
    PartitionOutcome,
    count_concurrently,
    listing_proof,
    plan_partitions,
)

# path -> devices in that OU alone
FLEET = {
    "/": 40,
    "/A": 10,
    "/A/x": 300,
    "/A/y": 250,
    "/A/y/deep": 5,
    "/B": 500,
    "/C": 20,
    "/C/c": 30,
    "/D": 0,
}


def units(paths: Sequence[str]) -> list[dict[str, Any]]:
    return [{"orgUnitId": f"id:{p}", "orgUnitPath": p} for p in paths]


class FakeGoogle:
    def __init__(self, fleet: dict[str, int]) -> None:
        self.fleet = dict(fleet)
        self.calls: list[tuple[str, bool]] = []

    def count_one(self, org_unit_id: str, children: bool) -> int:
        self.calls.append((org_unit_id, children))
        path = org_unit_id.removeprefix("id:")
        if children:
            prefix = path.rstrip("/") + "/"
            return sum(n for p, n in self.fleet.items() if p == path or p.startswith(prefix))
        return self.fleet[path]

    def count(self, asked: Sequence[tuple[str, bool]]) -> list[int]:
        return [self.count_one(ou, children) for ou, children in asked]

    def total(self) -> int:
        return sum(self.fleet.values())


def covering(partitions: list[Partition], path: str) -> list[Partition]:
    def covers(p: Partition) -> bool:
        if p.path == path:
            return True
        return p.with_children and (p.path == "/" or path.startswith(p.path + "/"))

    return [p for p in partitions if covers(p)]


def test_the_plan_covers_every_org_unit_once_and_adds_up() -> None:
    google = FakeGoogle(FLEET)
    plan = plan_partitions(units(list(FLEET)), google.total(), google.count, chunk=100, budget=100)
    assert plan is not None
    assert sum(p.expected for p in plan.partitions) == google.total()
    for path, devices in FLEET.items():
        if devices:
            assert len(covering(plan.partitions, path)) == 1, path
    assert [p.expected for p in plan.partitions] == sorted(
        (p.expected for p in plan.partitions), reverse=True
    )
    by_path = {p.path: p for p in plan.partitions}
    # Big subtrees are split down to their OUs alone; small ones stay whole (one listing, new OUs inside covered).
    assert by_path["/B"] == Partition("id:/B", "/B", False, 500)
    assert by_path["/A"].with_children is False and by_path["/A/x"].expected == 300
    assert by_path["/C"] == Partition("id:/C", "/C", True, 50)
    assert by_path["/A/y"] == Partition("id:/A/y", "/A/y", False, 250)
    assert by_path["/A/y/deep"].expected == 5
    assert "/D" not in by_path  # nothing to list
    assert plan.counts == len(google.calls)


def test_a_fleet_smaller_than_a_chunk_is_one_partition() -> None:
    google = FakeGoogle(FLEET)
    plan = plan_partitions(units(list(FLEET)), google.total(), google.count, chunk=10_000, budget=100)
    assert plan is not None
    assert plan.partitions == [Partition("id:/", "/", True, google.total())]
    assert google.calls == []


def test_the_budget_caps_the_counts_and_leaves_the_rest_whole() -> None:
    google = FakeGoogle(FLEET)
    plan = plan_partitions(units(list(FLEET)), google.total(), google.count, chunk=100, budget=5)
    assert plan is not None
    assert len(google.calls) == plan.counts == 5  # the root and its four children
    assert sum(p.expected for p in plan.partitions) == google.total()
    assert {p.path: p.with_children for p in plan.partitions}["/A"] is True


def test_counts_that_do_not_add_up_give_no_plan() -> None:
    google = FakeGoogle(FLEET)
    # A device enrolled after the customer's count: the root's children and itself count one more.
    google.fleet["/B"] += 1
    assert (
        plan_partitions(units(list(FLEET)), sum(FLEET.values()), google.count, chunk=100, budget=100) is None
    )


@pytest.mark.parametrize("paths", [["/A", "/B"], ["/", "/A/x"]])
def test_a_tree_without_root_or_with_a_hole_gives_no_plan(paths: list[str]) -> None:
    google = FakeGoogle(FLEET)
    assert plan_partitions(units(paths), 100, google.count, chunk=1, budget=100) is None


# -- the proof -------------------------------------------------------------------------------------------------
PARTS = [Partition("id:a", "/a", False, 5), Partition("id:b", "/b", True, 3)]


def outcomes(*pairs: tuple[int, int | None]) -> list[PartitionOutcome]:
    return [PartitionOutcome(listed=n, count_after=after, done=after is not None) for n, after in pairs]


def test_a_listing_that_adds_up_is_proven() -> None:
    assert (
        listing_proof(
            total_before=8, total_after=8, partitions=PARTS, outcomes=outcomes((5, 5), (3, 3)), shared=0
        )
        == []
    )


@pytest.mark.parametrize(
    ("total_before", "total_after", "done", "shared", "expected"),
    [
        (9, 9, ((5, 5), (3, 3)), 0, "partitions counted 8 of 9"),  # an OU nobody planned
        (8, 9, ((5, 5), (3, 3)), 0, "customer count 8 then 9"),  # a device enrolled meanwhile
        (8, 8, ((5, 5), (3, 3)), 1, "1 devices listed in two org units"),
        (
            8,
            8,
            ((4, 4), (3, 3)),
            0,
            "/a: counted 5, listed 4, then counted 4",
        ),  # moved out before its listing
        (8, 8, ((5, 4), (3, 4)), 0, "/a: counted 5, listed 5, then counted 4"),  # moved out after it
        (8, 8, ((5, None), (3, 3)), 0, "/a: not listed to the end"),  # a count or page that failed
    ],
)
def test_each_mismatch_is_a_reason(
    total_before: int, total_after: int, done: Any, shared: int, expected: str
) -> None:
    reasons = listing_proof(
        total_before=total_before,
        total_after=total_after,
        partitions=PARTS,
        outcomes=outcomes(*done),
        shared=shared,
    )
    assert expected in reasons


# -- the threads -----------------------------------------------------------------------------------------------
class FakeClient:
    quota_waits = 0
    quota_wait_seconds = 0.0


def fleet_pages(devices: dict[str, list[str]], page: int = 2) -> Any:
    def list_pages(client: Any, partition: Partition) -> Iterator[list[Any]]:
        ids = devices[partition.path]
        for start in range(0, len(ids), page):
            yield [{"deviceId": i} for i in ids[start : start + page]]

    return list_pages


def run_listing(
    devices: dict[str, list[str]], count: Any, list_pages: Any = None
) -> tuple[ParallelListing, list]:
    parts = [Partition(f"id:{p}", p, False, len(ids)) for p, ids in devices.items()]
    with ThreadPoolExecutor(max_workers=3) as executor:
        pool = ClientPool(FakeClient)  # type: ignore[arg-type]
        listing = ParallelListing(
            parts,
            pool=pool,
            executor=executor,
            list_pages=list_pages or fleet_pages(devices),
            count=count,
        )
        got = []
        try:
            for page in listing:
                got.extend(d["deviceId"] for d in page)
        finally:
            listing.close()
    return listing, got


def test_the_threads_list_every_partition_and_count_it_after() -> None:
    devices = {f"/ou{i}": [f"d{i}-{j}" for j in range(i + 1)] for i in range(7)}
    listing, got = run_listing(devices, lambda client, ou, children: len(devices[ou.removeprefix("id:")]))
    assert sorted(got) == sorted(d for ids in devices.values() for d in ids)
    assert [o.listed for o in listing.outcomes] == [len(ids) for ids in devices.values()]
    assert all(o.done and o.count_after == o.listed for o in listing.outcomes)
    assert listing.shared == 0 and listing.failed is None
    assert listing.repeats == 0


def test_a_device_in_two_partitions_and_a_repeated_page_are_told_apart() -> None:
    devices = {"/a": ["x", "y", "x"], "/b": ["z", "y"]}
    listing, _got = run_listing(devices, lambda client, ou, children: 2)
    assert listing.shared == 1  # y
    assert sum(o.listed for o in listing.outcomes) == 3  # x once, y once (wherever first), z
    assert listing.repeats == 1  # x, twice in its own partition's pages


def test_a_google_error_ends_the_listing_unproven_and_a_refused_grant_is_raised() -> None:
    devices = {"/a": ["x"], "/b": ["y"]}

    def failing_count(client: Any, ou: str, children: bool) -> int:
        if ou == "id:/b":
            raise TransientGoogleError("backend", status=503)
        return 1

    listing, _got = run_listing(devices, failing_count)
    assert isinstance(listing.failed, TransientGoogleError)
    assert not listing.outcomes[1].done

    def refused(client: Any, partition: Partition) -> Iterator[list[Any]]:
        raise AuthRevoked("invalid_grant", status=400, reason="invalid_grant")
        yield []

    with pytest.raises(AuthRevoked):
        run_listing(devices, lambda *a: 1, list_pages=refused)


def test_counts_run_on_the_pools_threads_each_with_its_own_client() -> None:
    made: list[object] = []

    def make() -> Any:
        client = FakeClient()
        made.append(client)
        return client

    pool = ClientPool(make)
    seen: list[int] = []
    with ThreadPoolExecutor(max_workers=3) as executor:
        answers = count_concurrently(
            executor,
            pool,
            lambda client, ou, children: seen.append(id(client)) or int(ou),  # type: ignore[func-returns-value]
            [(str(i), False) for i in range(12)],
        )
    assert answers == list(range(12))
    assert 1 <= len(made) <= 3 and len(pool.clients) == len(made)
    assert set(seen) <= {id(c) for c in made}
