from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import translation

from mdm.locks import close_lock_sessions
from mdm.models import Role, Tenant, User
from mdm.tenancy import tenant_context
from tests.factories import TenantFactory, UserFactory


@pytest.fixture(autouse=True)
def source_language() -> Iterator[None]:
    """Every test starts in the console's source language: a request made in English (LocaleMiddleware activates
    the language in the thread and leaves it) must not leak into the next test's assertions."""
    with translation.override(settings.LANGUAGE_CODE):
        yield


@pytest.fixture(autouse=True)
def lock_sessions() -> Iterator[None]:
    """The process's shared lock connections (``mdm.locks.LockSession``) end with each test, as they would with a
    worker process: no lock, and no session on the test database, outlives the test that took it."""
    yield
    close_lock_sessions()


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Path) -> Path:
    """Uploaded files of a test land in its own directory, never in the work tree's ``var/media``."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def google_quota_keys(settings: Any) -> str:
    """Each test has quota governor buckets of its own in Redis (they expire by themselves): tests, and lanes
    sharing one Redis, never wait on each other's Google calls."""
    settings.GOOGLE_QUOTA_KEY_PREFIX = f"test-{uuid.uuid4().hex[:12]}:google-quota"
    return settings.GOOGLE_QUOTA_KEY_PREFIX


@pytest.fixture
def tenant(db: None) -> Tenant:
    return TenantFactory(slug="acme", name="ACME SAS")


@pytest.fixture
def other_tenant(db: None) -> Tenant:
    return TenantFactory(slug="globex", name="Globex")


@pytest.fixture
def make_user(db: None) -> Callable[..., User]:
    def make(tenant: Tenant, role: str = Role.ADMIN, **kwargs: object) -> User:
        return UserFactory(tenant=tenant, role=role, **kwargs)

    return make


@pytest.fixture
def admin_user(tenant: Tenant, make_user: Callable[..., User]) -> User:
    return make_user(tenant, Role.ADMIN, username="admin@acme.test")


@pytest.fixture
def operator_user(tenant: Tenant, make_user: Callable[..., User]) -> User:
    return make_user(tenant, Role.OPERATOR, username="operator@acme.test")


@pytest.fixture
def readonly_user(tenant: Tenant, make_user: Callable[..., User]) -> User:
    return make_user(tenant, Role.READ_ONLY, username="reader@acme.test")


@pytest.fixture
def support_user(db: None) -> User:
    return UserFactory(tenant=None, role="", is_staff=True, is_superuser=True, username="support@mdm.test")


@pytest.fixture
def client_for() -> Callable[[User], Client]:
    def make(user: User) -> Client:
        c = Client()
        c.force_login(user)
        return c

    return make


@pytest.fixture
def admin_client_(admin_user: User, client_for: Callable[[User], Client]) -> Client:
    """A console client signed in as the tenant's admin (``admin_client`` is pytest-django's superuser)."""
    return client_for(admin_user)


@pytest.fixture
def in_tenant(tenant: Tenant) -> Iterator[Tenant]:
    with tenant_context(tenant):
        yield tenant
