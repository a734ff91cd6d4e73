"""Pagination with opaque, signed page tokens over a snapshot of the result order.

The first page fixes the order of the matching keys (a snapshot); later pages slice it and look
each key up again, so a device deleted meanwhile is skipped and one changed meanwhile shows its
new data, while one added meanwhile is not seen: the app must count, not trust, a listing.
Tokens are signed so the app cannot forge offsets, and die when the snapshot is evicted or the
emulator is told to expire them (Google then answers 400, which the app must survive).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from google_emulator.errors import ApiError

MAX_SNAPSHOTS = 64


def invalid_page_token() -> ApiError:
    return ApiError(400, "Invalid Input: Bad page token", "invalid", "pageToken", "parameter")


@dataclass
class Snapshot:
    keys: list[str]
    query_key: str
    created: float


@dataclass
class Page:
    keys: list[str]
    number: int  # 1 = the first page
    next_token: str | None


class Paginator:
    def __init__(self, ttl_seconds: int = 3600) -> None:
        self.ttl_seconds = ttl_seconds
        self._secret = secrets.token_bytes(16)
        self._snapshots: OrderedDict[int, Snapshot] = OrderedDict()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def expire_all(self) -> None:
        with self._lock:
            self._snapshots.clear()

    def page(
        self, token: str | None, page_size: int, query_key: str, compute_keys: Callable[[], list[str]]
    ) -> Page:
        """One page of keys. ``compute_keys`` runs only for the first page (it filters and sorts)."""
        if token:
            snapshot_id, offset = self._decode(token)
            with self._lock:
                snapshot = self._snapshots.get(snapshot_id)
            if snapshot is None or snapshot.query_key != query_key:
                raise invalid_page_token()
            if time.monotonic() - snapshot.created > self.ttl_seconds:
                raise invalid_page_token()
        else:
            offset = 0
            snapshot = Snapshot(compute_keys(), query_key, time.monotonic())
            with self._lock:
                snapshot_id = next(self._ids)
                self._snapshots[snapshot_id] = snapshot
                while len(self._snapshots) > MAX_SNAPSHOTS:
                    self._snapshots.popitem(last=False)
        end = offset + page_size
        next_token = self._encode(snapshot_id, end) if end < len(snapshot.keys) else None
        return Page(snapshot.keys[offset:end], offset // page_size + 1, next_token)

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:12]

    def _encode(self, snapshot_id: int, offset: int) -> str:
        payload = json.dumps([snapshot_id, offset]).encode()
        return base64.urlsafe_b64encode(payload + self._sign(payload)).decode().rstrip("=")

    def _decode(self, token: str) -> tuple[int, int]:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            payload, signature = raw[:-12], raw[-12:]
            if not hmac.compare_digest(signature, self._sign(payload)):
                raise ValueError("bad signature")
            snapshot_id, offset = json.loads(payload)
            return int(snapshot_id), int(offset)
        except (ValueError, TypeError):
            raise invalid_page_token() from None
