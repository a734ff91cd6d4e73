"""Alerts for people: admins e-mailed once per episode (failing syncs, re-authorization, guarded removals),
the console's page, support's list."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from chromeos.models import GoogleIntegration, IntegrationStatus, SyncRun, SyncStatus, SyncTrigger
from chromeos.services.sync import devices_sync, sync_request
from google_emulator.testing import EmulatorHandle
from mdm.models import Role, Tenant, User
from mdm.tenancy import tenant_context
from ops.alerts import alerts_evaluate, alerts_scan
from ops.models import Alert, AlertKind

pytestmark = pytest.mark.django_db


def _run(integration: GoogleIntegration, status: str, **fields: Any) -> SyncRun:
    return SyncRun.unscoped.create(
        tenant=integration.tenant,
        integration=integration,
        trigger=SyncTrigger.SCHEDULED,
        status=status,
        finished_at=timezone.now(),
        **fields,
    )


@pytest.fixture
def admins(tenant: Tenant, make_user: Callable[..., User]) -> list[str]:
    make_user(tenant, Role.ADMIN, username="boss@acme.test", email="boss@acme.test")
    make_user(tenant, Role.ADMIN, username="ldap-admin", email="")  # no address: skipped
    make_user(tenant, Role.OPERATOR, username="op@acme.test", email="op@acme.test")  # not an admin
    return ["admin@acme.test", "boss@acme.test"]


def test_n_failed_syncs_in_a_row_email_the_admins_once_per_streak(
    settings: Any, google_integration: GoogleIntegration, admins: list[str]
) -> None:
    settings.OPS_ALERT_SYNC_FAILURES = 3
    tenant = google_integration.tenant
    _run(google_integration, SyncStatus.SUCCEEDED)
    for _ in range(2):
        _run(google_integration, SyncStatus.FAILED, error="Erreur Google : boom")
    _run(google_integration, SyncStatus.SKIPPED)  # a skipped run neither breaks nor extends a streak
    assert alerts_evaluate(tenant) == []
    first = _run(google_integration, SyncStatus.FAILED, error="Erreur Google : boom")
    sent = alerts_evaluate(tenant)
    assert [a.kind for a in sent] == [AlertKind.SYNC_FAILING]
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert sorted(message.to) == admins
    assert "ACME SAS" in message.subject and "boom" in message.body and "3" in message.body
    _run(google_integration, SyncStatus.FAILED)
    assert alerts_evaluate(tenant) == [] and len(mail.outbox) == 1  # the same streak: said once
    _run(google_integration, SyncStatus.SUCCEEDED)
    for _ in range(3):
        _run(google_integration, SyncStatus.FAILED)
    assert len(alerts_evaluate(tenant)) == 1 and len(mail.outbox) == 2  # a new streak
    assert Alert.unscoped.filter(tenant=tenant).count() == 2
    assert Alert.unscoped.filter(
        episode=f"first-failed-run:{first.pk - 3}"
    ).exists()  # the streak's first run


def test_a_revoked_grant_during_a_sync_emails_the_admins_once(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle, admins: list[str]
) -> None:
    google_emulator.control("POST", "/oauth/revoke", {"token": google_integration.refresh_token})
    GoogleIntegration.unscoped.filter(pk=google_integration.pk).update(access_token="")
    google_integration.refresh_from_db()
    with tenant_context(google_integration.tenant):
        run, _ = sync_request(integration=google_integration, trigger=SyncTrigger.MANUAL, enqueue=False)
        devices_sync(run)
    google_integration.refresh_from_db()
    assert google_integration.status == IntegrationStatus.REAUTH_REQUIRED
    assert len(mail.outbox) == 1
    assert "autorisation" in mail.outbox[0].subject.lower()
    assert alerts_scan() == 0 and len(mail.outbox) == 1


def test_beat_tells_about_a_reauthorization_found_elsewhere(
    google_integration: GoogleIntegration, admins: list[str]
) -> None:
    GoogleIntegration.unscoped.filter(pk=google_integration.pk).update(
        status=IntegrationStatus.REAUTH_REQUIRED
    )
    assert alerts_scan() == 1
    assert alerts_scan() == 0
    assert len(mail.outbox) == 1


def test_held_removals_email_once_until_confirmed(
    google_integration: GoogleIntegration, admins: list[str]
) -> None:
    tenant = google_integration.tenant
    held = timezone.now()
    GoogleIntegration.unscoped.filter(pk=google_integration.pk).update(removals_held_since=held)
    _run(google_integration, SyncStatus.GUARDED, pending_removals=40)
    assert [a.kind for a in alerts_evaluate(tenant)] == [AlertKind.REMOVAL_GUARDED]
    assert "40" in mail.outbox[0].body
    _run(google_integration, SyncStatus.GUARDED, pending_removals=41)  # still held: the same episode
    assert alerts_evaluate(tenant) == []
    GoogleIntegration.unscoped.filter(pk=google_integration.pk).update(removals_held_since=None)  # confirmed
    assert alerts_evaluate(tenant) == []
    GoogleIntegration.unscoped.filter(pk=google_integration.pk).update(removals_held_since=timezone.now())
    assert len(alerts_evaluate(tenant)) == 1  # held again later: a new episode
    assert len(mail.outbox) == 2


def test_the_console_shows_what_was_sent_to_its_tenant_only(
    google_integration: GoogleIntegration,
    admins: list[str],
    other_tenant: Tenant,
    make_user: Callable[..., User],
    client_for: Callable[[User], Client],
    readonly_user: User,
) -> None:
    GoogleIntegration.unscoped.filter(pk=google_integration.pk).update(
        status=IntegrationStatus.REAUTH_REQUIRED
    )
    alerts_scan()
    Alert.unscoped.create(
        tenant=other_tenant, kind=AlertKind.SYNC_FAILING, episode="x", subject="Globex only", body="b"
    )
    page = client_for(readonly_user).get("/alertes/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Google demande une nouvelle autorisation (ACME SAS)" in text and "boss@acme.test" in text
    assert "Globex only" not in text
    other = client_for(make_user(other_tenant, Role.ADMIN, username="g@globex.test"))
    assert "ACME SAS" not in other.get("/alertes/").content.decode()


def test_support_sees_every_tenants_alerts(google_integration: GoogleIntegration, support_user: User) -> None:
    Alert.unscoped.create(
        tenant=google_integration.tenant,
        kind=AlertKind.SYNC_FAILING,
        episode="e",
        subject="Sync KO acme",
        body="b",
    )
    client = Client()
    client.force_login(support_user)
    assert "Sync KO acme" in client.get("/support/ops/alert/").content.decode()
