"""Celery tasks: thin wrappers that load rows by id and call a service."""

from __future__ import annotations

from celery import shared_task

from ldap_sync import services
from ldap_sync.models import LdapSyncRun


@shared_task(name="ldap_sync.tasks.ldap_sync_task")
def ldap_sync_task(tenant_id: int, run_id: int) -> str:
    run = (
        LdapSyncRun.unscoped.select_related("tenant", "directory")
        .filter(tenant_id=tenant_id, pk=run_id)
        .first()
    )
    if run is None:  # the directory (and its runs) was deleted after the run was queued
        return "missing"
    return services.ldap_sync_run(run=run).run.status


@shared_task(name="ldap_sync.tasks.ldap_sync_dispatch_task")
def ldap_sync_dispatch_task() -> int:
    """Beat, every few minutes: queue a sync for each directory whose hour has come."""
    return len(services.sync_dispatch_due())
