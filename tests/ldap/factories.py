"""Factories for the LDAP models (tenant-owned rows go through ``unscoped`` with an explicit tenant)."""

from __future__ import annotations

import uuid

import factory

from ldap_sync.models import LdapDirectory, LdapOrgUnit, LdapSyncRun, SyncStatus, SyncTrigger
from tests.factories import TenantOwnedFactory


class LdapDirectoryFactory(TenantOwnedFactory):
    class Meta:
        model = LdapDirectory
        django_get_or_create = ("tenant",)

    uri = "ldap://127.0.0.1:1"
    base_dn = "dc=example,dc=com"
    bind_dn = "cn=mdm-sync,ou=Services,dc=example,dc=com"
    bind_password = "sync-secret"

    @classmethod
    def _create(cls, model_class: type, *args, **kwargs):  # type: ignore[no-untyped-def]
        existing = model_class.unscoped.filter(tenant=kwargs["tenant"]).first()
        return existing or model_class.unscoped.create(*args, **kwargs)


class LdapOrgUnitFactory(TenantOwnedFactory):
    class Meta:
        model = LdapOrgUnit

    directory = factory.SubFactory(LdapDirectoryFactory, tenant=factory.SelfAttribute("..tenant"))
    entry_uuid = factory.LazyFunction(uuid.uuid4)
    name = factory.Sequence(lambda n: f"Unité {n}")
    dn = factory.LazyAttribute(lambda o: f"ou={o.name},dc=example,dc=com")
    path = factory.LazyAttribute(lambda o: f"/{o.name}")


class LdapSyncRunFactory(TenantOwnedFactory):
    class Meta:
        model = LdapSyncRun

    directory = factory.SubFactory(LdapDirectoryFactory, tenant=factory.SelfAttribute("..tenant"))
    trigger = SyncTrigger.MANUAL
    status = SyncStatus.SUCCEEDED
