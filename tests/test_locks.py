"""mdm.locks: the ChromeOS sync's per-tenant locks share one connection per worker process (issue 18).

A threads sync worker runs 16 syncs in one process; each held its own lock connection beside its Django one
(32 connections per worker against PostgreSQL's 100). The locks now live on one shared session per process:
checked here against real PostgreSQL (``pg_stat_activity``, ``pg_locks``, ``pg_terminate_backend``).
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from chromeos.services.sync import LOCK_NAMESPACE, SyncLock, sync_lock_held
from mdm.locks import AdvisoryLock, dedicated_connection
from tests.processes import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def sessions(application_name: str) -> list[int]:
    """Backend pids of this database's sessions with that application_name."""
    with dedicated_connection(autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
            [application_name],
        ).fetchall()
    return [int(pid) for (pid,) in rows]


def terminate(application_name: str) -> None:
    with dedicated_connection(autocommit=True) as conn:
        for pid in sessions(application_name):
            conn.execute("SELECT pg_terminate_backend(%s)", [pid])
    wait_for(lambda: not sessions(application_name), 10, f"{application_name} sessions to end")


def test_concurrent_syncs_of_one_process_hold_one_lock_connection() -> None:
    count = 16
    locks = [SyncLock(900_000 + i) for i in range(count)]
    taken = threading.Barrier(count + 1)
    done = threading.Event()
    results: list[bool] = []

    def slot(lock: SyncLock) -> None:
        results.append(lock.acquire())
        taken.wait(30)
        done.wait(30)
        lock.release()

    threads = [threading.Thread(target=slot, args=(lock,)) for lock in locks]
    for thread in threads:
        thread.start()
    try:
        taken.wait(30)
        assert results == [True] * count
        assert len(sessions("mdm-sync-lock")) == 1
        assert all(sync_lock_held(lock.tenant_id) for lock in locks)
        assert all(lock.held() for lock in locks)
    finally:
        done.set()
        for thread in threads:
            thread.join(30)
    assert not any(sync_lock_held(lock.tenant_id) for lock in locks)
    wait_for(lambda: sessions("mdm-sync-lock") == [], 10, "the lock session to end")


def test_a_lock_is_not_reentrant_within_the_process_nor_across_processes() -> None:
    first = SyncLock(900_042)
    assert first.acquire()
    # PostgreSQL's session locks are re-entrant: the process keeps count itself.
    assert not SyncLock(900_042).acquire()
    assert not SyncLock(900_042).acquire(wait_seconds=0.5)
    # Another process (another session) cannot take it either; it sees it held.
    with dedicated_connection(autocommit=True) as other:
        assert other.execute("SELECT pg_try_advisory_lock(%s, 900042)", [LOCK_NAMESPACE]).fetchone() == (
            False,
        )
    first.release()
    assert not sync_lock_held(900_042)
    second = SyncLock(900_042)
    assert second.acquire() and second.held()
    first.release()  # a second release of the old holder frees nothing of the new one's
    assert second.held() and sync_lock_held(900_042)
    second.release()
    assert not sync_lock_held(900_042)


def test_waiting_for_a_lock_held_elsewhere_gets_it_once_freed() -> None:
    with dedicated_connection(autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s, 900007)", [LOCK_NAMESPACE])
        lock = SyncLock(900_007)
        assert not lock.acquire()
        threading.Timer(
            0.5, lambda: other.execute("SELECT pg_advisory_unlock(%s, 900007)", [LOCK_NAMESPACE])
        ).start()
        assert lock.acquire(wait_seconds=5)
        assert lock.held()
    lock.release()


def test_a_broken_lock_connection_loses_every_lock_of_the_process_and_new_locks_reconnect() -> None:
    a, b = SyncLock(900_001), SyncLock(900_002)
    assert a.acquire() and b.acquire()
    terminate("mdm-sync-lock")
    # The first to look notices; the other one too, although its own check would reach a new connection.
    assert not a.held()
    assert not b.held()
    # PostgreSQL frees them when the terminated backend has exited.
    wait_for(
        lambda: not sync_lock_held(900_001) and not sync_lock_held(900_002),
        10,
        "the terminated session's locks",
    )
    # A new sync of tenant 1 gets the lock on a new connection; the old holders stay lost.
    c = SyncLock(900_001)
    assert c.acquire() and c.held()
    assert not a.held() and not b.held()
    a.release()  # the lost holder's release must not free the new one's lock
    assert c.held() and sync_lock_held(900_001)
    c.release()
    b.release()
    # The last release ends the session: an idle process holds no lock connection.
    wait_for(lambda: sessions("mdm-sync-lock") == [], 10, "the lock session to end")


def test_a_connection_that_died_while_idle_is_replaced_at_the_next_acquire() -> None:
    a = SyncLock(900_003)
    assert a.acquire()
    a.release()
    terminate("mdm-sync-lock")
    b = SyncLock(900_003)
    assert b.acquire() and b.held() and sync_lock_held(900_003)
    b.release()


def test_ldap_locks_keep_a_connection_each() -> None:
    # Prefork children, one LDAP sync each: nothing to share; the lock still ends with its connection.
    with AdvisoryLock(0x4C444150, 5, application_name="mdm-ldap-sync-lock") as acquired:
        assert acquired
        assert len(sessions("mdm-ldap-sync-lock")) == 1
    wait_for(lambda: sessions("mdm-ldap-sync-lock") == [], 10, "the LDAP lock session to end")


def test_django_connection_is_not_used_for_the_lock() -> None:
    lock = SyncLock(900_009)
    assert lock.acquire()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        ours = cursor.fetchone()[0]
    assert ours not in sessions("mdm-sync-lock")
    connection.close()
    assert lock.held()
    lock.release()
