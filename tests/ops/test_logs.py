"""Structured logs: JSON lines with context fields, credentials masked (the production stack greps a real run)."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from django.test import Client

from chromeos.tasks.sync import devices_sync_task
from mdm.models import Tenant, User
from mdm.tenancy import tenant_context
from ops.logs import ContextFilter, JsonLinesFormatter, log_context, redact, task_finished, task_started


def _capture(json_lines: bool = True) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(
        JsonLinesFormatter() if json_lines else logging.Formatter("%(levelname)s %(message)s%(context)s")
    )
    logger = logging.getLogger(f"tests.ops.logs.{id(stream)}")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_json_lines_carry_the_context(db: None, tenant: Tenant) -> None:
    logger, stream = _capture()
    with tenant_context(tenant), log_context(run_id=12, request_id="abc"):
        logger.info("hello %s", "world", extra={"devices_seen": 3})
    record = json.loads(stream.getvalue())
    assert record["message"] == "hello world" and record["level"] == "INFO"
    assert (record["tenant"], record["run_id"], record["request_id"], record["devices_seen"]) == (
        "acme",
        12,
        "abc",
        3,
    )
    assert "time" in record and "context" not in record


def test_text_lines_in_development_carry_the_context() -> None:
    logger, stream = _capture(json_lines=False)
    with log_context(job_id=7):
        logger.warning("slow")
    assert stream.getvalue().strip() == "WARNING slow [job_id=7]"


def test_credentials_are_masked(settings: Any) -> None:
    settings.GOOGLE_OAUTH_CLIENT_SECRET = "client-secret-0123456789"
    text = redact(
        "refresh 1//0gAbc-def_ghi access ya29.a0AfH6SM-xyz Authorization: Bearer abc.def "
        "password=hunter22 {'refresh_token': 'r3fr3sh'} client-secret-0123456789 9f2c$gAAAAABlongfernettoken1234567890"
    )
    for secret in (
        "1//0gAbc",
        "ya29.a0",
        "abc.def",
        "hunter22",
        "r3fr3sh",
        "client-secret-0123456789",
        "gAAAAAB",
    ):
        assert secret not in text, (secret, text)
    assert "password=[redacted]" in text


def test_an_exception_traceback_is_masked_too() -> None:
    logger, stream = _capture()
    try:
        raise RuntimeError("token refused: refresh_token=supersecretvalue")
    except RuntimeError:
        logger.exception("failed")
    assert "supersecretvalue" not in stream.getvalue()


def test_a_task_logs_its_id_and_its_run_id() -> None:
    task_started("task-1", devices_sync_task, (41,), {})
    try:
        logger, stream = _capture()
        logger.info("inside")
    finally:
        task_finished("task-1")
    record = json.loads(stream.getvalue())
    assert (record["task_id"], record["run_id"], record["task"]) == (
        "task-1",
        41,
        "chromeos.tasks.devices_sync_task",
    )


@pytest.mark.django_db
def test_each_request_has_an_id_sent_back_and_logged(
    admin_user: User, caplog: pytest.LogCaptureFixture
) -> None:
    client = Client()
    client.force_login(admin_user)
    with caplog.at_level(logging.INFO, logger="mdm.request"):
        response = client.get("/", HTTP_X_REQUEST_ID="given-by-proxy-42")
        fresh = client.get("/", HTTP_X_REQUEST_ID="bad id with spaces")
    assert response["X-Request-ID"] == "given-by-proxy-42"
    assert fresh["X-Request-ID"] != "bad id with spaces" and len(fresh["X-Request-ID"]) == 32
    record = next(r for r in caplog.records if getattr(r, "request_id", None) == "given-by-proxy-42")
    assert record.user == admin_user.pk and record.status == 200
