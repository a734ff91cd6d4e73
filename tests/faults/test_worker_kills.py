"""The whole worker (parent and pool child) SIGKILLed at a seeded random point of each kind of job; a new
worker starts and beat's reaper ticks. Invariants, on every row and seed:

* the job ends (done, failed with a reason, or cancelled) within a bound (``RECOVERY_BOUND``; in production
  the detection delays are minutes: ``Kind.shorten`` makes them seconds in this process);
* Google accepted each item at most once (the emulator's request log): an item whose answer was lost with
  the worker is failed « résultat inconnu », never re-sent;
* nothing was removed or unassigned that the admin did not ask for (device, OU, assignment, LDAP rows: the
  same counts, or, for the job meant to remove them, all or nothing).

``FAULT_SEEDS=N`` (long variant): N seeds per kind; the figures (kills tried, landed mid-job, recovered, time
to recover) are printed at the end of the session.
"""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from tests.faults.conftest import KILLS, fault_seeds
from tests.faults.kinds import KINDS, other_writes, wait_until_ended
from tests.processes import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("fault-suite")]

RECOVERY_BOUND = 120.0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("seed", fault_seeds())
@pytest.mark.parametrize("kind_name", list(KINDS))
def test_worker_killed_at_a_random_point_the_job_ends_and_nothing_is_done_twice(
    kind_name: str,
    seed: int,
    request: pytest.FixtureRequest,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    workers: Any,
) -> None:
    kind = KINDS[kind_name]
    world = kind.build(request)
    kind.shorten(settings, monkeypatch)
    if kind.google_method and kind.slow_ms:
        world.emulator.add_fault(method=kind.google_method, delay_ms=kind.slow_ms, count=None)
    before = kind.kept(world)
    first = workers()
    world.mark()

    pk = kind.start(world)
    wait_for(lambda: "received" in first.log_path.read_text(), 60, "the worker to take the job")
    time.sleep(random.Random(f"{kind_name}-{seed}").uniform(0, kind.kill_window))
    first.kill()
    killed = time.monotonic()
    state_at_kill = kind.state(world, pk)
    print(f"\n{kind_name} seed={seed}: killed in state {state_at_kill}", end="")
    workers()
    mid_job = state_at_kill not in kind.ended
    kill = {"kind": kind_name, "seed": seed, "mid_job": mid_job, "recovered": False, "recovered_in": 0.0}
    KILLS.append(kill)
    state = wait_until_ended(kind, world, pk, RECOVERY_BOUND)
    recovered_in = time.monotonic() - killed if mid_job else 0.0
    kill.update(recovered=True, recovered_in=recovered_in)
    print(f"; {state} {recovered_in:.1f} s later")

    if state not in kind.succeeded:
        assert kind.reason(world, pk), (kind_name, state)
    applied = kind.applied(world)
    assert all(n == 1 for n in applied.values()), applied
    if state in kind.succeeded:
        assert len(applied) == kind.items(world), applied
    assert other_writes(world, kind) == []
    assert kind.kept(world) == kind.expected_kept(world, before, state)
