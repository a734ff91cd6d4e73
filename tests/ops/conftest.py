from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.chromeos.conftest import (  # noqa: F401 - fixtures  # noqa: F401 - fixtures
    emulator_settings,
    google_emulator,
    google_emulator_server,
    google_integration,
)
from tests.ops.prod_stack import ProdStack, running_production_stack


@pytest.fixture(scope="session")
def prod_stack() -> Iterator[ProdStack]:
    """The production-mode stack, started once for the session (tests/ops/prod_stack.py)."""
    with running_production_stack() as stack:
        yield stack


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    stack = getattr(item, "funcargs", {}).get("prod_stack")
    if report.failed and isinstance(stack, ProdStack):
        report.sections.append(("production stack logs", stack.logs(80)))


@pytest.fixture
def clean_metrics(settings: Any) -> Iterator[None]:
    """This test's metrics from zero, under a key prefix of its own (the counters live in Redis; xdist workers
    share the run's cache prefix)."""
    from ops import metrics

    settings.CACHES = {
        **settings.CACHES,
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"metrics-test-{uuid.uuid4().hex}"},
    }
    yield
    client = metrics._redis()
    for key in client.scan_iter(f"{metrics._prefix()}:*"):
        client.delete(key)
