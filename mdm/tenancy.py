"""Tenant scoping: the one mechanism through which tenant-owned rows are read.

Every tenant-owned model subclasses :class:`TenantOwnedModel`. Its default manager, ``objects``, filters on
the *current tenant*, a context variable that :class:`TenantMiddleware` sets from the signed-in user and that
tasks and commands set with :func:`tenant_context`. Reading ``objects`` with no current tenant raises
:class:`NoCurrentTenant` instead of returning every tenant's rows: a view cannot forget the filter, and code
that forgot to set the context fails loudly in tests.

Code that legitimately works across tenants (django-admin for support, beat's dispatcher, data migrations)
uses the ``unscoped`` manager, which is easy to grep for in review.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from django.db import models
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

if TYPE_CHECKING:
    from mdm.models import Tenant

_current_tenant: contextvars.ContextVar[Tenant | None] = contextvars.ContextVar(
    "current_tenant", default=None
)

_M = TypeVar("_M", bound=models.Model)


class NoCurrentTenant(RuntimeError):
    """A tenant-scoped queryset was evaluated outside of any tenant context."""


def current_tenant() -> Tenant:
    tenant = _current_tenant.get()
    if tenant is None:
        raise NoCurrentTenant(
            "No current tenant: wrap this code in tenant_context(tenant) or use the model's `unscoped` manager."
        )
    return tenant


def current_tenant_or_none() -> Tenant | None:
    return _current_tenant.get()


@contextmanager
def tenant_context(tenant: Tenant) -> Iterator[Tenant]:
    token = _current_tenant.set(tenant)
    try:
        yield tenant
    finally:
        _current_tenant.reset(token)


class TenantScopedQuerySet(models.QuerySet[_M]):
    pass


class TenantScopedManager(models.Manager[_M]):
    """Default manager of tenant-owned models: only the current tenant's rows."""

    def get_queryset(self) -> models.QuerySet[_M]:
        return super().get_queryset().filter(tenant=current_tenant())


class TenantOwnedModel(models.Model):
    tenant = models.ForeignKey("mdm.Tenant", on_delete=models.CASCADE, related_name="+", editable=False)

    objects: TenantScopedManager[Any] = TenantScopedManager()
    unscoped: models.Manager[Any] = models.Manager()

    class Meta:
        abstract = True
        # Related-object access and cascades must work in any context (e.g. support deleting a tenant).
        base_manager_name = "unscoped"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.tenant_id is None:
            self.tenant = current_tenant()
        super().save(*args, **kwargs)


class TenantMiddleware:
    """Makes the signed-in user's tenant the current tenant for the duration of the request, and its time zone
    the active one (pages, CSV exports and forms show and read times in the tenant's zone)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        tenant = getattr(user, "tenant", None) if user is not None and user.is_authenticated else None
        if tenant is None:
            return self.get_response(request)
        with tenant_context(tenant), timezone.override(tenant.tzinfo):
            return self.get_response(request)
