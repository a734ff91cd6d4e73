"""Fixtures for the ChromeOS integration's tests: the Google emulator, the settings that point the console
at it, and an authorized integration holding a real refresh token issued by the emulator.

* ``google_emulator`` (from ``google_emulator.pytest_plugin``): a fresh seeded emulator per test, served over
  real HTTP on a free port (one server per test session, reset before each test).
* ``emulator_settings``: ``GOOGLE_EMULATOR_HOST`` and the OAuth client id/secret pointed at that emulator.
* ``google_integration``: an ACTIVE ``GoogleIntegration`` of tenant ``acme`` (authorized by ``admin_user``)
  whose refresh and access tokens were issued by the emulator for ``SCOPES``, so services can call the
  emulator through ``GoogleClient`` exactly as in production.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from chromeos.google.client import SCOPES
from chromeos.models import GoogleIntegration, IntegrationStatus
from google_emulator.pytest_plugin import (  # noqa: F401 - fixtures and marker registration
    google_emulator,
    google_emulator_server,
    pytest_configure,
)
from google_emulator.testing import EmulatorHandle
from mdm.models import Tenant, User
from tests.processes import GroupWorker, RedisServer, reset_pool


@pytest.fixture
def emulator_settings(settings: Any, google_emulator: EmulatorHandle) -> Any:  # noqa: F811
    """Django settings pointing every Google endpoint at the emulator, with the emulator's OAuth client."""
    settings.GOOGLE_EMULATOR_HOST = google_emulator.host
    settings.GOOGLE_OAUTH_CLIENT_ID = google_emulator.client_id
    settings.GOOGLE_OAUTH_CLIENT_SECRET = google_emulator.client_secret
    # Tests never wait for real backoff; a test that checks delays injects its own sleep.
    settings.GOOGLE_RETRY_BASE_SECONDS = 0.01
    settings.GOOGLE_RETRY_MAX_SECONDS = 0.05
    return settings


@pytest.fixture
def google_integration(
    emulator_settings: Any,
    google_emulator: EmulatorHandle,  # noqa: F811
    tenant: Tenant,
    admin_user: User,
) -> GoogleIntegration:
    """An ACTIVE integration of tenant ``acme`` with tokens the emulator really issued (consent skipped)."""
    token = google_emulator.grant(list(SCOPES))
    customer = google_emulator.state.customer
    return GoogleIntegration.unscoped.create(
        tenant=tenant,
        status=IntegrationStatus.ACTIVE,
        customer_id=customer["id"],
        domain=customer["customerDomain"],
        customer_info=dict(customer),
        admin_email=google_emulator.state.admin_email,
        authorized_by=admin_user,
        authorized_at=timezone.now(),
        scopes=token["scope"].split(),
        refresh_token=token["refresh_token"],
        access_token=token["access_token"],
        access_token_expires_at=timezone.now() + timedelta(seconds=int(token["expires_in"])),
    )


@pytest.fixture
def broker_down() -> Any:
    """The app's Celery pointed at a closed port, publishing for real (not eager): Redis is down."""
    from celery_app import app

    saved = {key: app.conf[key] for key in ("task_always_eager", "broker_url", "broker_connection_timeout")}
    app.conf.update(task_always_eager=False, broker_url="redis://127.0.0.1:9/0", broker_connection_timeout=1)
    reset_pool(app)
    try:
        yield app
    finally:
        app.conf.update(saved)
        reset_pool(app)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[tuple[RedisServer, str]]:
    """A Redis of this test's own, and the console's Celery app publishing to it for real (not eager)."""
    from celery_app import app

    redis = RedisServer(tmp_path / "redis.log")
    redis.start()
    prefix = f"mdm-job-fault-{uuid.uuid4().hex[:8]}:"
    keys = ("task_always_eager", "broker_url", "broker_connection_timeout", "broker_transport_options")
    saved = {key: app.conf[key] for key in keys}
    app.conf.update(
        task_always_eager=False,
        broker_url=redis.url,
        broker_connection_timeout=1,
        broker_transport_options={**saved["broker_transport_options"], "global_keyprefix": prefix},
    )
    reset_pool(app)
    try:
        yield redis, prefix
    finally:
        app.conf.update(saved)
        reset_pool(app)
        redis.stop()


@pytest.fixture
def workers(
    google_emulator: EmulatorHandle,  # noqa: F811
    broker: tuple[RedisServer, str],
    tmp_path: Path,
) -> Iterator[Any]:
    """``workers(**env)`` starts one more real worker on ``broker`` (stopped at the end); ``.kill()`` SIGKILLs it."""
    started: list[GroupWorker] = []

    def start(**extra_env: str) -> GroupWorker:
        log = tmp_path / f"worker{len(started)}.log"
        worker = GroupWorker(google_emulator, broker[0].url, broker[1], log, extra_env=extra_env)
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()
