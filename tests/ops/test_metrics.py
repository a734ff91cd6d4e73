"""/metrics: restricted by setting, and what a sync, Google's 429s and the queue look like in it."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from celery_app import app
from chromeos.models import GoogleIntegration, SyncTrigger
from chromeos.services.sync import devices_sync, sync_request
from google_emulator.testing import EmulatorHandle
from mdm.tenancy import tenant_context
from ops import metrics

pytestmark = pytest.mark.django_db


def scrape(
    client: Client | None = None, **headers: Any
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = (client or Client()).get("/metrics", REMOTE_ADDR="127.0.0.1", **headers)
    assert response.status_code == 200, response.status_code
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_are_off_in_production_unless_configured(settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = []
    assert Client().get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 404


def test_token_and_networks_restrict_the_scrape(settings: Any) -> None:
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["console.example"]
    settings.METRICS_TOKEN = "scrape-" + uuid.uuid4().hex
    settings.METRICS_ALLOWED_NETWORKS = ["10.20.0.0/16"]
    ok = {"REMOTE_ADDR": "10.20.3.4", "HTTP_AUTHORIZATION": f"Bearer {settings.METRICS_TOKEN}"}
    # Scraped over plain HTTP at the instance's address, like the health checks.
    assert Client().get("/metrics", HTTP_HOST="10.20.0.9:8000", **ok).status_code == 200
    assert Client().get("/metrics", **{**ok, "REMOTE_ADDR": "192.168.1.2"}).status_code == 403
    assert Client().get("/metrics", **{**ok, "HTTP_AUTHORIZATION": "Bearer wrong"}).status_code == 403
    assert Client().get("/metrics", REMOTE_ADDR="10.20.3.4").status_code == 403
    settings.METRICS_ALLOWED_NETWORKS = []
    assert Client().get("/metrics", **{**ok, "REMOTE_ADDR": "192.168.1.2"}).status_code == 200


def test_a_sync_with_429s_shows_runs_devices_calls_and_retry_waits(
    clean_metrics: None, google_integration: GoogleIntegration, google_emulator: EmulatorHandle
) -> None:
    google_emulator.add_fault(method="directory.chromeosdevices.list", status=429, count=2, retry_after=0)
    devices = len(google_emulator.control("GET", "/devices")["devices"])
    with tenant_context(google_integration.tenant):
        run, _ = sync_request(integration=google_integration, trigger=SyncTrigger.MANUAL, enqueue=False)
        run = devices_sync(run)
        devices_sync(run)  # a redelivery of the finished run counts nothing
    assert run.status == "succeeded"
    samples = scrape()
    assert value(samples, "mdm_chromeos_sync_runs_total", trigger="manual", status="succeeded") == 1
    assert value(samples, "mdm_chromeos_sync_duration_seconds_count", status="succeeded") == 1
    assert value(samples, "mdm_chromeos_sync_devices_total", change="seen") == devices
    assert value(samples, "mdm_chromeos_sync_devices_total", change="added") == devices
    list_ok = value(
        samples, "mdm_google_api_calls_total", method="directory.chromeosdevices.list", status="2xx"
    )
    assert list_ok >= 1
    assert (
        value(samples, "mdm_google_api_calls_total", method="directory.chromeosdevices.list", status="429")
        == 2
    )
    assert value(samples, "mdm_google_retry_wait_seconds_count", status="429") == 2
    assert value(samples, "mdm_tenants_active") == 1
    assert value(samples, "mdm_google_integrations", status="active") == 1
    assert value(samples, "mdm_chromeos_sync_runs_active", status="running") == 0


@pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored")
def test_queue_depth_and_oldest_message_age(settings: Any, clean_metrics: None) -> None:
    queue = f"metrics-test-{uuid.uuid4().hex[:8]}"
    settings.METRICS_CELERY_QUEUES = [queue]
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    try:
        empty = scrape()
        assert value(empty, "mdm_celery_queue_length", queue=queue) == 0
        assert value(empty, "mdm_celery_queue_oldest_message_age_seconds", queue=queue) == 0
        app.send_task("ops.tests.nobody_runs_this", queue=queue)
        time.sleep(1.1)
        app.send_task("ops.tests.nobody_runs_this", queue=queue)
        samples = scrape()
        assert value(samples, "mdm_celery_queue_length", queue=queue) == 2
        assert 1.0 <= value(samples, "mdm_celery_queue_oldest_message_age_seconds", queue=queue) < 60
    finally:
        metrics._client(settings.CELERY_BROKER_URL).delete(f"{prefix}{queue}")


def test_recording_never_fails_the_caller(settings: Any) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    metrics.inc("mdm_alert_emails", "sync_failing")
    metrics.observe("mdm_google_retry_wait_seconds", 1.0, "429")


def test_the_grafana_dashboard_queries_only_metrics_that_exist(clean_metrics: None) -> None:
    import json
    import re
    from pathlib import Path

    response = Client().get("/metrics", REMOTE_ADDR="127.0.0.1")
    exposed = {family.name for family in text_string_to_metric_families(response.content.decode())}
    dashboard = json.loads(
        (Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json").read_text()
    )
    used = {
        re.sub(r"_(bucket|sum|count|total)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bmdm_[a-z_]+", target["expr"])
    }
    assert used and used <= exposed, used - exposed


def test_docs_list_every_exposed_metric(clean_metrics: None) -> None:
    from pathlib import Path

    response = Client().get("/metrics", REMOTE_ADDR="127.0.0.1")
    exposed = {family.name for family in text_string_to_metric_families(response.content.decode())}
    doc = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    missing = [name for name in exposed if f"`{name}`" not in doc and f"`{name}_total`" not in doc]
    assert not missing, missing
