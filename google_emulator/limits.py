"""Google's latency and limits, as the Directory API applies them to one Cloud project (one OAuth client).

* **Latency**: per discovery method id (or ``*`` for every API method), a mean and a spread in milliseconds; each
  call is answered ``mean ± spread`` (uniform) after it was admitted, sleeping outside every lock. The emulator's
  own work on the call (a page of 300 devices: tens of ms when the machine is busy) is inside that time, as
  Google's servers' work is inside its latency: the emulator shares the machine with the console it serves, and
  a console busy storing must not see Google slow down. An injected delay (``faults.py``) comes on top.
* **Per user per project** (``user_rate``): at most N calls per window by one (client, user); past it 403
  ``userRateLimitExceeded`` (Google: 2,400 queries per minute per user per project, raisable).
* **Concurrent requests per Workspace account** (``customer_concurrency``): at most N calls of one customer in
  flight at once, whoever makes them; past it 429 ``rateLimitExceeded`` (not raisable at Google).
* **Project-wide per-minute quota** (``project_rate``): at most N calls per window by one client, every customer
  together; past it 403 ``quotaExceeded`` (the operator's Cloud console quota; the facts file lists
  ``quotaExceeded`` as the 403 of a quota to retry with backoff).

Every limit is off (``None``) unless configured (CLI flags or ``POST /_emulator/limits``). Windows are sliding
(the last ``window_seconds`` of real time, 60 by default, shorter in tests). A refused call does not count
against the rates: Google's own accounting is not documented, and this makes the emulator no stricter than it.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from google_emulator.errors import ApiError
from google_emulator.faults import slept_seconds

USER_RATE_MESSAGE = "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user'."
CONCURRENCY_MESSAGE = (
    "Quota exceeded for quota metric 'Concurrent requests' and limit 'Concurrent requests per Google "
    "Workspace account'."
)
PROJECT_RATE_MESSAGE = (
    "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of service "
    "'admin.googleapis.com'."
)


@dataclass
class LimitSettings:
    user_rate: int | None = None
    customer_concurrency: int | None = None
    project_rate: int | None = None
    window_seconds: float = 60.0
    # method id or "*" -> [mean_ms, spread_ms]
    latency_ms: dict[str, list[float]] = field(default_factory=dict)


class Limits:
    """Shared by every customer of one emulator. Its own lock: latency sleeps never hold the state's."""

    def __init__(self, settings: LimitSettings | None = None) -> None:
        self.settings = settings or LimitSettings()
        self._lock = threading.Lock()
        self._user_calls: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._project_calls: dict[str, deque[float]] = defaultdict(deque)
        self._in_flight: dict[str, int] = defaultdict(int)
        self.refused: dict[str, int] = defaultdict(int)  # reason -> count, for the control API
        self.admitted: dict[str, int] = defaultdict(
            int
        )  # method id -> calls let through (the fleet benchmark)

    def configure(self, **changes: Any) -> dict[str, Any]:
        known = set(LimitSettings.__dataclass_fields__) - {"latency_ms"}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown limit options {sorted(unknown)}; known: {sorted(known)}")
        with self._lock:
            for name, value in changes.items():
                if name == "window_seconds":
                    value = float(value)
                    if value <= 0:
                        raise ValueError("window_seconds must be positive")
                elif value is not None:
                    value = int(value)
                    if value < 1:
                        raise ValueError(f"{name} must be at least 1 (null: no limit)")
                setattr(self.settings, name, value)
        return self.describe()

    def set_latency(self, method: str, mean_ms: float, spread_ms: float = 0.0) -> dict[str, Any]:
        mean, spread = float(mean_ms), float(spread_ms)
        if mean < 0 or spread < 0:
            raise ValueError("mean_ms and spread_ms must not be negative")
        with self._lock:
            if mean == 0 and spread == 0:
                self.settings.latency_ms.pop(method, None)
            else:
                self.settings.latency_ms[method] = [mean, spread]
        return self.describe()

    def reset(self, settings: LimitSettings) -> None:
        with self._lock:
            self.settings = settings
            self._user_calls.clear()
            self._project_calls.clear()
            self._in_flight.clear()
            self.refused.clear()
            self.admitted.clear()

    def describe(self) -> dict[str, Any]:
        return {
            **asdict(self.settings),
            "in_flight": dict(self._in_flight),
            "refused": dict(self.refused),
            "calls": dict(self.admitted),
        }

    def delay_seconds(self, method_id: str) -> float:
        model = self.settings.latency_ms.get(method_id) or self.settings.latency_ms.get("*")
        if not model:
            return 0.0
        mean, spread = model
        return max(0.0, random.uniform(mean - spread, mean + spread)) / 1000

    @contextmanager
    def admit(self, method_id: str, project: str, user: str, customer_id: str) -> Iterator[None]:
        """Count the call against every limit, or raise Google's error; then hold a concurrency slot while
        the latency elapses and the call is answered."""
        settings = self.settings
        with self._lock:
            now = time.monotonic()
            horizon = now - settings.window_seconds
            project_calls = self._project_calls[project]
            user_calls = self._user_calls[(project, user)]
            for calls in (project_calls, user_calls):
                while calls and calls[0] <= horizon:
                    calls.popleft()
            if settings.project_rate is not None and len(project_calls) >= settings.project_rate:
                self.refused["quotaExceeded"] += 1
                raise ApiError(403, PROJECT_RATE_MESSAGE, "quotaExceeded")
            if settings.user_rate is not None and len(user_calls) >= settings.user_rate:
                self.refused["userRateLimitExceeded"] += 1
                raise ApiError(403, USER_RATE_MESSAGE, "userRateLimitExceeded")
            limit = settings.customer_concurrency
            if limit is not None and self._in_flight[customer_id] >= limit:
                self.refused["rateLimitExceeded"] += 1
                raise ApiError(429, CONCURRENCY_MESSAGE, "rateLimitExceeded")
            project_calls.append(now)
            user_calls.append(now)
            self._in_flight[customer_id] += 1
            self.admitted[method_id] += 1
        try:
            answer_at = time.monotonic() + self.delay_seconds(method_id) - slept_seconds()
            try:
                yield
            finally:
                # An error answer (injected or not) waits too, as before.
                remaining = answer_at + slept_seconds() - time.monotonic()
                if remaining > 0:
                    time.sleep(remaining)
        finally:
            with self._lock:
                self._in_flight[customer_id] -= 1
                if not self._in_flight[customer_id]:
                    del self._in_flight[customer_id]
