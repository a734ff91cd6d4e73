"""The console in production mode (``scripts/prod.sh all``, DEBUG off, only environment variables), started once:
static files hashed and compressed through whitenoise, login, a sync through the worker, ``check --deploy``,
health and readiness. See prod_stack.py for what runs."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import time

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ldap_sync.demo_directory import SERVICE_PASSWORD
from tests.e2e.stack import PYTHON, ROOT
from tests.ops.prod_stack import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    TENANT_SLUG,
    Browser,
    ProdStack,
    csrf_token,
)

pytestmark = [pytest.mark.slow]

HASHED = re.compile(rb'(?:href|src)="(/static/[^"]+\.[0-9a-f]{12}\.(?:css|js))"')


def _sign_in(stack: ProdStack) -> Browser:
    browser = Browser(stack.base_url)
    status, _, page = browser.get("/login/")
    assert status == 200
    status, _, _ = browser.post(
        "/login/",
        {"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrfmiddlewaretoken": csrf_token(page)},
    )
    assert status == 302, "login refused"
    return browser


def check_check_deploy_passes_with_the_production_environment(prod_stack: ProdStack) -> None:
    output = prod_stack.manage("check", "--deploy", "--fail-level", "WARNING")
    assert "no issues" in output


def check_plain_http_is_redirected_to_https(prod_stack: ProdStack) -> None:
    browser = Browser(prod_stack.base_url)
    status, headers, _ = browser.request("GET", "/login/", headers={"X-Forwarded-Proto": "http"})
    assert status == 301
    assert headers["location"].startswith("https://")


def check_css_and_js_load_hashed_and_compressed(prod_stack: ProdStack) -> None:
    browser = Browser(prod_stack.base_url)
    status, _, page = browser.get("/login/")
    assert status == 200
    assets = [m.decode() for m in HASHED.findall(page)]
    assert any(a.endswith(".css") for a in assets), page[:2000]
    assert any(a.endswith(".js") for a in assets), page[:2000]
    assert "/static/vendor/pico/" in " ".join(assets) and "/static/vendor/htmx/" in " ".join(assets)
    for asset in assets:
        status, headers, body = browser.get(asset, **{"Accept-Encoding": "gzip"})
        assert status == 200, asset
        assert headers.get("content-encoding") == "gzip", asset
        assert "immutable" in headers.get("cache-control", ""), asset
        assert len(gzip.decompress(body)) > len(body), asset
        plain_status, plain_headers, plain = browser.get(asset)
        assert plain_status == 200 and "content-encoding" not in plain_headers
        assert plain == gzip.decompress(body)
    # The unhashed name is also served (collectstatic keeps it), but never referenced by a page.
    assert b'/static/vendor/pico/pico.min.css"' not in page


def check_login_works_and_the_console_renders(prod_stack: ProdStack) -> None:
    browser = _sign_in(prod_stack)
    status, _, page = browser.get("/")
    assert status == 200
    assert b"Production" in page or ADMIN_EMAIL.encode() in page


def run_sync(stack: ProdStack) -> tuple[str, int, int]:
    """Synchro maintenant, as an admin: the web queues it on Redis, the worker runs it. (status, seen, added)"""
    browser = _sign_in(stack)
    status, _, manage = browser.get("/admin/google/chromeos/")
    assert status == 200
    status, _, _ = browser.post("/admin/google/chromeos/sync/", {"csrfmiddlewaretoken": csrf_token(manage)})
    assert status == 302
    deadline = time.monotonic() + 60
    row = None
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT status, devices_seen, added FROM chromeos_syncrun WHERE trigger = 'manual' ORDER BY id DESC"
            ).fetchone()
            if row and row[0] not in ("queued", "running"):
                break
            time.sleep(0.3)
    assert row is not None, stack.logs()
    return row


def check_a_sync_runs_through_the_worker(prod_stack: ProdStack) -> None:
    status, seen, _ = run_sync(prod_stack)
    assert status == "succeeded", prod_stack.logs()
    assert seen == 60


def check_health_and_readiness(prod_stack: ProdStack) -> None:
    browser = Browser(prod_stack.base_url)
    # Probes reach the instance over plain HTTP, by address: no redirect, no host check.
    for path in ("/healthz", "/readyz"):
        status, headers, body = browser.request(
            "GET", path, headers={"X-Forwarded-Proto": "http", "Host": "10.1.2.3:8000"}
        )
        assert status == 200, (path, body)
        assert headers["content-type"] == "application/json"
        answer = json.loads(body)
        assert answer["status"] == "ok"
    assert answer["checks"] == {
        "database": "ok",
        "redis": "ok",
        "migrations": "ok",
        "encryption_keys": "ok",
    }
    assert set(answer) == {"status", "checks"}


def check_the_worker_beats_and_counts_its_tasks(prod_stack: ProdStack) -> None:
    assert run_sync(prod_stack)[0] == "succeeded"
    with psycopg.connect(prod_stack.database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT hostname, now() - last_seen_at, tasks_done, stopped_at FROM ops_workerheartbeat"
        ).fetchall()
    # Two workers: the general one (prefork) and the sync queue's (threads), which ran the syncs.
    by_name = {
        hostname.split("@")[0]: (age, tasks_done, stopped_at)
        for hostname, age, tasks_done, stopped_at in rows
    }
    assert set(by_name) == {
        prod_stack.env["CELERY_WORKER_NAME"].split("@")[0],
        prod_stack.env["CELERY_SYNC_WORKER_NAME"].split("@")[0],
    }, rows
    for age, _tasks_done, stopped_at in by_name.values():
        assert age.total_seconds() < 45 and stopped_at is None
    assert by_name[prod_stack.env["CELERY_SYNC_WORKER_NAME"].split("@")[0]][1] >= 1


def _manage(stack: ProdStack, *args: str, env: dict[str, str] | None = None) -> str:
    """A management command in production mode; everything it printed or logged."""
    result = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env={**stack.env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def synced(prod_stack: ProdStack) -> list[str]:
    """Once: a sync through the worker that meets one 429 from Google, then an LDAP configuration change and an
    LDAP sync from the command line; what those commands printed or logged."""
    prod_stack.emulator(
        "/faults", {"method": "directory.chromeosdevices.list", "status": 429, "count": 1, "retry_after": 0}
    )
    assert run_sync(prod_stack)[0] == "succeeded"
    return [
        _manage(prod_stack, "ldap_configure", TENANT_SLUG, "--uri", prod_stack.slapd.uri,
                env={"LDAP_BIND_PASSWORD": SERVICE_PASSWORD}),
        _manage(prod_stack, "ldap_sync", TENANT_SLUG),
    ]  # fmt: skip


def check_metrics_after_a_sync_with_429s_and_an_ldap_sync(prod_stack: ProdStack, synced: list[str]) -> None:
    stack = prod_stack
    browser = Browser(stack.base_url)
    # Scraped like Prometheus does: the instance's address, plain HTTP, the bearer token.
    plain = {"X-Forwarded-Proto": "http", "Host": "10.1.2.3:8000"}
    assert browser.request("GET", "/metrics", headers=plain)[0] == 403
    status, headers, body = browser.request(
        "GET", "/metrics", headers={**plain, "Authorization": f"Bearer {stack.secrets['METRICS_TOKEN']}"}
    )
    assert status == 200 and headers["content-type"].startswith("text/plain")
    text = body.decode()
    (stack.artifacts / "metrics-after-sync.txt").write_text(text, encoding="utf-8")
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("mdm_chromeos_sync_runs_total", trigger="manual", status="succeeded") >= 1
    assert value("mdm_chromeos_sync_duration_seconds_count", status="succeeded") >= 1
    assert value("mdm_chromeos_sync_devices_total", change="added") == 60
    assert value("mdm_google_api_calls_total", method="directory.chromeosdevices.list", status="429") == 1
    assert value("mdm_google_retry_wait_seconds_count", status="429") == 1
    assert value("mdm_ldap_sync_runs_total", trigger="cli", status="succeeded") == 1
    assert value("mdm_tenants_active") == 1
    assert value("mdm_celery_workers", state="alive") == 2
    assert ("mdm_celery_queue_length", (("queue", "celery"),)) in samples
    assert ("mdm_celery_queue_length", (("queue", "chromeos-sync"),)) in samples


def _stored_secrets(stack: ProdStack) -> list[str]:
    """Every secret the console stores, decrypted with the stack's key: OAuth tokens, LDAP bind passwords."""
    from cryptography.fernet import Fernet

    fernet = Fernet(stack.secrets["MDM_ENCRYPTION_KEYS"].encode())
    values = []
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT refresh_token FROM chromeos_googleintegration UNION ALL "
            "SELECT access_token FROM chromeos_googleintegration UNION ALL "
            "SELECT bind_password FROM ldap_sync_ldapdirectory"
        ).fetchall()
    for (stored,) in rows:
        if stored:
            values.append(fernet.decrypt(stored.split("$", 1)[1].encode()).decode())
    return values


