"""Google misbehaving during each kind of job: 429, 500, 503 and timeouts are retried, then the job succeeds
(or, when Google never comes back, fails with a reason within its retries); 501 fails at once with a reason.

Every row of ``kinds.KINDS`` that calls Google, against every fault; the job is started through its service
(outbox, then the task run inline on commit) and the emulator's fault book aims at the call that does the
job's work. Invariants checked on every row: the job ended; a failure carries a reason; Google accepted each
item at most once (a timed-out write re-sent only where re-sending the same write changes nothing); no other
kind's writes were sent; nothing was removed that the admin did not ask to remove.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.faults.kinds import GOOGLE_KINDS, KINDS, Kind, World, other_writes
from tests.processes import wait_for

# (fault for the emulator's fault book, does the job end in success?)
FAULTS: dict[str, tuple[dict[str, Any], bool]] = {
    "429": ({"status": 429, "count": 2, "retry_after": 1}, True),
    "500": ({"status": 500, "count": 2}, True),
    "503": ({"status": 503, "count": 2}, True),
    # The answer comes after the client stopped waiting (GOOGLE_HTTP_TIMEOUT_SECONDS below): Google did the
    # work, the client does not know it.
    "timeout": ({"delay_ms": 2500, "count": 1}, True),
    "501": ({"status": 501, "count": None}, False),
    "503 for good": ({"status": 503, "count": None}, False),
}


def _run(kind: Kind, world: World, capture: Any) -> int:
    world.mark()
    with capture(execute=True):
        return kind.start(world)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("kind_name", GOOGLE_KINDS)
def test_google_faults_during_each_kind_of_job(
    kind_name: str,
    fault: str,
    request: pytest.FixtureRequest,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    kind = KINDS[kind_name]
    world = kind.build(request)
    assert kind.google_method is not None
    settings.GOOGLE_RETRY_ATTEMPTS = 3
    if fault == "timeout":
        # Only this row waits so little: a loaded machine must not turn other answers into timeouts.
        settings.GOOGLE_HTTP_TIMEOUT_SECONDS = 1.0
    # Remote commands reach their final state at the first poll (the poll runs inline too).
    world.emulator.control("POST", "/commands/behaviour", {"step_seconds": 0})
    before = kind.kept(world)
    spec, succeeds = FAULTS[fault]
    if not succeeds:
        kind.last_attempt(monkeypatch)
    # A write whose answer never came may have been done: one that must not be done twice is not re-sent,
    # and its item fails with "résultat inconnu".
    in_doubt = fault == "timeout" and not kind.idempotent
    succeeds = succeeds and not in_doubt
    world.emulator.add_fault(method=kind.google_method, **spec)

    pk = _run(kind, world, django_capture_on_commit_callbacks)

    state = kind.state(world, pk)
    assert state in kind.ended, (kind_name, fault, state)
    calls = world.requests(kind.google_method)
    if succeeds:
        assert state in kind.succeeded, (kind_name, fault, state, kind.reason(world, pk))
    else:
        assert state not in kind.succeeded and kind.reason(world, pk), (kind_name, fault, state)
    if in_doubt:
        assert "Résultat inconnu, non renvoyée" in kind.reason(world, pk)
    if fault == "501":
        # Never retried: one call, answered 501, and the reason says so.
        assert [c["status"] for c in calls] == [501], calls
        assert "501" in kind.reason(world, pk)

    if fault == "timeout":
        # The late answer is logged once Google finished it: wait for it, so that it counts here (and never
        # lands in the next test's log).
        delay = FAULTS["timeout"][0]["delay_ms"]
        wait_for(
            lambda: any(r["duration_ms"] >= delay for r in world.requests(kind.google_method or "")),
            30,
            "the late answer",
        )
    applied = kind.applied(world)
    if kind.items(world) and (succeeds or in_doubt):
        assert len(applied) == kind.items(world), applied
    if fault == "timeout" and kind.idempotent:
        # The one write that timed out was done by Google and sent again (the same write): its items, and only
        # they, twice; a batch carries several items.
        assert all(n <= 2 for n in applied.values()), applied
    else:
        assert all(n == 1 for n in applied.values()), applied
    assert other_writes(world, kind) == []
    assert kind.kept(world) == kind.expected_kept(world, before, state)
