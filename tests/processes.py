"""Real processes that tests start beside the in-process stack: a throwaway Redis and a Celery worker.

One place for what several fault tests need (the broker that a test stops and restarts, the worker that it
SIGKILLs), so that each test says only what it does to them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.db import connection

from google_emulator.testing import EmulatorHandle
from mdm.locks import dedicated_connection

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """The first truthy value of ``condition()``, or AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def waiting_on_lock(query_part: str) -> bool:
    """Whether a session of this database waits on a lock while running a statement that contains
    ``query_part``."""
    with dedicated_connection(autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE %s",
            [f"%{query_part}%"],
        ).fetchone()
    return bool(row and row[0])


def current_database_url() -> str:
    """The URL of the database this test runs in, for a process started beside it."""
    db = connection.settings_dict
    return (
        f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )


def reset_pool(app: Any) -> None:
    """Forget the Celery app's producer pool so that the next publish connects to the configured broker."""
    app._pool = None
    app.amqp._producer_pool = None


class RedisServer:
    """A ``redis-server`` on a free port, without persistence, never the console's own: stopped by pid."""

    def __init__(self, log: Path | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        command = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        output = self.log.open("a") if self.log else subprocess.DEVNULL
        self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        wait_for(self.answers, 10, "redis to start")
        return self

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def start_celery_worker(
    emulator: EmulatorHandle,
    *,
    broker: str,
    prefix: str,
    log: Path,
    name: str,
    extra_env: dict[str, str] | None = None,
    own_session: bool = False,
    pool: str = "prefork",
    concurrency: int = 1,
    queues: str | None = None,
) -> subprocess.Popen[bytes]:
    """``celery worker`` (prefork, one child, every queue unless told) on this test's database and ``emulator``,
    ready when it returns.

    ``own_session``: the worker leads its own process group, so that a test can kill parent and child at once.
    ``pool``/``concurrency``/``queues``: as the production sync worker runs (``threads``, N, ``chromeos-sync``).
    """
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mdm.settings_test",
        "MDM_CELERY_EAGER": "0",
        "DATABASE_URL": current_database_url(),
        "DATABASE_CONN_MAX_AGE": "0",
        "CELERY_BROKER_URL": broker,
        "CELERY_BROKER_KEY_PREFIX": prefix,
        "GOOGLE_EMULATOR_HOST": emulator.host,
        "GOOGLE_OAUTH_CLIENT_ID": emulator.client_id,
        "GOOGLE_OAUTH_CLIENT_SECRET": emulator.client_secret,
        **(extra_env or {}),
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "celery_app",
        "worker",
        f"--pool={pool}",
        f"--concurrency={concurrency}",
        *([f"--queues={queues}"] if queues else []),
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
        "--loglevel=INFO",
        f"--hostname={name}-{uuid.uuid4().hex[:6]}@%h",
    ]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=own_session,
    )
    wait_for(lambda: "ready" in log.read_text(), 60, "the worker to start")
    return process


def stop_process(process: subprocess.Popen[bytes], *, group: bool = False) -> None:
    """SIGTERM (the whole group with ``group``), then SIGKILL if it is still there after 20 s."""
    if process.poll() is not None:
        return

    def send(sig: signal.Signals) -> None:
        os.killpg(process.pid, sig) if group else process.send_signal(sig)

    send(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        process.wait(timeout=10)


class GroupWorker:
    """``celery worker`` (prefork, one child) in its own process group, so that the test can kill all of it."""

    def __init__(
        self,
        emulator: EmulatorHandle,
        broker: str,
        prefix: str,
        log: Path,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.log_path = log
        self.process = start_celery_worker(
            emulator,
            broker=broker,
            prefix=prefix,
            log=log,
            name="job-fault",
            own_session=True,
            extra_env=extra_env,
        )

    def kill(self) -> None:
        """SIGKILL the whole worker, parent and child: nothing acknowledges or requeues its message."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        stop_process(self.process, group=True)
