"""Pytest fixtures for tests that need Google.

Use from a conftest.py: ``pytest_plugins = ["google_emulator.pytest_plugin"]`` (root conftest)
or import the fixtures: ``from google_emulator.pytest_plugin import google_emulator, google_emulator_server``.

* ``google_emulator_server`` (session): one server on a free port for the whole run.
* ``google_emulator`` (function): that server, reset to a fresh seeded state before the test,
  wrapped in an ``EmulatorHandle`` (``.host``, ``.url``, ``.state``, ``.control()``,
  ``.grant()``, ``.credentials()``, ``.directory()``, ``.chromepolicy()``, ``.add_fault()``,
  ``.requests()``).

Tune the seeded domain with ``@pytest.mark.google_emulator(devices=500, seed=3)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from google_emulator.server import EmulatorServer
from google_emulator.testing import EmulatorHandle

DEFAULTS: dict[str, Any] = {"devices": 50, "org_units": 12, "seed": 1}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "google_emulator(**options): seed options for the google_emulator fixture"
    )


@pytest.fixture(scope="session")
def google_emulator_server() -> Iterator[EmulatorServer]:
    server = EmulatorServer(**DEFAULTS).start()
    yield server
    server.stop()


@pytest.fixture
def google_emulator(google_emulator_server: EmulatorServer, request: pytest.FixtureRequest) -> EmulatorHandle:
    marker = request.node.get_closest_marker("google_emulator")
    google_emulator_server.reset(**(marker.kwargs if marker else {}))
    return EmulatorHandle(google_emulator_server)
