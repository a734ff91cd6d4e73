"""/healthz and /readyz: unauthenticated, before the host check and the HTTPS redirect, revealing nothing."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.test import Client

from ldap_sync.models import LdapDirectory
from mdm.models import Tenant
from ops import health


@pytest.fixture
def production_like(settings: Any) -> Any:
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["console.example"]
    return settings


@pytest.mark.django_db
def test_healthz_answers_without_host_check_or_redirect(production_like: Any) -> None:
    response = Client().get("/healthz", HTTP_HOST="10.0.0.7:8000")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"
    # Everything else still gets the redirect and the host check.
    assert Client().get("/login/", HTTP_HOST="console.example").status_code == 301
    assert Client().get("/login/", HTTP_HOST="10.0.0.7:8000").status_code == 400


@pytest.mark.django_db
def test_readyz_ok_names_only_the_checks(production_like: Any) -> None:
    response = Client().get("/readyz/", HTTP_HOST="10.0.0.7")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "redis": "ok", "migrations": "ok", "encryption_keys": "ok"},
    }


@pytest.mark.django_db
def test_readyz_fails_when_stored_secrets_do_not_decrypt_with_the_keys(settings: Any, tenant: Tenant) -> None:
    LdapDirectory.unscoped.create(
        tenant=tenant, uri="ldap://127.0.0.1:1", base_dn="dc=x", bind_dn="cn=x", bind_password="s3cret-bind"
    )
    settings.MDM_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # a deploy with the wrong key
    response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["encryption_keys"] == "fail"
    assert body["checks"]["database"] == "ok"
    assert "s3cret" not in response.content.decode() and "Key" not in response.content.decode()


@pytest.mark.django_db
def test_readyz_fails_when_redis_is_unreachable(settings: Any) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"] == "fail"
    assert "127.0.0.1" not in response.content.decode()


@pytest.mark.django_db
def test_readyz_fails_while_a_migration_is_unapplied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "_migrations_applied", False)
    # Inside the test's transaction (rolled back after it): as if the newest deploy had not migrated yet.
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_migrations WHERE id = (SELECT max(id) FROM django_migrations)")
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"] == "fail"
