"""Structured logs: JSON lines in production (``LOG_FORMAT=json``, the default when DEBUG is off), text in
development, each line with what it concerns: ``request_id``, ``tenant``, ``user``, ``run_id``, ``job_id``,
``task_id`` (and ``task``), from context variables set by :class:`RequestContextMiddleware`, the Celery signals
below and :func:`log_context`.

Secrets are never logged on purpose (a test greps a production run's logs for every stored secret); as a second
line, :class:`ContextFilter` masks what looks like a credential in any message (OAuth tokens, bearer headers,
``password=`` pairs, Fernet keys and tokens) and the configured secrets themselves (Django's secret key, the
encryption keys, the OAuth client secret, the metrics token).

Importable before Django is set up (gunicorn's logging config uses it).
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from pythonjsonlogger.json import JsonFormatter

CONTEXT_FIELDS = ("request_id", "tenant", "user", "run_id", "job_id", "task_id", "task")
_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("mdm_log_context", default={})  # noqa: B039 - never mutated

MASK = "[redacted]"
CREDENTIAL_PATTERNS = [
    re.compile(r"ya29\.[\w.\-]+"),  # Google access tokens
    re.compile(r"1//[\w.\-]+"),  # Google refresh tokens
    re.compile(r"(?i)\bbearer\s+[\w.\-~+/=]+"),
    re.compile(r"gAAAAA[\w\-=]{20,}"),  # Fernet tokens (our ciphertexts)
    re.compile(
        r"(?i)\b(password|passwd|secret|client_secret|refresh_token|access_token|token|bind_password)"
        r"(\s*[=:]\s*|['\"]\s*:\s*['\"])[^\s,;&'\"}]+"
    ),
]


def current_context() -> dict[str, Any]:
    return dict(_context.get())


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add fields (``run_id=…``, ``job_id=…``) to every log line written inside the block."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def _configured_secrets() -> list[str]:
    try:
        from django.conf import settings

        values = [
            getattr(settings, "SECRET_KEY", ""),
            getattr(settings, "GOOGLE_OAUTH_CLIENT_SECRET", ""),
            getattr(settings, "METRICS_TOKEN", ""),
            *getattr(settings, "MDM_ENCRYPTION_KEYS", []),
        ]
    except Exception:  # settings not configured (gunicorn's master before Django)
        values = [os.environ.get("DJANGO_SECRET_KEY", ""), os.environ.get("METRICS_TOKEN", "")]
    return [v for v in values if v and len(v) >= 8]


def redact(text: str) -> str:
    for secret in _configured_secrets():
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern in CREDENTIAL_PATTERNS:
        text = pattern.sub(_mask_match, text)
    return text


def _mask_match(match: re.Match[str]) -> str:
    if match.lastindex and match.lastindex >= 2:
        return f"{match.group(1)}{match.group(2)}{MASK}"
    return MASK


class ContextFilter(logging.Filter):
    """Adds the context fields to every record and masks credentials in its message."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _context.get()
        for name in CONTEXT_FIELDS:
            if name in context and not hasattr(record, name):
                setattr(record, name, context[name])
        if not hasattr(record, "tenant"):
            tenant = _current_tenant_slug()
            if tenant:
                record.tenant = tenant
        try:
            message = record.getMessage()
        except Exception:
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        present = [
            f"{n}={getattr(record, n)}" for n in CONTEXT_FIELDS if getattr(record, n, None) is not None
        ]
        record.context = f" [{' '.join(present)}]" if present else ""
        return True


def _current_tenant_slug() -> str | None:
    try:
        from mdm.tenancy import current_tenant_or_none
    except Exception:  # before Django is set up
        return None
    tenant = current_tenant_or_none()
    return getattr(tenant, "slug", None)


class JsonLinesFormatter(JsonFormatter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("rename_fields", {"asctime": "time", "levelname": "level", "name": "logger"})
        kwargs.setdefault("reserved_attrs", [*_RESERVED, "context"])
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s", *args, **kwargs)

    def formatException(self, ei: Any) -> Any:
        text = super().formatException(ei)
        return [redact(line) for line in text] if isinstance(text, list) else redact(text)


_RESERVED = [
    "args", "created", "exc_info", "exc_text", "filename", "funcName", "levelno", "lineno", "module", "msecs",
    "msg", "pathname", "process", "processName", "relativeCreated", "stack_info", "thread", "threadName",
    "taskName", "color_message",
]  # fmt: skip


def logging_config(*, json_lines: bool, level: str) -> dict[str, Any]:
    """Django's (and gunicorn's) LOGGING: one stdout handler, JSON lines or text, context and redaction."""
    # Python warnings (a library's deprecation, Celery's "running as root") become log lines too.
    logging.captureWarnings(True)
    formatter = (
        {"()": "ops.logs.JsonLinesFormatter"}
        if json_lines
        else {"format": "%(asctime)s %(levelname)s %(name)s %(message)s%(context)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "ops.logs.ContextFilter"}},
        "formatters": {"main": formatter},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "main", "filters": ["context"]}
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            # gunicorn's own loggers, when this config is handed to gunicorn (prod.sh).
            "gunicorn.error": {"level": level, "handlers": ["console"], "propagate": False},
            "gunicorn.access": {"level": level, "handlers": ["console"], "propagate": False},
        },
    }


# -- requests ----------------------------------------------------------------------------------------------------
REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{8,64}$")
request_logger = logging.getLogger("mdm.request")


class RequestContextMiddleware:
    """A request id (the proxy's ``X-Request-ID`` when it is sane, else a new one), the user and the tenant on
    every line logged while serving the request; the id is sent back; one ``request`` line per response."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        user = getattr(request, "user", None)
        user_id = user.pk if user is not None and getattr(user, "is_authenticated", False) else None
        started = time.monotonic()
        with log_context(request_id=request_id, user=user_id):
            response = self.get_response(request)
            request_logger.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "status": response.status_code,
                    "duration_ms": round((time.monotonic() - started) * 1000),
                },
            )
        response[REQUEST_ID_HEADER] = request_id
        return response


# -- Celery tasks -------------------------------------------------------------------------------------------------
_ID_ARGUMENTS = {"run_id": "run_id", "run_pk": "run_id", "job_pk": "job_id", "job_id": "job_id"}
_task_tokens: dict[str, contextvars.Token[dict[str, Any]]] = {}


def task_started(task_id: str, task: Any, args: Any, kwargs: Any) -> None:
    fields: dict[str, Any] = {"task_id": task_id, "task": getattr(task, "name", None)}
    try:
        bound = inspect.signature(task.run).bind_partial(*(args or ()), **(kwargs or {}))
        for name, value in bound.arguments.items():
            if name in _ID_ARGUMENTS:
                fields[_ID_ARGUMENTS[name]] = value
    except (TypeError, ValueError):
        pass
    _task_tokens[task_id] = _context.set({**_context.get(), **fields})


def task_finished(task_id: str) -> None:
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        with contextlib.suppress(ValueError):
            _context.reset(token)
