"""Prometheus metrics of the whole deployment (web and workers), kept in Redis, served at ``/metrics``.

**Why Redis, not prometheus-client's multiprocess mode.** gunicorn runs several web processes, Celery's prefork
pool several worker processes, and a deployment several hosts. Multiprocess mode needs a shared directory per
host, one scrape target per host (the workers have no HTTP server) and cleanup of dead processes' files. Here
every process adds its events to Redis hashes (one pipelined round trip per event, never an error for the
caller: a Redis outage loses samples, not syncs), and ``/metrics`` on any web process reads those plus gauges
computed at scrape time from PostgreSQL and Redis (queue depth and oldest message, device jobs, tenants,
workers). One scrape target answers for the whole deployment; counters survive process restarts.

**Access** (``METRICS_TOKEN``, ``METRICS_ALLOWED_NETWORKS``): off unless one of them is set (404), except in
development where loopback may scrape. A request must come from an allowed network (the direct peer's address:
scrape instances directly, not through the public proxy) when networks are set, and bear
``Authorization: Bearer <token>`` when a token is set.

Every metric, its labels and meaning: ``COUNTERS``, ``HISTOGRAMS`` and ``gauges()`` below (and ops.md).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from functools import cache
from typing import Any

import redis
from django.conf import settings
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

# name (without _total): (help, label names)
COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "mdm_chromeos_sync_runs": ("ChromeOS sync runs finished, by trigger and outcome.", ("trigger", "status")),
    "mdm_chromeos_sync_devices": (
        "Devices read from Google by finished ChromeOS syncs (change=seen) and what the merge did with them.",
        ("change",),
    ),
    "mdm_google_api_calls": (
        "Google API requests (each attempt), by discovery method id and HTTP status (2xx, 429, 503, network...).",
        ("method", "status"),
    ),
    "mdm_ldap_sync_runs": (
        "LDAP directory sync runs finished, by trigger and outcome.",
        ("trigger", "status"),
    ),
    "mdm_alert_emails": ("Alert e-mails sent to tenant admins, by kind.", ("kind",)),
    "mdm_google_quota_waits": (
        "Google calls the quota governor made wait, by the limit that held them (user, project, tenant, fair).",
        ("limit",),
    ),
}
DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
WAIT_BUCKETS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
# name: (help, label names, buckets)
HISTOGRAMS: dict[str, tuple[str, tuple[str, ...], tuple[float, ...]]] = {
    "mdm_chromeos_sync_duration_seconds": (
        "Wall time of finished ChromeOS sync runs, from start to end, by outcome.",
        ("status",),
        DURATION_BUCKETS,
    ),
    "mdm_ldap_sync_duration_seconds": (
        "Wall time of finished LDAP sync runs, by outcome.",
        ("status",),
        DURATION_BUCKETS,
    ),
    "mdm_google_retry_wait_seconds": (
        "Waits before retrying a Google call after a transient error (429, 5xx, network), by the status that "
        "caused it: the count is the number of retries.",
        ("status",),
        WAIT_BUCKETS,
    ),
    "mdm_google_quota_wait_seconds": (
        "Time Google calls waited in the quota governor before being sent, by the limit that held them.",
        ("limit",),
        (0.05, 0.1, 0.25, *WAIT_BUCKETS),
    ),
}
REDIS_TIMEOUT_SECONDS = 1.0
OPEN_JOB_STATES = ("draft", "queued", "running")
# Set on every task message by ops.worker (before_task_publish), read back for the oldest waiting message's age.
PUBLISHED_AT_HEADER = "mdm_published_at"


def _prefix() -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', 'mdm')}:metrics"


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
    )


def _redis() -> redis.Redis:
    return _client(settings.REDIS_URL)


def _field(labels: Sequence[str]) -> str:
    return json.dumps([str(v) for v in labels], ensure_ascii=False)


# -- recording (any process) -----------------------------------------------------------------------------------
def inc(name: str, *labels: str, amount: float = 1.0) -> None:
    """Add to a counter of ``COUNTERS``; never raises."""
    assert name in COUNTERS and len(labels) == len(COUNTERS[name][1]), name
    try:
        _redis().hincrbyfloat(f"{_prefix()}:c:{name}", _field(labels), amount)
    except redis.RedisError:
        logger.debug("metric %s not recorded (Redis unavailable)", name)


def observe(name: str, value: float, *labels: str) -> None:
    """Add one observation to a histogram of ``HISTOGRAMS``; never raises."""
    _, label_names, buckets = HISTOGRAMS[name]
    assert len(labels) == len(label_names), name
    bucket = next((str(b) for b in buckets if value <= b), "+Inf")
    field = _field(labels)
    key = f"{_prefix()}:h:{name}"
    try:
        pipe = _redis().pipeline(transaction=False)
        pipe.hincrbyfloat(key, f"{field}|{bucket}", 1)
        pipe.hincrbyfloat(key, f"{field}|sum", value)
        pipe.execute()
    except redis.RedisError:
        logger.debug("metric %s not recorded (Redis unavailable)", name)


def record_sync_run(run: Any) -> None:
    """A ChromeOS sync run has just finished (``chromeos.services.sync.devices_sync``)."""
    inc("mdm_chromeos_sync_runs", run.trigger, run.status)
    if run.started_at is not None and run.finished_at is not None:
        seconds = max(0.0, (run.finished_at - run.started_at).total_seconds())
        observe("mdm_chromeos_sync_duration_seconds", seconds, run.status)
    for change, count in (
        ("seen", run.devices_seen),
        ("added", run.added),
        ("updated", run.updated),
        ("unchanged", run.unchanged),
        ("removed", run.removed),
    ):
        if count:
            inc("mdm_chromeos_sync_devices", change, amount=count)


def record_ldap_sync_run(run: Any) -> None:
    inc("mdm_ldap_sync_runs", run.trigger, run.status)
    if run.started_at is not None and run.finished_at is not None:
        seconds = max(0.0, (run.finished_at - run.started_at).total_seconds())
        observe("mdm_ldap_sync_duration_seconds", seconds, run.status)


def record_google_call(method: str, status: int | str | None) -> None:
    inc("mdm_google_api_calls", method or "unknown", _status_label(status))


def record_google_retry_wait(status: int | str | None, seconds: float) -> None:
    observe("mdm_google_retry_wait_seconds", seconds, _status_label(status))


def record_google_quota_wait(limit: str, seconds: float) -> None:
    inc("mdm_google_quota_waits", limit)
    observe("mdm_google_quota_wait_seconds", seconds, limit)


def _status_label(status: int | str | None) -> str:
    if status is None or status == "":
        return "network"
    return str(status)


# -- reading (/metrics) ----------------------------------------------------------------------------------------
def _read_hash(key: str) -> dict[str, float]:
    raw: dict[Any, Any] = _redis().hgetall(key)
    return {(k.decode() if isinstance(k, bytes) else k): float(v) for k, v in raw.items()}


def _counters() -> Iterator[Metric]:
    for name, (help_text, label_names) in COUNTERS.items():
        family = CounterMetricFamily(name, help_text, labels=list(label_names))
        for field, value in sorted(_read_hash(f"{_prefix()}:c:{name}").items()):
            family.add_metric(json.loads(field), value)
        yield family


def _histograms() -> Iterator[Metric]:
    for name, (help_text, label_names, buckets) in HISTOGRAMS.items():
        family = HistogramMetricFamily(name, help_text, labels=list(label_names))
        series: dict[str, dict[str, float]] = {}
        for key, value in _read_hash(f"{_prefix()}:h:{name}").items():
            field, _, part = key.rpartition("|")
            series.setdefault(field, {})[part] = value
        for field, parts in sorted(series.items()):
            cumulative, rows = 0.0, []
            for bound in (*[str(b) for b in buckets], "+Inf"):
                cumulative += parts.get(bound, 0.0)
                rows.append((bound, cumulative))
            family.add_metric(json.loads(field), rows, parts.get("sum", 0.0))
        yield family


def _queues() -> list[str]:
    configured = getattr(settings, "METRICS_CELERY_QUEUES", None)
    if configured:
        return list(configured)
    return [queue.name for queue in getattr(settings, "CELERY_TASK_QUEUES", None) or ()] or ["celery"]


def _queue_gauges() -> Iterator[Metric]:
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    broker = _client(settings.CELERY_BROKER_URL)
    length = GaugeMetricFamily(
        "mdm_celery_queue_length",
        "Task messages waiting in the Celery queue (not yet taken).",
        labels=["queue"],
    )
    oldest = GaugeMetricFamily(
        "mdm_celery_queue_oldest_message_age_seconds",
        "Age of the oldest task message waiting in the queue (0 when empty).",
        labels=["queue"],
    )
    now = time.time()
    for queue in _queues():
        key = f"{prefix}{queue}"
        length.add_metric([queue], float(broker.llen(key)))
        age = 0.0
        # kombu pushes on the left and takes from the right: the oldest waiting message is the last one.
        message = broker.lindex(key, -1)
        if message:
            try:
                published = float(json.loads(message)["headers"][PUBLISHED_AT_HEADER])
                age = max(0.0, now - published)
            except (ValueError, KeyError, TypeError):
                age = 0.0  # published before this header existed
        oldest.add_metric([queue], age)
    yield length
    yield oldest


def _database_gauges() -> Iterator[Metric]:
    from chromeos.models import DeviceActionJob, GoogleIntegration, IntegrationStatus, SyncRun
    from mdm.models import Tenant
    from ops.models import WorkerHeartbeat
    from ops.worker import worker_state

    since = timezone.now() - timedelta(hours=24)
    jobs = GaugeMetricFamily(
        "mdm_device_jobs",
        "Device action jobs by state: every open job (draft, queued, running) and those created in the last 24 h.",
        labels=["state"],
    )
    counts = dict.fromkeys(OPEN_JOB_STATES, 0)
    rows = (
        DeviceActionJob.unscoped.filter(Q(status__in=OPEN_JOB_STATES) | Q(created_at__gte=since))
        .values_list("status")
        .annotate(n=Count("id"))
    )
    counts.update(dict(rows))
    for state, n in sorted(counts.items()):
        jobs.add_metric([state], float(n))
    yield jobs

    syncs = GaugeMetricFamily(
        "mdm_chromeos_sync_runs_active", "ChromeOS sync runs queued or running now.", labels=["status"]
    )
    active = dict.fromkeys(("queued", "running"), 0)
    active.update(
        dict(SyncRun.unscoped.filter(status__in=active).values_list("status").annotate(n=Count("id")))
    )
    for status, n in sorted(active.items()):
        syncs.add_metric([status], float(n))
    yield syncs

    integrations = dict(GoogleIntegration.unscoped.values_list("status").annotate(n=Count("id")))
    yield GaugeMetricFamily("mdm_tenants", "Tenants of the console.", value=float(Tenant.objects.count()))
    yield GaugeMetricFamily(
        "mdm_tenants_active",
        "Tenants whose Google integration is active (synced hourly).",
        value=float(integrations.get(IntegrationStatus.ACTIVE, 0)),
    )
    by_status = GaugeMetricFamily(
        "mdm_google_integrations", "Google integrations by status.", labels=["status"]
    )
    for status in IntegrationStatus.values:
        by_status.add_metric([status], float(integrations.get(status, 0)))
    yield by_status

    workers = GaugeMetricFamily(
        "mdm_celery_workers", "Celery workers by heartbeat state (ops.WorkerHeartbeat).", labels=["state"]
    )
    states = dict.fromkeys(("alive", "late", "stopped"), 0)
    now = timezone.now()
    for row in WorkerHeartbeat.objects.all():
        states[worker_state(row, now)] += 1
    for state, n in states.items():
        workers.add_metric([state], float(n))
    yield workers


class DeploymentCollector(Collector):
    def collect(self) -> Iterable[Metric]:
        yield from _counters()
        yield from _histograms()
        yield from _queue_gauges()
        yield from _database_gauges()


def exposition() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DeploymentCollector())
    return generate_latest(registry)


# -- access ----------------------------------------------------------------------------------------------------
def _networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(n, strict=False) for n in settings.METRICS_ALLOWED_NETWORKS]


def metrics_enabled() -> bool:
    return bool(settings.METRICS_TOKEN or settings.METRICS_ALLOWED_NETWORKS)


def metrics_allowed(request: HttpRequest) -> bool:
    networks = _networks()
    if networks:
        try:
            peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
        except ValueError:
            return False
        if not any(peer in network for network in networks):
            return False
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return False
    return True


def metrics_response(request: HttpRequest) -> HttpResponse:
    if not metrics_enabled():
        return HttpResponse(status=404)
    if not metrics_allowed(request):
        return HttpResponse(status=403)
    try:
        body = exposition()
    except Exception:
        logger.exception("metrics scrape failed")
        return HttpResponse(status=503)
    response = HttpResponse(body, content_type="text/plain; version=0.0.4; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response
