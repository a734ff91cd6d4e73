"""Removing the Google integration, against the emulator over HTTP and PostgreSQL: what goes, what stays,
that Google really revoked the grant, and every failure path (nothing deleted, a support reference)."""

from __future__ import annotations

import socket
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.db import connection, connections, transaction
from django.utils import timezone
from google.auth.exceptions import RefreshError
from google.auth.transport.requests import Request
from google.oauth2.credentials import Credentials

from chromeos.google.client import SCOPES
from chromeos.models import (
    ChromeOSDevice,
    DeviceCommand,
    GoogleIntegration,
    IntegrationStatus,
    RemovalRun,
    RemovalStatus,
)
from chromeos.selectors.removal import removal_panel
from chromeos.services.removal import (
    KEPT_MODELS,
    REMOVED_MODELS,
    RemovalError,
    integration_accepts_writes,
    model_key,
    removal_request,
    removal_run_execute,
    removal_run_is_stale,
)
from chromeos.tasks.removal import removal_run_task
from mdm.models import App, AuditEvent, Blueprint
from mdm.tenancy import TenantOwnedModel
from tests.chromeos.removal_data import populate_integration_data
from tests.factories import AppFactory, BlueprintFactory, GoogleIntegrationFactory


def _counts(tenant: Any) -> dict[str, int]:
    return {model_key(m): m.unscoped.filter(tenant=tenant).count() for m in REMOVED_MODELS}


