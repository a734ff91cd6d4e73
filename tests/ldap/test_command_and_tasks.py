"""``manage.py ldap_sync`` and the Celery tasks (dispatcher, lock)."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from ldap_sync import services
from ldap_sync.models import LdapSyncRun, SyncStatus, SyncTrigger
from ldap_sync.tasks import ldap_sync_dispatch_task, ldap_sync_task

pytestmark = pytest.mark.django_db


def test_command_prints_what_it_added_changed_and_removed(tenant, make_directory, scratch_ou, slapd):
    ou = scratch_ou.add_ou("Ventes")
    scratch_ou.add_ou("Lyon")
    scratch_ou.add_person("anne", ou, mail=["anne@example.com"])
    make_directory(tenant, base_dn=scratch_ou.dn)
    out = StringIO()
    call_command("ldap_sync", "acme", stdout=out, stderr=StringIO())
    assert "+ OU   /Ventes" in out.getvalue() and "+ user anne@example.com" in out.getvalue()

    conn = slapd.root_connection()
    conn.rename_s(ou, "ou=Commerce")
    conn.delete_s(f"ou=Lyon,{scratch_ou.dn}")
    conn.unbind_s()
    out = StringIO()
    call_command("ldap_sync", "acme", stdout=out, stderr=StringIO())
    assert "~ OU   /Ventes -> /Commerce" in out.getvalue()
    assert "- OU   /Lyon" in out.getvalue()
    assert LdapSyncRun.unscoped.filter(tenant=tenant, trigger=SyncTrigger.CLI).count() == 2


def test_command_fails_with_a_non_zero_exit(tenant, make_directory):
    make_directory(tenant, bind_password="wrong")
    with pytest.raises(CommandError, match="Identifiants refusés"):
        call_command("ldap_sync", "acme", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="Unknown tenant"):
        call_command("ldap_sync", "nope", stdout=StringIO(), stderr=StringIO())


def test_sync_task_runs_the_queued_run(tenant, make_directory):
    directory = make_directory(tenant)
    run = LdapSyncRun.unscoped.create(tenant=tenant, directory=directory, trigger=SyncTrigger.MANUAL)
    assert ldap_sync_task(tenant.pk, run.pk) == SyncStatus.SUCCEEDED
    assert ldap_sync_task(tenant.pk, run.pk) == SyncStatus.SUCCEEDED  # a redelivery does not sync twice
    assert LdapSyncRun.unscoped.filter(tenant=tenant).count() == 1
    assert ldap_sync_task(tenant.pk, 987654) == "missing"


def test_dispatcher_queues_hourly_syncs_only_after_a_first_manual_sync(
    tenant, other_tenant, make_directory, run_sync, django_capture_on_commit_callbacks
):
    never_synced = make_directory(other_tenant)
    synced = make_directory(tenant)
    run_sync(synced)
    assert synced.hourly_sync_enabled and not never_synced.hourly_sync_enabled

    assert ldap_sync_dispatch_task() == 0  # the manual sync just ran: not due yet

    LdapSyncRun.unscoped.filter(tenant=tenant).update(created_at=timezone.now() - timedelta(minutes=61))
    with django_capture_on_commit_callbacks(execute=True):
        assert ldap_sync_dispatch_task() == 1
    scheduled = LdapSyncRun.unscoped.get(tenant=tenant, trigger=SyncTrigger.SCHEDULED)
    assert scheduled.status == SyncStatus.SUCCEEDED
    assert not LdapSyncRun.unscoped.filter(tenant=other_tenant).exists()


def test_a_pending_run_is_reused_rather_than_queued_twice(tenant, make_directory, admin_user):
    directory = make_directory(tenant)
    first = services.sync_request(directory=directory, trigger=SyncTrigger.MANUAL, actor=admin_user)
    second = services.sync_request(directory=directory, trigger=SyncTrigger.MANUAL, actor=admin_user)
    assert first.pk == second.pk


def test_configure_command_points_a_tenant_at_the_demo_directory(tenant, slapd, demo_dir, monkeypatch):
    from ldap_sync.models import LdapDirectory

    monkeypatch.setenv("LDAP_BIND_PASSWORD", demo_dir.service_password)
    call_command("ldap_configure", "acme", "--uri", slapd.uri, stdout=StringIO())
    out = StringIO()
    call_command("ldap_sync", "acme", stdout=out, stderr=StringIO())
    directory = LdapDirectory.unscoped.get(tenant=tenant)
    assert directory.bind_password == demo_dir.service_password
    assert directory.admin_group_dn == demo_dir.group_dn("admin")
    assert "+ OU   /Paris/Équipe Réseau" in out.getvalue()
