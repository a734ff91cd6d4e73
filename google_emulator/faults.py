"""Fault injection and the request log: how tests make the emulator misbehave and check what the app did."""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Fault:
    """One injected misbehaviour.

    ``method`` is a discovery method id (``directory.chromeosdevices.list``), an OAuth endpoint
    (``oauth2.token``, ``oauth2.revoke``, ``oauth2.authorize``) or ``*`` (every API method). ``count`` requests are
    affected (``None``: until cleared). With ``page`` set, only that page of a listing (1 = the
    request without a page token) is affected. ``status`` answers an error; ``delay_ms`` only
    slows the answer down; ``mutation`` (a control-API operation, see control.py) is applied right
    after the matching request was answered, to change a listing between two pages. With ``params`` set
    (e.g. ``{"orgUnitPath": "/Paris"}``), only requests sending those query parameters with those values are
    affected: one listing among several running at once (one per org unit) can be aimed at.
    """

    method: str = "*"
    status: int | None = None
    reason: str | None = None
    message: str | None = None
    count: int | None = 1
    page: int | None = None
    retry_after: int | None = None
    delay_ms: int = 0
    mutation: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    id: int = 0

    def matches(self, method_id: str, page: int | None, params: dict[str, Any] | None = None) -> bool:
        # "*" is every API method, not the OAuth endpoints: "Google is down" tests still need a token.
        wildcard = self.method == "*" and not method_id.startswith("oauth2.")
        if not wildcard and self.method != method_id:
            return False
        if self.params and any(
            _param_text((params or {}).get(name)) != _param_text(value) for name, value in self.params.items()
        ):
            return False
        return self.page is None or self.page == page


def _param_text(value: Any) -> str | None:
    """A parameter as sent on the wire: booleans as ``true``/``false`` (parsed ones are Python bools)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class FaultBook:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            fault.id = next(self._ids)
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._faults]

    def take(
        self,
        method_id: str,
        page: int | None = None,
        paged: bool = False,
        params: dict[str, Any] | None = None,
    ) -> list[Fault]:
        """Consume the faults that apply to this request.

        Page-specific faults are only considered by listings (``paged``), which know their page number.
        """
        with self._lock:
            taken = []
            for fault in self._faults:
                if (fault.page is not None) != paged or not fault.matches(method_id, page, params):
                    continue
                taken.append(fault)
                if fault.count is not None:
                    fault.count -= 1
            self._faults = [f for f in self._faults if f.count is None or f.count > 0]
            return taken


@dataclass
class LoggedRequest:
    time: float
    method: str  # discovery method id, oauth2.*, or "unknown"
    http_method: str
    path: str
    params: dict[str, Any]
    status: int
    body: Any = None
    duration_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


# Form fields never kept in the log, even in an emulator: tests print logs, people copy them.
SECRET_FIELDS = frozenset({"client_secret", "code_verifier", "refresh_token", "code", "token", "password"})


class RequestLog:
    def __init__(self, limit: int = 20_000) -> None:
        self._lock = threading.Lock()
        self._entries: deque[LoggedRequest] = deque(maxlen=limit)

    def record(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._entries.append(entry)

    def entries(self, method: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            found = [e for e in self._entries if method is None or e.method == method]
        return [asdict(e) for e in found]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def redact(form: dict[str, Any]) -> dict[str, Any]:
    return {k: ("<redacted>" if k in SECRET_FIELDS else v) for k, v in form.items()}


# Seconds this request's thread slept for injected delays: a call's latency (limits.py) comes on top of them.
_slept = threading.local()


def sleep_ms(delay_ms: int) -> None:
    if delay_ms > 0:
        time.sleep(delay_ms / 1000)
        _slept.seconds = slept_seconds() + delay_ms / 1000


def slept_seconds() -> float:
    return float(getattr(_slept, "seconds", 0.0))
