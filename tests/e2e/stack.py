"""The whole console as real processes, for the end-to-end tests (fixtures in conftest.py).

``running_stack()`` starts everything an admin's browser touches, each on a free port:

* a fresh PostgreSQL database ``mdm_e2e_<pid>`` (created, migrated, dropped at the end);
* a private ``slapd`` serving the demo directory (``ldap_sync.demo_directory.demo()``);
* the Google emulator (``python -m google_emulator``), its OU tree seeded with the demo directory's OU paths, as
  Google Cloud Directory Sync would have left it, so LDAP and Google OUs match;
* the web server (``manage.py runserver --noreload``), a Celery worker and Celery beat, all with
  ``DJANGO_SETTINGS_MODULE=mdm.settings`` (production settings with ``DJANGO_DEBUG=1``, not the test settings:
  tasks really go through Redis), their own broker key prefix and cache prefix so no other stack on this Redis
  (a demo, a teammate's run) takes their tasks, and a short sync interval so beat's hourly sync happens within
  the test.

Nothing is mocked: the browser only talks to the web server and to the emulator's consent page. Each process's
output goes to ``test-artifacts/e2e/<name>.log``. Processes are stopped by pid (each in its own process group,
so Celery's pool children go too).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from ldap_sync import demo_directory
from ldap_sync.demo_directory import Directory
from ldap_sync.slapd import SlapdServer, free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
PYTHON = sys.executable
CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}

TENANT_SLUG = "ecoles"
TENANT_NAME = "Écoles de la Métropole"
ADMIN_EMAIL = "admin@ecoles.example"
ADMIN_PASSWORD = "e2e-Admin-pass-2026"
GOOGLE_DOMAIN = "ecoles.example"
GOOGLE_DEVICES = 120
# Seconds between two automatic syncs of a tenant, instead of an hour: beat must visibly sync within the test.
SYNC_INTERVAL_SECONDS = 15
SYNC_PAGE_SIZE = 40


@dataclass
class Service:
    """One process of the stack, started in its own process group, its output in ``log_path``."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            # A warm shutdown first (Celery finishes its current task), then the whole group by force.
            os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(5)


