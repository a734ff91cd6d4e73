"""Fixtures of the fault suite: the Google emulator and an authorized integration (as in ``tests/chromeos``),
the private slapd (as in ``tests/ldap``), a Redis and real Celery workers of the test's own, and the seeds.

``FAULT_SEEDS=N`` runs the long variant: N seeded kills per job kind instead of one, and prints the figures
(kills tried, jobs recovered, time to recover) at the end of the session.
"""

from __future__ import annotations

import os
import statistics
from typing import Any

from google_emulator.pytest_plugin import (  # noqa: F401 - fixtures and marker registration
    google_emulator,
    google_emulator_server,
    pytest_configure,
)
from tests.chromeos.conftest import (  # noqa: F401 - fixtures
    broker,
    broker_down,
    emulator_settings,
    google_integration,
    workers,
)
from tests.ldap.conftest import demo_dir, make_directory, slapd  # noqa: F401 - fixtures


def fault_seeds() -> list[int]:
    """The seeds of the kills: one by default (``make test``), ``FAULT_SEEDS`` of them in the long variant."""
    return list(range(1, int(os.environ.get("FAULT_SEEDS", "1") or "1") + 1))


# Filled by the kill tests: one entry per kill tried.
KILLS: list[dict[str, Any]] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not KILLS:
        return
    write = terminalreporter.write_line
    load = os.getloadavg()
    write("")
    write(f"fault suite: {len(KILLS)} kills tried, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    for name in sorted({k["kind"] for k in KILLS}):
        rows = [k for k in KILLS if k["kind"] == name]
        # Time to recover: from the kill to the job's end, for the kills that landed while it ran.
        times = [k["recovered_in"] for k in rows if k["recovered"] and k["mid_job"]]
        mid = sum(1 for k in rows if k["mid_job"])
        recovered = sum(1 for k in rows if k["recovered"])
        figures = f"max {max(times):.1f} s, median {statistics.median(times):.1f} s" if times else "-"
        write(
            f"  {name:16} kills {len(rows):3}  landed mid-job {mid:3}  jobs ended {recovered:3}  "
            f"time to recover: {figures}"
        )