def check_logs_are_json_lines_with_context_and_no_secret(prod_stack: ProdStack, synced: list[str]) -> None:
    stack = prod_stack
    outputs = synced
    browser = _sign_in(stack)
    status, headers, _ = browser.request("GET", "/", headers={"X-Request-ID": "req-ops-test-0001"})
    assert status == 200 and headers["x-request-id"] == "req-ops-test-0001"
    # gunicorn writes the request's line after answering: wait for it rather than for a fixed time (a loaded
    # machine took longer than half a second).
    deadline = time.monotonic() + 20
    log = stack.services["prod"].log()
    while "req-ops-test-0001" not in log and time.monotonic() < deadline:
        time.sleep(0.2)
        log = stack.services["prod"].log()
    lines = [line for line in log.splitlines() if line.strip()]
    records = []
    for line in lines:
        if line.startswith("{"):
            records.append(json.loads(line))
    # Everything the Python processes log is JSON (what is not: bash's own messages, none expected).
    non_json = [line for line in lines if not line.startswith("{")]
    assert not non_json, non_json[:5]
    assert {"time", "level", "logger", "message"} <= set(records[0])
    request = [
        r for r in records if r.get("request_id") == "req-ops-test-0001" and r["logger"] == "mdm.request"
    ]
    assert (
        request and request[0]["tenant"] == TENANT_SLUG and request[0]["user"] and request[0]["status"] == 200
    )
    sync = [
        r for r in records if r["message"].startswith("chromeos sync ") and r.get("status") == "succeeded"
    ]
    assert sync, "no sync line"
    assert sync[0]["tenant"] == TENANT_SLUG and sync[0]["run_id"] and sync[0]["task_id"]
    assert sync[0]["task"] == "chromeos.tasks.devices_sync_task"

    secrets = {
        **stack.secrets,
        "ldap bind password": SERVICE_PASSWORD,
        **{f"stored secret {i}": value for i, value in enumerate(_stored_secrets(stack))},
    }
    assert len(secrets) >= 8
    everything = log + "\n".join(outputs)
    leaked = [name for name, value in secrets.items() if value in everything]
    assert not leaked, leaked