def _refresh_works(google_emulator: Any, refresh_token: str) -> bool:
    credentials = Credentials(
        token=None,
        refresh_token=refresh_token,
        client_id=google_emulator.client_id,
        client_secret=google_emulator.client_secret,
        token_uri=google_emulator.token_uri,
        scopes=SCOPES,
    )
    try:
        credentials.refresh(Request())
    except RefreshError:
        return False
    return True


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Runs queued instead of run: in tests with real commits the eager task would run at once, before the
    test has set up what it races against; the test then runs the service itself."""
    runs: list[int] = []
    # Published through the outbox (mdm/jobs.py), which calls apply_async.
    monkeypatch.setattr(removal_run_task, "apply_async", lambda args, **options: runs.append(args[0]))
    return runs


def _remove(tenant: Any, actor: Any, django_capture_on_commit_callbacks: Any) -> RemovalRun:
    """Ask for a removal as the view does and let the (eager) Celery task run it on commit."""
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        run = removal_request(tenant=tenant, actor=actor)
    assert len(callbacks) == 1
    run.refresh_from_db()
    return run


# -- coverage of the cascade: a model added later cannot be forgotten --------------------------------------
def test_every_chromeos_model_is_either_removed_or_explicitly_kept():
    chromeos_models = set(apps.get_app_config("chromeos").get_models())
    covered = set(REMOVED_MODELS) | set(KEPT_MODELS)
    assert chromeos_models - covered == set(), "add these models to REMOVED_MODELS (or KEPT_MODELS)"
    assert not set(REMOVED_MODELS) & set(KEPT_MODELS)
    for model in REMOVED_MODELS:
        assert issubclass(model, TenantOwnedModel), f"{model.__name__} is deleted by tenant: it needs one"


def test_removed_models_are_deleted_children_first_and_nothing_else_points_at_them():
    order = {model: index for index, model in enumerate(REMOVED_MODELS)}
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            target = getattr(field, "related_model", None)
            if target not in order or target is model:
                continue
            # Rows of any model pointing at a removed model must go too (the chunked delete is raw SQL: no
            # Django cascade, and PostgreSQL refuses dangling references at commit).
            assert model in order, f"{model.__name__}.{field.name} points at {target.__name__}"
            assert order[model] < order[target], f"delete {model.__name__} before {target.__name__}"


# -- the cascade ---------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_removal_deletes_exactly_the_integration_data_and_keeps_blueprints_and_apps(
    google_integration, google_emulator, admin_user, other_tenant, django_capture_on_commit_callbacks
):
    tenant = google_integration.tenant
    made = populate_integration_data(google_integration, devices=40)  # assigns a Blueprint and an app
    BlueprintFactory.create_batch(2, tenant=tenant)
    AppFactory.create_batch(2, tenant=tenant)
    blueprints = set(Blueprint.unscoped.filter(tenant=tenant).values_list("pk", "name", "updated_at"))
    app_ids = set(App.unscoped.filter(tenant=tenant).values_list("pk", "identifier"))
    assert len(blueprints) == 3 and len(app_ids) == 3
    other_integration = GoogleIntegrationFactory(tenant=other_tenant)
    populate_integration_data(other_integration, devices=7)
    other_before = _counts(other_tenant)
    assert _counts(tenant) == made

    run = _remove(tenant, admin_user, django_capture_on_commit_callbacks)

    assert run.status == RemovalStatus.SUCCEEDED, run.error
    assert run.revocation == "revoked"
    assert run.deleted == made
    assert run.expected == made
    assert _counts(tenant) == dict.fromkeys(made, 0)
    assert not GoogleIntegration.unscoped.filter(tenant=tenant).exists()
    # Blueprints and apps untouched, other tenants untouched, the run itself kept.
    assert set(Blueprint.unscoped.filter(tenant=tenant).values_list("pk", "name", "updated_at")) == blueprints
    assert set(App.unscoped.filter(tenant=tenant).values_list("pk", "identifier")) == app_ids
    assert _counts(other_tenant) == other_before
    assert RemovalRun.unscoped.filter(tenant=tenant).count() == 1
    event = AuditEvent.unscoped.get(tenant=tenant, action="google.remove")
    assert event.actor == admin_user
    assert event.details["deleted"] == made
    assert event.details["reference"] == f"REM-{run.pk}-acme"
    assert event.target == google_integration.domain
    assert "refresh" not in str(event.details).lower()


@pytest.mark.django_db
def test_revocation_is_really_performed_at_google(
    google_integration, google_emulator, admin_user, django_capture_on_commit_callbacks
):
    refresh_token = google_integration.refresh_token
    assert _refresh_works(google_emulator, refresh_token)

    run = _remove(google_integration.tenant, admin_user, django_capture_on_commit_callbacks)

    assert run.status == RemovalStatus.SUCCEEDED
    revokes = google_emulator.requests("oauth2.revoke")
    assert [r["status"] for r in revokes] == [200]
    assert revokes[0]["body"] == {"token": "<redacted>"}
    # The emulator now refuses the old refresh token: the grant is gone at Google.
    assert not _refresh_works(google_emulator, refresh_token)
    assert google_emulator.control("GET", "/state")["authorizations"] == []


@pytest.mark.django_db
def test_a_token_google_already_revoked_counts_as_revoked(
    google_integration, google_emulator, admin_user, django_capture_on_commit_callbacks
):
    populate_integration_data(google_integration, devices=3)
    google_emulator.control("POST", "/oauth/revoke", {})  # the admin removed the app's access at Google

    run = _remove(google_integration.tenant, admin_user, django_capture_on_commit_callbacks)

    assert run.status == RemovalStatus.SUCCEEDED, run.error
    assert run.revocation == "already_invalid"
    assert [r["status"] for r in google_emulator.requests("oauth2.revoke")] == [400]
    assert ChromeOSDevice.unscoped.count() == 0


# -- failures: nothing deleted, the previous state back, a reference for support ----------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.django_db
@pytest.mark.parametrize("previous_status", [IntegrationStatus.ACTIVE, IntegrationStatus.REAUTH_REQUIRED])
def test_google_unreachable_deletes_nothing_and_restores_the_integration(
    google_integration, google_emulator, admin_user, settings, previous_status
):
    GoogleIntegration.unscoped.filter(pk=google_integration.pk).update(status=previous_status)
    made = populate_integration_data(google_integration, devices=5)
    run = removal_request(tenant=google_integration.tenant, actor=admin_user)
    google_integration.refresh_from_db()
    assert google_integration.status == IntegrationStatus.REMOVING
    settings.GOOGLE_EMULATOR_HOST = f"127.0.0.1:{_free_port()}"  # nothing listens there

    run = removal_run_execute(run.pk)

    assert run.status == RemovalStatus.FAILED
    assert "Google" in run.error and "unreachable" in run.error
    assert run.support_reference == f"REM-{run.pk}-acme"
    assert _counts(google_integration.tenant) == made
    google_integration.refresh_from_db()
    assert google_integration.status == previous_status
    failed = AuditEvent.unscoped.get(action="google.remove_failed")
    assert failed.actor == admin_user and failed.details["reference"] == run.support_reference
    assert not AuditEvent.unscoped.filter(action="google.remove").exists()


@pytest.mark.django_db
def test_google_refusing_the_revocation_deletes_nothing_then_retry_succeeds(
    google_integration, google_emulator, admin_user, django_capture_on_commit_callbacks
):
    made = populate_integration_data(google_integration, devices=5)
    google_emulator.add_fault(method="oauth2.revoke", status=403, count=1)

    failed = _remove(google_integration.tenant, admin_user, django_capture_on_commit_callbacks)

    assert failed.status == RemovalStatus.FAILED
    assert "403" in failed.error
    assert _counts(google_integration.tenant) == made
    google_integration.refresh_from_db()
    assert google_integration.status == IntegrationStatus.ACTIVE
    assert _refresh_works(google_emulator, google_integration.refresh_token)

    with django_capture_on_commit_callbacks(execute=True):
        retry = removal_request(tenant=google_integration.tenant, actor=admin_user, retry_of=failed)
    retry.refresh_from_db()
    assert retry.status == RemovalStatus.SUCCEEDED and retry.retry_of == failed
    assert retry.revocation == "revoked"
    assert _counts(google_integration.tenant) == dict.fromkeys(made, 0)


@pytest.mark.django_db(transaction=True)
def test_a_failure_during_deletion_rolls_everything_back(
    google_integration, google_emulator, admin_user, settings, queued
):
    """Commands are deleted before devices: a device row held by another transaction makes the deletion fail
    after the commands went, and the rollback must bring them back."""
    settings.CHROMEOS_REMOVAL_LOCK_TIMEOUT_MS = 200
    made = populate_integration_data(google_integration, devices=6)
    run = removal_request(tenant=google_integration.tenant, actor=admin_user)
    locked_device = ChromeOSDevice.unscoped.order_by("pk").last()

    blocker = connections.create_connection("default")
    try:
        with blocker.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute(
                "SELECT id FROM chromeos_chromeosdevice WHERE id = %s FOR UPDATE", [locked_device.pk]
            )
            run = removal_run_execute(run.pk)
            cursor.execute("ROLLBACK")
    finally:
        blocker.close()

    assert run.status == RemovalStatus.FAILED
    assert "lock" in run.error.lower()
    assert _counts(google_integration.tenant) == made
    assert DeviceCommand.unscoped.count() == made["devicecommand"]
    google_integration.refresh_from_db()
    # The grant is revoked at Google: the integration waits for a retry, it cannot sync any more.
    assert google_integration.status == IntegrationStatus.REMOVAL_FAILED
    assert run.support_reference in google_integration.status_detail
    assert not integration_accepts_writes(google_integration.pk, lock=False)

    retry = removal_run_execute(
        removal_request(tenant=google_integration.tenant, actor=admin_user, retry_of=run).pk
    )
    assert queued == [run.pk, retry.pk]
    assert retry.status == RemovalStatus.SUCCEEDED, retry.error
    assert retry.revocation == "already_invalid"
    assert _counts(google_integration.tenant) == dict.fromkeys(made, 0)


# -- requests that cannot start -------------------------------------------------------------------------------
@pytest.mark.django_db
def test_no_integration_or_a_removal_already_running_is_refused(google_integration, admin_user, other_tenant):
    first = removal_request(tenant=google_integration.tenant, actor=admin_user)
    with pytest.raises(RemovalError):
        removal_request(tenant=google_integration.tenant, actor=admin_user)
    assert RemovalRun.unscoped.filter(tenant=google_integration.tenant).count() == 1
    assert first.status == RemovalStatus.QUEUED
    with pytest.raises(RemovalError):
        removal_request(tenant=other_tenant, actor=admin_user)


@pytest.mark.django_db
def test_a_finished_run_is_not_run_again(google_integration, admin_user, django_capture_on_commit_callbacks):
    run = _remove(google_integration.tenant, admin_user, django_capture_on_commit_callbacks)
    finished_at = run.finished_at
    assert removal_run_execute(run.pk).finished_at == finished_at


# -- the rule a sync follows -----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_integration_accepts_writes_only_while_active(google_integration):
    with transaction.atomic():
        assert integration_accepts_writes(google_integration.pk)
    for status in (
        IntegrationStatus.REMOVING,
        IntegrationStatus.REMOVAL_FAILED,
        IntegrationStatus.REAUTH_REQUIRED,
    ):
        GoogleIntegration.unscoped.filter(pk=google_integration.pk).update(status=status)
        assert not integration_accepts_writes(google_integration.pk, lock=False)
    assert not integration_accepts_writes(google_integration.pk + 1000, lock=False)


@pytest.mark.django_db(transaction=True)
def test_marking_removing_waits_for_a_writer_holding_the_share_lock(google_integration, admin_user, queued):
    """A sync's merge that checked before the removal finishes its write first; the removal then sees it."""
    writer = connections.create_connection("default")
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def remove() -> None:
        try:
            outcome["run"] = removal_request(tenant=google_integration.tenant, actor=admin_user)
        finally:
            connection.close()
            done.set()

    try:
        with writer.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute(
                "SELECT status FROM chromeos_googleintegration WHERE id = %s FOR SHARE",
                [google_integration.pk],
            )
            thread = threading.Thread(target=remove)
            thread.start()
            assert not done.wait(0.5), "the removal must wait for the in-flight write"
            cursor.execute("COMMIT")
        assert done.wait(10)
        thread.join()
    finally:
        writer.close()
    google_integration.refresh_from_db()
    assert google_integration.status == IntegrationStatus.REMOVING
    assert outcome["run"].status == RemovalStatus.QUEUED
    with pytest.raises(RuntimeError):  # outside a transaction the lock would mean nothing
        integration_accepts_writes(google_integration.pk)


