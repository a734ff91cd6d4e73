"""The broker lost, for each kind of job: at enqueue (Redis down when the admin starts the job) and in the
middle of a job (the test's own Redis stopped while a real worker runs it, then started again, empty).

At enqueue: the job row is committed and its message waits in the outbox; hours of outage fail nothing; when
Redis is back, the reaper's tick publishes it and the job runs once. Mid-job: the running job carries on
without the broker, what it hands over meanwhile waits in the outbox, and the job ends within a bound. Both:
every item applied at Google once, nothing removed that the admin did not ask to remove.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from mdm.jobs import jobs_reap, publication_pending
from tests.faults.kinds import KINDS, other_writes, wait_until_ended
from tests.processes import RedisServer, reset_pool, wait_for

# Longer than Celery's own publish retries (about a second): what the job publishes meanwhile really fails.
OUTAGE_SECONDS = 3.0


def _check(kind: Any, world: Any, pk: int, before: dict[str, int]) -> str:
    state = kind.state(world, pk)
    assert state in kind.succeeded, (kind.name, state, kind.reason(world, pk))
    applied = kind.applied(world)
    assert len(applied) == kind.items(world) and all(n == 1 for n in applied.values()), applied
    assert other_writes(world, kind) == []
    assert kind.kept(world) == kind.expected_kept(world, before, state)
    return state


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind_name", list(KINDS))
def test_broker_down_at_enqueue_the_job_waits_then_runs_once(
    kind_name: str, request: pytest.FixtureRequest, broker_down: Any
) -> None:
    kind = KINDS[kind_name]
    world = kind.build(request)
    world.emulator.control("POST", "/commands/behaviour", {"step_seconds": 0})
    before = kind.kept(world)
    world.mark()

    pk = kind.start(world)
    assert publication_pending(kind.outbox_kind, pk)
    # Hours of outage: the job is delayed, never failed as "never started" while its message waits.
    jobs_reap(timezone.now() + timedelta(hours=3))
    assert kind.state(world, pk) not in kind.ended and publication_pending(kind.outbox_kind, pk)
    assert world.requests(kind.google_method or "-") == []

    # Redis is back (eager again: the task runs when published); beat's next tick publishes the outbox.
    broker_down.conf.update(task_always_eager=True, broker_url=django_settings.CELERY_BROKER_URL)
    reset_pool(broker_down)
    assert jobs_reap(timezone.now() + timedelta(hours=3))["outbox"] >= 1
    assert not publication_pending(kind.outbox_kind, pk)
    _check(kind, world, pk, before)


@pytest.mark.slow
@pytest.mark.xdist_group("fault-suite")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind_name", list(KINDS))
def test_broker_lost_mid_job_the_job_ends_and_nothing_is_done_twice(
    kind_name: str, request: pytest.FixtureRequest, broker: tuple[RedisServer, str], workers: Any
) -> None:
    kind = KINDS[kind_name]
    world = kind.build(request)
    redis, _prefix = broker
    if kind.google_method and kind.slow_ms:
        world.emulator.add_fault(method=kind.google_method, delay_ms=kind.slow_ms, count=None)
    before = kind.kept(world)
    worker = workers()
    world.mark()

    pk = kind.start(world)
    wait_for(lambda: "received" in worker.log_path.read_text(), 60, "the worker to take the job")
    time.sleep(random.Random(kind_name).uniform(0, kind.kill_window / 2))
    redis.stop()  # no persistence: it comes back empty, as after a lost broker host
    stopped = time.monotonic()
    time.sleep(OUTAGE_SECONDS)
    redis.start()
    state = wait_until_ended(kind, world, pk, 120)
    print(f"\n{kind.name}: broker lost mid-job, ended {state} {time.monotonic() - stopped:.1f} s after")
    _check(kind, world, pk, before)
