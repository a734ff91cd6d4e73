"""Advisory locks: one sync of a kind per tenant at a time, across every worker and machine.

A session-level PostgreSQL advisory lock, keyed by two integers (a namespace per kind of work, then the
tenant id), taken with ``pg_try_advisory_lock`` on a **dedicated connection** that lives exactly as long as
the lock. Dedicated because Django's connection is reused across tasks and may be closed and reopened under
us (``CONN_MAX_AGE``, ``close_old_connections``): a lock taken on it could outlive the work or vanish in the
middle of it. If the process dies, PostgreSQL drops the connection and the lock with it, so "marked running
but nobody holds the lock" always means "dead" (:func:`advisory_lock_held`), with no clock to guess from.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

import psycopg
from django.db import connection


def dedicated_connection(**kwargs: Any) -> psycopg.Connection[Any]:
    """A new psycopg connection to Django's database, outside Django's connection handling."""
    params = connection.get_connection_params()
    for django_only in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(django_only, None)
    return psycopg.connect(**params, **kwargs)


class AdvisoryLock:
    def __init__(self, namespace: int, key: int, *, application_name: str = "mdm-lock") -> None:
        self.namespace = namespace
        self.key = key
        self.application_name = application_name
        self._conn: psycopg.Connection[Any] | None = None

    def acquire(self, wait_seconds: float = 0.0) -> bool:
        """Try the lock, retrying for up to ``wait_seconds`` (never blocking inside PostgreSQL)."""
        self._conn = dedicated_connection(autocommit=True, application_name=self.application_name)
        deadline = time.monotonic() + wait_seconds
        while True:
            row = self._conn.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", (self.namespace, self.key)
            ).fetchone()
            if row and row[0]:
                return True
            if time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        self.release()
        return False

    def held(self) -> bool:
        """Still ours? (PostgreSQL restarted or the connection dropped: the lock is gone.)"""
        if self._conn is None:
            return False
        try:
            self._conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def release(self) -> None:
        if self._conn is None:
            return
        try:
            # Closing ends the session, which releases the lock; unlocking first is explicit and harmless.
            self._conn.execute("SELECT pg_advisory_unlock(%s, %s)", (self.namespace, self.key))
        except psycopg.Error:
            pass
        finally:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def advisory_lock_held(namespace: int, key: int) -> bool:
    """Does any session hold this lock right now? (Read from ``pg_locks``, on Django's connection.)"""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT EXISTS (
                SELECT 1 FROM pg_locks
                WHERE locktype = 'advisory' AND granted AND classid = %s AND objid = %s AND objsubid = 2
                  AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))
            """,
            [namespace, key],
        )
        row = cursor.fetchone()
    return bool(row and row[0])