@pytest.mark.django_db
def test_a_run_whose_task_never_finished_can_be_retried(google_integration, admin_user, settings):
    """A lost task message leaves a run queued and the integration "removing": past the task's hard time limit
    it is shown as failed, and a new request takes over."""
    stuck = removal_request(tenant=google_integration.tenant, actor=admin_user)
    with pytest.raises(RemovalError):  # still young: it may yet run
        removal_request(tenant=google_integration.tenant, actor=admin_user)
    assert not removal_run_is_stale(stuck)
    RemovalRun.unscoped.filter(pk=stuck.pk).update(
        created_at=timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 600)
    )
    stuck.refresh_from_db()
    assert removal_run_is_stale(stuck)
    panel = removal_panel(google_integration.tenant, with_preview=True)
    assert not panel.removing and panel.failed_run == stuck and panel.can_remove

    retry = removal_request(tenant=google_integration.tenant, actor=admin_user, retry_of=stuck)

    stuck.refresh_from_db()
    assert stuck.status == RemovalStatus.FAILED and "Interrompue" in stuck.error
    assert retry.previous_status == IntegrationStatus.ACTIVE
    assert removal_run_execute(stuck.pk).status == RemovalStatus.FAILED  # a late delivery does nothing
    assert removal_run_execute(retry.pk).status == RemovalStatus.SUCCEEDED
    assert not GoogleIntegration.unscoped.filter(tenant=google_integration.tenant).exists()
