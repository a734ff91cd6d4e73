"""The sync panel on the Gestion ChromeOS page: Synchro maintenant, live progress, result, guard, roles."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from chromeos.models import GoogleIntegration, SyncRun, SyncStatus, SyncTrigger
from mdm.models import AuditEvent, User


@pytest.mark.django_db(transaction=True)
def test_sync_now_runs_and_the_page_shows_progress_then_result(
    google_integration: GoogleIntegration, admin_client_: Client
) -> None:
    page = admin_client_.get(reverse("chromeos:manage"))
    assert page.status_code == 200
    assert "Synchro maintenant" in page.content.decode()
    response = admin_client_.post(reverse("chromeos:sync_now"), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    # Eager Celery (tests): the run finished on commit, before the panel was rendered.
    run = SyncRun.unscoped.get(integration=google_integration)
    assert run.status == SyncStatus.SUCCEEDED and run.trigger == SyncTrigger.MANUAL
    assert 'id="sync-result"' in html and f"n° {run.pk}" in html
    assert "50 ajoutés" in html
    # The counts above the panel were rendered before the sync: they come back out of band, now true.
    assert '<div class="grid" id="sync-summary-grid" hx-swap-oob="true">' in html
    assert '<strong id="device-count">50</strong>' in html
    assert AuditEvent.unscoped.filter(action="chromeos.sync.request").count() == 1
    progress = admin_client_.get(reverse("chromeos:sync_progress"))
    assert progress.status_code == 200 and 'id="sync-history"' in progress.content.decode()


@pytest.mark.django_db
def test_a_second_click_shows_the_queued_run(
    google_integration: GoogleIntegration, admin_client_: Client
) -> None:
    # Without committing (no on_commit), the first run stays queued: the second click must not add one.
    first = admin_client_.post(reverse("chromeos:sync_now"), HTTP_HX_REQUEST="true")
    second = admin_client_.post(reverse("chromeos:sync_now"), HTTP_HX_REQUEST="true")
    assert SyncRun.unscoped.count() == 1
    run = SyncRun.unscoped.get()
    assert "demandée" in first.content.decode()
    body = second.content.decode()
    assert "déjà en cours" in body and 'hx-trigger="every 1s"' in body and f"n° {run.pk}" in body
    assert "hx-swap-oob" not in body  # while a sync runs, each poll re-renders the panel only


@pytest.mark.django_db
def test_readonly_users_cannot_sync_and_see_no_button(
    google_integration: GoogleIntegration, readonly_user: User, client_for: Any
) -> None:
    client = client_for(readonly_user)
    assert client.post(reverse("chromeos:sync_now")).status_code == 403
    assert 'id="sync-now"' not in client.get(reverse("chromeos:sync_progress")).content.decode()
    assert SyncRun.unscoped.count() == 0


@pytest.mark.django_db
def test_operator_can_sync_without_js_and_is_redirected(
    google_integration: GoogleIntegration, operator_user: User, client_for: Any
) -> None:
    client = client_for(operator_user)
    response = client.post(reverse("chromeos:sync_now"))
    assert response.status_code == 302 and response["Location"] == reverse("chromeos:manage")
    assert SyncRun.unscoped.filter(requested_by=operator_user).count() == 1


@pytest.mark.django_db
def test_support_reads_sync_runs_in_django_admin(
    google_integration: GoogleIntegration, support_user: User, client_for: Any
) -> None:
    from chromeos.services.sync import devices_sync, sync_request

    run, _created = sync_request(integration=google_integration, trigger=SyncTrigger.MANUAL, enqueue=False)
    devices_sync(run)
    client = client_for(support_user)
    listing = client.get(reverse("admin:chromeos_syncrun_changelist"))
    assert listing.status_code == 200 and "acme" in listing.content.decode()
    detail = client.get(reverse("admin:chromeos_syncrun_change", args=[run.pk])).content.decode()
    assert "50 ajoutés, 0 modifiés, 0 inchangés, 0 retirés." in detail
    assert google_integration.refresh_token not in detail


@pytest.mark.django_db
def test_a_queued_sync_no_worker_took_says_so_after_the_notice_delay_without_failing(
    google_integration: GoogleIntegration, admin_client_: Client, settings: Any
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    settings.CHROMEOS_SYNC_QUEUED_NOTICE_SECONDS = 120
    settings.CHROMEOS_SYNC_QUEUED_TIMEOUT_SECONDS = 1800
    # Without committing (no on_commit), the run stays queued as if no worker took it.
    admin_client_.post(reverse("chromeos:sync_now"), HTTP_HX_REQUEST="true")
    run = SyncRun.unscoped.get()
    from mdm.models import OutboxMessage

    OutboxMessage.objects.all().delete()  # published: the broker has it, no worker takes it
    SyncRun.unscoped.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(seconds=60))
    assert "Aucun worker" not in admin_client_.get(reverse("chromeos:sync_progress")).content.decode()

    SyncRun.unscoped.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(seconds=190))
    body = admin_client_.get(reverse("chromeos:sync_progress")).content.decode()
    assert 'id="sync-waiting"' in body and "Aucun worker n'a encore pris cette synchronisation" in body
    assert "3 minutes" in body and "30 minutes" in body
    run.refresh_from_db()
    assert run.status == SyncStatus.QUEUED  # said, not failed
    with translation.override("en"):
        english = admin_client_.get(reverse("chromeos:sync_progress"), HTTP_ACCEPT_LANGUAGE="en").content
    assert "No worker has taken this sync yet" in english.decode()


@pytest.mark.django_db
def test_a_queued_sync_whose_message_waits_for_the_broker_says_the_queue_is_down(
    google_integration: GoogleIntegration, admin_client_: Client
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    admin_client_.post(
        reverse("chromeos:sync_now"), HTTP_HX_REQUEST="true"
    )  # its message stays in the outbox
    SyncRun.unscoped.update(created_at=timezone.now() - timedelta(seconds=300))
    body = admin_client_.get(reverse("chromeos:sync_progress")).content.decode()
    assert "La file des tâches est indisponible : la synchronisation partira dès son retour." in body
    assert "Aucun worker" not in body


@pytest.mark.django_db
def test_the_sync_panel_says_what_started_the_run_and_its_options(
    google_integration: GoogleIntegration, admin_client_: Client, admin_user: User
) -> None:
    from django.utils import timezone

    SyncRun.unscoped.create(
        tenant=google_integration.tenant,
        integration=google_integration,
        trigger=SyncTrigger.MANUAL,
        requested_by=admin_user,
        status=SyncStatus.SUCCEEDED,
        removal_allowance=12,
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )
    body = admin_client_.get(reverse("chromeos:sync_progress")).content.decode()
    assert 'id="sync-origin"' in body and f"par {admin_user.display_name}" in body
    assert "jusqu'à 12 périphériques absents de Google peuvent être retirés" in body