def check_security_headers_of_a_real_response(prod_stack: ProdStack) -> None:
    """Every header the console sends in production, through gunicorn (the list is written to
    ``test-artifacts/production-headers.txt``)."""
    from tests.e2e.stack import ARTIFACTS

    browser = Browser(prod_stack.base_url)
    status, headers, _ = browser.get("/login/")
    assert status == 200
    ARTIFACTS.parent.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS.parent / "production-headers.txt").write_text(
        "".join(f"{name}: {value}\n" for name, value in sorted(headers.items()))
    )
    csp = {
        part.split()[0]: part.split()[1:]
        for part in headers["content-security-policy"].split(";")
        if part.strip()
    }
    assert csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"] and csp["object-src"] == ["'none'"]
    assert "camera=()" in headers["permissions-policy"] and "geolocation=()" in headers["permissions-policy"]
    assert headers["referrer-policy"] == "same-origin"
    assert headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert "HttpOnly" in headers["set-cookie"] and "Secure" in headers["set-cookie"]


def test_production_mode(prod_stack: ProdStack, synced: list[str]) -> None:
    """Every check above against one production-mode stack, in one test: one xdist worker starts the stack
    (this pytest-xdist's loadgroup does not keep a module's tests together)."""
    for check in (
        check_check_deploy_passes_with_the_production_environment,
        check_plain_http_is_redirected_to_https,
        check_css_and_js_load_hashed_and_compressed,
        check_login_works_and_the_console_renders,
        check_a_sync_runs_through_the_worker,
        check_health_and_readiness,
        check_the_worker_beats_and_counts_its_tasks,
        check_metrics_after_a_sync_with_429s_and_an_ldap_sync,
        check_logs_are_json_lines_with_context_and_no_secret,
        check_security_headers_of_a_real_response,
    ):
        if "synced" in check.__code__.co_varnames[: check.__code__.co_argcount]:
            check(prod_stack, synced)
        else:
            check(prod_stack)
