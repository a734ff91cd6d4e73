"""Optional error tracking: sentry-sdk, enabled only when ``SENTRY_DSN`` is set (settings call :func:`init`).

Django and Celery errors are reported (the SDK's integrations), no personal data (the SDK's default),
and every event goes through :func:`scrub` first: values under secret-looking keys (passwords, tokens, keys,
cookies, authorization, the session) are replaced, and every other string is masked like a log line
(``ops.logs.redact``: OAuth tokens, bearer headers, Fernet tokens, the configured secrets). Optional:
``SENTRY_ENVIRONMENT``, ``SENTRY_RELEASE``, ``SENTRY_TRACES_SAMPLE_RATE`` (0).
"""

from __future__ import annotations

import os
import re
from typing import Any

from ops.logs import MASK, redact

SECRET_KEYS = re.compile(
    r"(?i)(pass(word|wd)?|secret|token|api[_-]?key|private|credential|authorization|cookie|session|csrf|"
    r"fernet|encryption[_-]?keys?|dsn|bind_password|refresh|access)"
)


def scrub(event: Any, hint: Any = None) -> Any:
    """Sentry's ``before_send``: the event with every secret masked."""
    return _clean(event)


def _clean(value: Any, key: str = "") -> Any:
    if key and SECRET_KEYS.search(key) and not isinstance(value, dict | list):
        return MASK
    if isinstance(value, dict):
        return {k: _clean(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v, key) for v in value]
    if isinstance(value, tuple):
        return tuple(_clean(v, key) for v in value)
    if isinstance(value, str):
        return redact(value)
    return value


def options(dsn: str) -> dict[str, Any]:
    return {
        "dsn": dsn,
        "before_send": scrub,
        "before_send_transaction": scrub,
        "environment": os.environ.get("SENTRY_ENVIRONMENT", "production"),
        "release": os.environ.get("SENTRY_RELEASE") or None,
        "traces_sample_rate": float(os.environ.get("SENTRY_TRACES_SAMPLE_RATE", "0")),
        "include_local_variables": True,
    }


def init(dsn: str, **overrides: Any) -> None:
    import sentry_sdk

    sentry_sdk.init(**{**options(dsn), **overrides})
