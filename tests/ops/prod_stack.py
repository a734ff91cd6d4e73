"""The console in production mode, as real processes: ``scripts/prod.sh all`` (collectstatic, migrate, gunicorn,
Celery worker, beat) with ``DJANGO_DEBUG=0`` and only environment variables as input, behind what a TLS proxy
would send (``X-Forwarded-Proto: https``), against its own database, the Google emulator and a private slapd.

The pieces are the end-to-end stack's (``tests/e2e/stack.py``): its ``Service`` and ``Stack``, process start
and stop by process group, its database helpers and child environment. Logs go to ``test-artifacts/prod/``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from cryptography.fernet import Fernet

from ldap_sync import demo_directory
from ldap_sync.slapd import SlapdServer, free_port
from tests.e2e.stack import (
    PYTHON,
    ROOT,
    Service,
    Stack,
    _child_env,
    _start,
    _wait_http,
    create_database,
    drop_database,
)

ARTIFACTS = ROOT / "test-artifacts" / "prod"
TENANT_SLUG = "prod"
ADMIN_EMAIL = "admin@prod.example"
ADMIN_PASSWORD = "prod-Admin-pass-2026"
GOOGLE_DEVICES = 60


@dataclass
class ProdStack(Stack):
    """The end-to-end ``Stack`` plus what production mode adds: its secrets (to look for them in the logs)."""

    secrets: dict[str, str] = field(default_factory=dict)
    static_root: Path = Path()
    artifacts: Path = ARTIFACTS


class Browser:
    """A cookie-keeping HTTP client that talks to gunicorn as a TLS-terminating proxy would (never follows
    redirects: the test looks at them). Secure cookies are kept although the hop is plain HTTP, as the proxy does."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.origin = f"https://{self.host}:{self.port}"
        self.cookies: dict[str, str] = {}

    def request(
        self,
        method: str,
        path: str,
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        body = urlencode(data).encode() if data is not None else None
        sent = {
            "Host": f"{self.host}:{self.port}",
            "X-Forwarded-Proto": "https",
            "Accept-Language": "fr",
            **(headers or {}),
        }
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            sent.update(
                {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Origin": self.origin,
                    "Referer": f"{self.origin}{path}",
                }
            )
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            content = response.read()
            for header, value in response.getheaders():
                if header.lower() == "set-cookie":
                    cookie: SimpleCookie = SimpleCookie()
                    cookie.load(value)
                    for name, morsel in cookie.items():
                        self.cookies[name] = morsel.value
            return response.status, {k.lower(): v for k, v in response.getheaders()}, content
        finally:
            conn.close()

    def get(self, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, data: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        data = {"csrfmiddlewaretoken": self.cookies.get("csrftoken", ""), **data}
        return self.request("POST", path, data=data)


def csrf_token(html: bytes) -> str:
    match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1).decode()


# One Django start for the tenant, its admin (the ops command) and an integration holding the emulator's tokens.
CREATE_TENANT = """
import json, os
from datetime import timedelta
from django.core.management import call_command
from django.utils import timezone
from chromeos.models import GoogleIntegration, IntegrationStatus
from mdm.models import Tenant, User
call_command("tenant_create", os.environ["TENANT"], "--name", "Production", "--admin-email", os.environ["ADMIN"],
             "--password-env", "PROD_ADMIN_PASSWORD")
token, customer = json.loads(os.environ["GRANT"]), json.loads(os.environ["CUSTOMER"])
tenant = Tenant.objects.get(slug=os.environ["TENANT"])
GoogleIntegration.unscoped.create(
    tenant=tenant, status=IntegrationStatus.ACTIVE, customer_id=customer["id"],
    domain=customer["customerDomain"], customer_info=customer, admin_email=os.environ["GOOGLE_ADMIN"],
    authorized_by=User.objects.get(username=os.environ["ADMIN"]), authorized_at=timezone.now(),
    scopes=token["scope"].split(), refresh_token=token["refresh_token"], access_token=token["access_token"],
    access_token_expires_at=timezone.now() + timedelta(seconds=int(token["expires_in"])),
)
"""


@contextlib.contextmanager
def running_production_stack() -> Iterator[ProdStack]:
    """``scripts/prod.sh all`` with DEBUG off, a tenant and its admin, the emulator and slapd; all stopped and the
    database dropped on exit."""
    run_id = f"mdm-prod-{os.getpid()}"
    base_db_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mdm")
    database_url = base_db_url.rsplit("/", 1)[0] + f"/mdm_prod_{os.getpid()}"
    # Its own folder: another stack started at the same time (a second pytest run) must not replace its logs.
    artifacts = ARTIFACTS / run_id
    shutil.rmtree(artifacts, ignore_errors=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="mdm-prod-"))
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
        secrets = {
            "DJANGO_SECRET_KEY": "prod-test-" + Fernet.generate_key().decode(),
            "MDM_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "GOOGLE_OAUTH_CLIENT_SECRET": "prod-client-secret-" + os.urandom(8).hex(),
            "METRICS_TOKEN": "prod-metrics-" + os.urandom(8).hex(),
        }
        env = {
            **_child_env(database_url, emulator_host, run_id, debug=False),
            **secrets,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            # Every library's debug lines too: the secrets test greps them all.
            "LOG_LEVEL": "DEBUG",
            "DJANGO_BEHIND_TLS_PROXY": "1",
            "GOOGLE_OAUTH_CLIENT_ID": "prod-test.apps.googleusercontent.com",
            "STATIC_ROOT": str(workdir / "static"),
            "BIND": f"127.0.0.1:{web_port}",
            "WEB_CONCURRENCY": "2",
            "CELERY_CONCURRENCY": "2",
            "CELERY_WORKER_NAME": f"{run_id}@%h",
            "CELERY_SYNC_WORKER_NAME": f"{run_id}-sync@%h",
            "CELERY_SYNC_CONCURRENCY": "4",
            "CELERY_BEAT_SCHEDULE_FILE": str(workdir / "celerybeat-schedule"),
            # The private slapd listens on loopback, on a port no LDAP server normally uses.
            "MDM_OUTBOUND_ALLOWED_NETWORKS": "127.0.0.1/32",
            "MDM_OUTBOUND_ALLOWED_PORTS": str(slapd.port),
        }
        stack = ProdStack(
            base_url=f"http://127.0.0.1:{web_port}",
            database_url=database_url,
            emulator_url=f"http://{emulator_host}",
            env=env,
            directory=directory,
            slapd=slapd,
            services=services,
            tenant_slug=TENANT_SLUG,
            admin_email=ADMIN_EMAIL,
            admin_password=ADMIN_PASSWORD,
            secrets=secrets,
            static_root=workdir / "static",
            artifacts=artifacts,
        )
        services["google"] = _start(
            "google",
            [
                PYTHON, "-m", "google_emulator", "--port", str(google_port), "--devices", str(GOOGLE_DEVICES),
                "--org-unit-paths", str(ou_file), "--seed", "5",
                "--client-id", env["GOOGLE_OAUTH_CLIENT_ID"], "--client-secret", secrets["GOOGLE_OAUTH_CLIENT_SECRET"],
            ],
            env,
            artifacts,
        )  # fmt: skip
        services["prod"] = _start("prod", ["scripts/prod.sh", "all"], env, artifacts)
        _wait_http(f"{stack.emulator_url}/_emulator/health", services["google"])
        _wait_http(f"{stack.base_url}/healthz", services["prod"], timeout=90)
        grant = stack.emulator("/oauth/grant", {"scopes": _console_scopes()})
        google = stack.emulator("/state")
        secrets["refresh_token"] = grant["refresh_token"]
        stack.manage(
            "shell", "-c", CREATE_TENANT,
            env={
                "GRANT": json.dumps(grant), "CUSTOMER": json.dumps(google["customer"]), "TENANT": TENANT_SLUG,
                "ADMIN": ADMIN_EMAIL, "GOOGLE_ADMIN": google["admin"]["email"], "PROD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            },
        )  # fmt: skip
        stack.wait_for_log("prod", " ready.", timeout=60)
        yield stack
    finally:
        for service in reversed(list(services.values())):
            service.stop()
        slapd.stop()
        drop_database(database_url)
        shutil.rmtree(workdir, ignore_errors=True)


def _console_scopes() -> list[str]:
    from chromeos.google.client import SCOPES

    return list(SCOPES)
