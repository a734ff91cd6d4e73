"""The sync worker's garbage collector (ops/worker.py, ``OPS_WORKER_GC_THRESHOLD``), as a real ``celery worker`` starts."""

from __future__ import annotations

import gc
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from google_emulator.testing import EmulatorHandle
from ops.worker import tune_gc
from tests.processes import start_celery_worker, stop_process, wait_for


@pytest.mark.django_db(transaction=True)
@pytest.mark.google_emulator(devices=1)
def test_a_sync_worker_starts_with_its_collector_tuned(
    google_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """Issue 18: at Python's threshold (700) the collector ran ~3,500 times during a 100,000-device sync and
    held the GIL ~3 s of it, up to 0.13 s at a time, while the listing threads waited: the parallel listing took
    20.2 s instead of 19.0 s, a first sync 22.3 s instead of 20.0 s (benchmarks/sync.py)."""
    log = tmp_path / "worker.log"
    process = start_celery_worker(
        google_emulator,
        broker=settings.CELERY_BROKER_URL,
        prefix=f"mdm-gc-{uuid.uuid4().hex[:8]}:",
        log=log,
        name="gc",
        pool="threads",
        concurrency=2,
        queues="chromeos-sync",
        extra_env={"OPS_WORKER_GC_THRESHOLD": "40000,11,12"},
    )
    try:
        line = wait_for(
            lambda: next((x for x in log.read_text().splitlines() if "worker gc:" in x), None),
            10,
            "the worker's collector line",
        )
    finally:
        stop_process(process)
    assert "thresholds (40000, 11, 12)" in line
    frozen = int(line.split(", ")[-1].split()[0])
    assert frozen > 10_000  # Django, the apps and the libraries: never traversed again


def test_an_empty_threshold_leaves_pythons_collector_alone(settings: object) -> None:
    settings.OPS_WORKER_GC_THRESHOLD = ""  # type: ignore[attr-defined]
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    tune_gc()
    assert (gc.get_threshold(), gc.get_freeze_count()) == (before, frozen)