@dataclass
class Stack:
    base_url: str
    database_url: str
    emulator_url: str
    env: dict[str, str]
    directory: Directory
    slapd: SlapdServer
    services: dict[str, Service] = field(default_factory=dict)
    tenant_slug: str = TENANT_SLUG
    admin_email: str = ADMIN_EMAIL
    admin_password: str = ADMIN_PASSWORD
    google_domain: str = GOOGLE_DOMAIN

    def manage(self, *args: str, timeout: float = 120, env: dict[str, str] | None = None) -> str:
        """Run ``manage.py`` against the stack's database; its output, or a failure with it."""
        result = subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def emulator(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call the emulator's control API (``/_emulator/...``): what Google holds, seen from outside."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - a local http URL we built
            f"{self.emulator_url}/_emulator{path}",
            data=data,
            method="POST" if data is not None else "GET",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read())

    def wait_for_log(self, service: str, text: str, timeout: float = 30.0, after: int = 0) -> int:
        """Wait until ``text`` appears in a service's log after offset ``after``; its offset."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.services[service].log()
            found = log.find(text, after)
            if found >= 0:
                return found
            if self.services[service].process.poll() is not None:
                raise RuntimeError(f"{service} exited:\n{self.services[service].tail()}")
            time.sleep(0.2)
        raise TimeoutError(
            f"{service} did not log {text!r} within {timeout}s:\n{self.services[service].tail()}"
        )

    def logs(self, lines: int = 40) -> str:
        parts = [
            f"----- {name} ({svc.log_path}) -----\n{svc.tail(lines)}" for name, svc in self.services.items()
        ]
        return "\n".join(parts)


def _child_env(database_url: str, emulator_host: str, run_id: str, *, debug: bool = True) -> dict[str, str]:
    # Drop what pytest and the test settings put in this process's environment: the children run the real settings.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "DJANGO_", "CELERY_")) and k not in {"CACHE_KEY_PREFIX"}
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "mdm.settings",
            "DJANGO_DEBUG": "1" if debug else "0",
            "DATABASE_URL": database_url,
            "CELERY_BROKER_KEY_PREFIX": f"{run_id}:",
            "CACHE_KEY_PREFIX": run_id,
            "GOOGLE_EMULATOR_HOST": emulator_host,
            "CHROMEOS_SYNC_INTERVAL_SECONDS": str(SYNC_INTERVAL_SECONDS),
            "CHROMEOS_SYNC_DISPATCH_SECONDS": "3",
            # Several pages per listing, as a real fleet has: the progress moves page by page.
            "CHROMEOS_SYNC_PAGE_SIZE": str(SYNC_PAGE_SIZE),
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "INFO",
        }
    )
    return env


def _start(name: str, args: list[str], env: dict[str, str], log_dir: Path = ARTIFACTS) -> Service:
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Service(name, process, log_path)


def _wait_http(url: str, service: Service, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"{service.name} exited with {service.process.returncode}:\n{service.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - a local http URL we built
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{service.name} did not answer {url} within {timeout}s:\n{service.tail()}")


def _server_url(database_url: str) -> str:
    return database_url.rsplit("/", 1)[0] + "/postgres"


def create_database(database_url: str) -> None:
    """A new empty database at ``database_url`` (an older one of that name is dropped first)."""
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(_server_url(database_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(database_url: str) -> None:
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(_server_url(database_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def running_stack() -> Iterator[Stack]:
    """Start the whole stack; stop it all and drop its database on exit."""
    run_id = f"mdm-e2e-{os.getpid()}"
    db_name = f"mdm_e2e_{os.getpid()}"
    base_db_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mdm")
    database_url = base_db_url.rsplit("/", 1)[0] + "/" + db_name
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="mdm-e2e-"))

    create_database(database_url)

    directory = demo_directory.demo()
    slapd = SlapdServer(data_dir=workdir / "slapd")
    services: dict[str, Service] = {}
    try:
        slapd.start(seed_ldif=directory.to_ldif())
        ou_file = workdir / "ou_paths.txt"
        ou_file.write_text("\n".join(directory.ou_paths()) + "\n", encoding="utf-8")
        google_port, web_port = free_port(), free_port()
        emulator_host = f"127.0.0.1:{google_port}"
        env = _child_env(database_url, emulator_host, run_id)
        # The stack's own slapd on the loopback is the one internal destination its tenants may reach.
        env.update(MDM_OUTBOUND_ALLOWED_NETWORKS="127.0.0.1/32", MDM_OUTBOUND_ALLOWED_PORTS=str(slapd.port))
        stack_ = Stack(
            base_url=f"http://127.0.0.1:{web_port}",
            database_url=database_url,
            emulator_url=f"http://{emulator_host}",
            env=env,
            directory=directory,
            slapd=slapd,
            services=services,
        )
        services["google"] = _start(
            "google",
            [
                PYTHON, "-m", "google_emulator",
                "--port", str(google_port),
                "--domain", GOOGLE_DOMAIN,
                "--devices", str(GOOGLE_DEVICES),
                "--org-unit-paths", str(ou_file),
                "--seed", "11",
                # Remote commands walk PENDING → SENT → EXECUTED quickly, as on a device that is online.
                "--command-step-seconds", "0.5",
            ],
            env,
        )  # fmt: skip
        stack_.manage("migrate", "--no-input", "-v", "0", timeout=180)
        stack_.manage(
            "tenant_create", TENANT_SLUG, "--name", TENANT_NAME,
            "--admin-email", ADMIN_EMAIL, "--password-env", "E2E_ADMIN_PASSWORD",
            env={"E2E_ADMIN_PASSWORD": ADMIN_PASSWORD},
        )  # fmt: skip
        services["web"] = _start(
            "web", [PYTHON, "manage.py", "runserver", f"127.0.0.1:{web_port}", "--noreload"], env
        )
        celery = [PYTHON, "-m", "celery", "-A", "celery_app"]
        services["worker"] = _start(
            "worker",
            [
                *celery, "worker", "--loglevel=INFO", "--concurrency=2", "-n", f"{run_id}@%h",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
            ],
            env,
        )  # fmt: skip
        services["beat"] = _start(
            "beat",
            [*celery, "beat", "--loglevel=INFO", "--schedule", str(workdir / "celerybeat-schedule")],
            env,
        )
        _wait_http(f"{stack_.emulator_url}/_emulator/health", services["google"])
        _wait_http(f"{stack_.base_url}/login/", services["web"])
        stack_.wait_for_log("worker", " ready.", timeout=60)
        stack_.wait_for_log("beat", "beat: Starting", timeout=60)
        yield stack_
    finally:
        for service in reversed(list(services.values())):
            service.stop()
        if slapd.data_dir is not None and slapd.log_path.exists():
            shutil.copy(slapd.log_path, ARTIFACTS / "slapd.log")
        slapd.stop()
        drop_database(database_url)
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def web_without_debug(stack: Stack) -> Iterator[str]:
    """A second web server on the stack's database with ``DEBUG`` off, as production answers: the branded error
    pages (404…) instead of Django's technical ones. Its static files are collected (hashed) into a temporary
    directory, as production does, and whitenoise serves them. Same database and dev keys as the stack's server:
    a browser signed in there is signed in here too."""
    from mdm.settings import _DEV_ENCRYPTION_KEY, _DEV_SECRET_KEY

    port = free_port()
    static_root = Path(tempfile.mkdtemp(prefix="mdm-e2e-static-"))
    env = {
        **stack.env,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": _DEV_SECRET_KEY,
        "MDM_ENCRYPTION_KEYS": _DEV_ENCRYPTION_KEY,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "GOOGLE_OAUTH_CLIENT_ID": "mdm-console-dev.apps.googleusercontent.com",
        "GOOGLE_OAUTH_CLIENT_SECRET": "dev-secret",
        "STATIC_ROOT": str(static_root),
        "LOG_FORMAT": "text",
    }
    service = None
    try:
        subprocess.run(
            [PYTHON, "manage.py", "collectstatic", "--no-input", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=180,
        )
        service = _start(
            "web-nodebug", [PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"], env
        )
        _wait_http(f"http://127.0.0.1:{port}/login/", service)
        yield f"http://127.0.0.1:{port}"
    finally:
        if service is not None:
            service.stop()
        shutil.rmtree(static_root, ignore_errors=True)
