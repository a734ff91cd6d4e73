"""Advisory locks: one sync of a kind per tenant at a time, across every worker and machine.

A session-level PostgreSQL advisory lock, keyed by two integers (a namespace per kind of work, then the
tenant id), taken with ``pg_try_advisory_lock`` on a **dedicated connection** that lives exactly as long as
the lock. Dedicated because Django's connection is reused across tasks and may be closed and reopened under
us (``CONN_MAX_AGE``, ``close_old_connections``): a lock taken on it could outlive the work or vanish in the
middle of it. If the process dies, PostgreSQL drops the connection and the lock with it, so "marked running
but nobody holds the lock" always means "dead" (:func:`advisory_lock_held`), with no clock to guess from.

:class:`AdvisoryLock` opens a connection per lock (LDAP syncs: one per prefork child at a time).
:class:`SharedAdvisoryLock` takes its lock on the process's one :class:`LockSession` (ChromeOS syncs, up to 16
threads per process): one lock connection per worker process instead of one per sync.
"""

from __future__ import annotations

import contextlib
import os
import threading
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


class _LockContext:
    """``with lock:`` for both lock kinds: acquire without waiting (the value is whether it was taken), release
    on the way out."""

    def acquire(self, wait_seconds: float = 0.0) -> bool:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


class AdvisoryLock(_LockContext):
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


class LockSession:
    """One dedicated connection shared by every lock of a process (the ChromeOS sync's threads pool: 16 syncs
    in one process would otherwise hold 16 lock connections beside their 16 Django connections).

    Each lock is a session-level ``pg_try_advisory_lock`` on that one session, released with
    ``pg_advisory_unlock``; the session dies with the process, and so do its locks. A mutex serialises the
    connection between threads. Two things a per-lock connection gave for free are kept by hand:

    - **Not re-entrant**: PostgreSQL's session locks are (a second ``pg_try_advisory_lock`` on the same session
      succeeds), so the keys held in this process are recorded and a second lock on one is refused here.
    - **An idle process holds no connection**: the session is opened by the first lock and ended with the last
      one's release (ending it releases that lock).
    - **Losing it is noticed by every holder**: each lock remembers the *generation* of the connection it was
      taken on; a broken connection is dropped and the generation moves on, so every lock taken on it answers
      ``held() == False`` from then on (PostgreSQL freed them all with the session), and the next lock opens a
      new connection.
    """

    def __init__(self, application_name: str) -> None:
        self.application_name = application_name
        self._mutex = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._pid = os.getpid()
        self._generation = 0
        # (namespace, key) -> generation it was taken on.
        self._held: dict[tuple[int, int], int] = {}

    def _forked(self) -> None:
        # A forked child must not use (nor close: that would end the parent's session) the parent's socket.
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._conn = None
            self._held.clear()
            self._generation += 1

    def _drop(self) -> None:
        """The session is gone or unusable: every lock taken on it is lost."""
        if self._conn is not None:
            # Closing a broken connection may fail too; there is nothing more to do with it.
            with contextlib.suppress(psycopg.Error, OSError):
                self._conn.close()
        self._conn = None
        self._held.clear()
        self._generation += 1

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is not None and (self._conn.closed or self._conn.broken):
            self._drop()
        if self._conn is None:
            self._conn = dedicated_connection(autocommit=True, application_name=self.application_name)
        return self._conn

    def try_lock(self, namespace: int, key: int) -> int | None:
        """Take the lock without waiting: the connection's generation if taken, None if held (by anyone)."""
        with self._mutex:
            self._forked()
            if (namespace, key) in self._held:
                return None
            for attempt in (1, 2):
                conn = self._connection()
                try:
                    row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (namespace, key)).fetchone()
                except psycopg.OperationalError:
                    # A session that died while idle (PostgreSQL restarted, the backend was terminated): its
                    # locks are gone already; a new one serves this lock. Twice in a row: PostgreSQL is down.
                    self._drop()
                    if attempt == 2:
                        raise
                    continue
                if row and row[0]:
                    self._held[(namespace, key)] = self._generation
                    return self._generation
                return None
        return None  # pragma: no cover - the loop returns or raises

    def alive(self, namespace: int, key: int, generation: int) -> bool:
        """Is this lock, taken on ``generation``, still held by this process's session?"""
        with self._mutex:
            self._forked()
            if self._held.get((namespace, key)) != generation or self._conn is None:
                return False
            try:
                self._conn.execute("SELECT 1")
            except psycopg.Error:
                self._drop()
                return False
            return True

    def unlock(self, namespace: int, key: int, generation: int) -> None:
        with self._mutex:
            self._forked()
            if self._held.get((namespace, key)) != generation:
                return  # lost with its session (and maybe taken again since by another run: not ours to free)
            del self._held[(namespace, key)]
            if self._conn is None:
                return
            try:
                # Unlocked at once, explicitly: a closed session's locks go only when its backend has noticed.
                self._conn.execute("SELECT pg_advisory_unlock(%s, %s)", (namespace, key))
            except psycopg.Error:
                self._drop()
                return
            if not self._held:
                # The last lock of the process: an idle worker holds no connection (the next lock opens one).
                self._drop()

    def close(self) -> None:
        """End the session (every lock of the process with it)."""
        with self._mutex:
            self._drop()


_sessions: dict[str, LockSession] = {}
_sessions_mutex = threading.Lock()


def lock_session(application_name: str) -> LockSession:
    """This process's shared lock session for ``application_name`` (created on first use)."""
    with _sessions_mutex:
        session = _sessions.get(application_name)
        if session is None:
            session = _sessions[application_name] = LockSession(application_name)
        return session


def close_lock_sessions() -> None:
    """End every shared lock session of this process (tests; a worker's end does it by exiting)."""
    with _sessions_mutex:
        sessions = list(_sessions.values())
    for session in sessions:
        session.close()


class SharedAdvisoryLock(_LockContext):
    """``AdvisoryLock``'s interface (acquire with a wait, held, release, ``with``) on the process's shared
    :class:`LockSession` instead of a connection of its own."""

    def __init__(self, namespace: int, key: int, *, application_name: str = "mdm-lock") -> None:
        self.namespace = namespace
        self.key = key
        self.session = lock_session(application_name)
        self._generation: int | None = None

    def acquire(self, wait_seconds: float = 0.0) -> bool:
        """Try the lock, retrying for up to ``wait_seconds`` (never blocking inside PostgreSQL)."""
        deadline = time.monotonic() + wait_seconds
        while True:
            self._generation = self.session.try_lock(self.namespace, self.key)
            if self._generation is not None:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)

    def held(self) -> bool:
        """Still ours? (The shared session broke, PostgreSQL restarted: the lock is gone.)"""
        if self._generation is None:
            return False
        return self.session.alive(self.namespace, self.key, self._generation)

    def release(self) -> None:
        if self._generation is None:
            return
        generation, self._generation = self._generation, None
        self.session.unlock(self.namespace, self.key, generation)


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
