"""Health (``/healthz``) and readiness (``/readyz``) for load balancers and orchestrators.

``/healthz``: the process answers (nothing else is touched: a database outage must not get healthy web
processes killed). ``/readyz``: this process can serve: PostgreSQL answers, Redis (cache and broker) answers,
every migration is applied, and the encryption keys are usable (each key loads, the first one round-trips, and
one stored secret of each encrypted column decrypts, so a deploy with the wrong keys is not "ready").

Both (and ``/metrics``, ops/metrics.py) are answered by :class:`HealthMiddleware`, first in the chain: before the host check (a probe addresses the
instance, not the public name), before the HTTPS redirect (probes speak plain HTTP to the instance), without
session, user or tenant. The JSON says only which check failed: no versions, hosts or error texts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache

import redis
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse

from mdm.fields import decrypt, encrypt, encrypted_fields, keyring

logger = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
METRICS_PATH = "/metrics"
REDIS_TIMEOUT_SECONDS = 2.0


@cache
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
    )


def check_database() -> None:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")


def check_redis() -> None:
    for url in {settings.REDIS_URL, settings.CELERY_BROKER_URL}:
        if not _redis(url).ping():
            raise RuntimeError("no PONG")


_migrations_applied = False


def check_migrations() -> None:
    # Once applied, applied for the life of this process's code: only the first success costs a graph load.
    global _migrations_applied
    if _migrations_applied:
        return
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        raise RuntimeError("unapplied migrations")
    _migrations_applied = True


def check_encryption_keys() -> None:
    keyring()  # every listed key loads
    if decrypt(encrypt("readyz")) != "readyz":
        raise RuntimeError("round trip")
    connection = connections[DEFAULT_DB_ALIAS]
    for model, field in encrypted_fields():
        table, column = (
            connection.ops.quote_name(model._meta.db_table),
            connection.ops.quote_name(str(field.column)),
        )
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {column} FROM {table} WHERE {column} <> '' LIMIT 1")  # noqa: S608 - model metadata
            row = cursor.fetchone()
        if row:
            decrypt(row[0])


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "redis": check_redis,
    "migrations": check_migrations,
    "encryption_keys": check_encryption_keys,
}


def readiness() -> tuple[bool, dict[str, str]]:
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        if name == "migrations" and results.get("database") != "ok":
            results[name] = "unknown"
            continue
        try:
            check()
        except Exception:
            # The reason goes to the log for ops, never to the (unauthenticated) answer.
            logger.warning("readiness check %s failed", name, exc_info=True)
            results[name] = "fail"
        else:
            results[name] = "ok"
    return all(v == "ok" for v in results.values()), results


def _answer(status: int, body: dict[str, object]) -> HttpResponse:
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    return response


class HealthMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info.rstrip("/")
        if path == HEALTH_PATH and request.method in ("GET", "HEAD"):
            return _answer(200, {"status": "ok"})
        if path == READY_PATH and request.method in ("GET", "HEAD"):
            ready, checks = readiness()
            return _answer(
                200 if ready else 503, {"status": "ok" if ready else "unavailable", "checks": checks}
            )
        if path == METRICS_PATH and request.method == "GET":
            from ops.metrics import metrics_response

            return metrics_response(request)
        return self.get_response(request)
