""" "Supprimer" on Gestion ChromeOS, over HTTP: who sees it, the confirmation (dialog and no-JS page), the
request, progress, the result, failure with its support reference and "Réessayer", and authorizing again."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from chromeos.models import ChromeOSDevice, GoogleIntegration, IntegrationStatus, RemovalRun, RemovalStatus
from google_emulator.testing import follow_consent
from tests.chromeos.removal_data import populate_integration_data
from tests.ldap.factories import LdapDirectoryFactory, LdapOrgUnitFactory, LdapSyncRunFactory

MANAGE = "chromeos:manage"
REMOVE = "chromeos:remove"
PROGRESS = "chromeos:removal_progress"

pytestmark = pytest.mark.django_db


@pytest.fixture
def integration(google_integration: GoogleIntegration) -> GoogleIntegration:
    populate_integration_data(google_integration, devices=12)
    return google_integration


def _page(client: Any) -> str:
    response = client.get(reverse(MANAGE))
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def _counts(page: str) -> dict[str, int]:
    """The counts tables of a page, as {label: count}."""
    return {
        label: int(count)
        for label, count in re.findall(r'<th scope="row">([^<]+)</th><td class="num">(\d+)</td>', page)
    }


def _post_and_run(client: Any, url: str, django_capture_on_commit_callbacks: Any) -> Any:
    """POST as the browser does; the removal task (eager in tests) runs when the request's transaction commits."""
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url)
    assert response.status_code == 302
    assert response["Location"] == reverse(MANAGE)
    return response


# -- who sees what ----------------------------------------------------------------------------------------------
def test_admin_sees_supprimer_and_a_labelled_dialog_with_the_counts(integration, admin_client_):
    page = _page(admin_client_)
    assert f'href="{reverse(REMOVE)}" role="button"' in page
    assert 'aria-haspopup="dialog"' in page
    dialog = re.search(r"<dialog (.*?)</dialog>", page, re.S)
    assert dialog is not None
    body = dialog.group(0)
    assert 'aria-labelledby="removal-dialog-title"' in body and 'id="removal-dialog-title"' in body
    assert "Tous les périphériques associés à cette intégration seront supprimés." in body
    assert _counts(body) == {
        "Périphériques ChromeOS": 12,
        "Unités organisationnelles Google": 3,
        "Affectations ChromeOS": 2,
        "Commandes à distance": 5,
        "Modifications de périphériques": 4,
        "Actions sur des périphériques": 1,
        "Périphériques d'une action": 2,
        "Synchronisations": 2,
        "Métadonnées d'inscription Google (domaine, compte administrateur, autorisations, jetons)": 1,
    }
    assert (
        "configurations (Blueprints) <strong>1</strong>, applis <strong>1</strong>, le journal d'audit"
        in body
    )
    assert f'<form method="post" action="{reverse(REMOVE)}" class="confirm-actions">' in body
    assert 'formmethod="dialog"' in body and ">Annuler<" in body and ">OK<" in body


@pytest.mark.parametrize("role_user", ["operator_user", "readonly_user"])
def test_operators_and_readers_have_no_button_and_get_403(integration, role_user, client_for, request):
    client = client_for(request.getfixturevalue(role_user))
    page = _page(client)
    assert "removal-dialog" not in page and reverse(REMOVE) not in page
    assert client.post(reverse(REMOVE)).status_code == 403
    assert client.get(reverse(REMOVE)).status_code == 403
    failed = RemovalRun.unscoped.create(tenant=integration.tenant, status=RemovalStatus.FAILED)
    assert client.post(reverse("chromeos:removal_retry", args=[failed.pk])).status_code == 403
    assert RemovalRun.unscoped.filter(tenant=integration.tenant).count() == 1
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.ACTIVE


def test_without_javascript_the_button_leads_to_a_confirmation_page(integration, admin_client_):
    response = admin_client_.get(reverse(REMOVE))
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    assert "Supprimer l'intégration Google ?" in page
    assert _counts(page)["Périphériques ChromeOS"] == 12
    assert f'<form method="post" action="{reverse(REMOVE)}" class="confirm-actions">' in page
    assert f'href="{reverse(MANAGE)}" role="button" class="secondary">Annuler' in page


def test_confirmation_page_without_integration_goes_back_to_the_page(admin_client_, google_integration):
    GoogleIntegration.unscoped.all().delete()
    response = admin_client_.get(reverse(REMOVE))
    assert response.status_code == 302 and response["Location"] == reverse(MANAGE)


# -- the whole flow ---------------------------------------------------------------------------------------------
def test_ok_removes_and_the_page_is_back_to_autoriser_google(
    integration, admin_client_, django_capture_on_commit_callbacks
):
    _post_and_run(admin_client_, reverse(REMOVE), django_capture_on_commit_callbacks)

    run = RemovalRun.unscoped.get()
    assert run.status == RemovalStatus.SUCCEEDED
    assert ChromeOSDevice.unscoped.count() == 0
    page = _page(admin_client_)
    assert 'id="authorize-button"' in page and "Autoriser Google" in page
    assert f"Suppression de l'intégration Google demandée (référence REM-{run.pk}-acme)." in page
    assert f"Intégration Google du domaine {integration.domain} supprimée le" in page
    assert _counts(page)["Périphériques ChromeOS"] == 12
    assert "Les configurations (Blueprints) et les applis sont conservées." in page
    assert "removal-dialog" not in page


def test_progress_partial_polls_while_running_and_refreshes_the_page_at_the_end(
    integration, admin_client_, operator_user, client_for, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as queued:
        admin_client_.post(reverse(REMOVE))
    run = RemovalRun.unscoped.get()
    page = _page(admin_client_)
    assert f'hx-get="{reverse(PROGRESS)}" hx-trigger="every 2s"' in page
    assert "Suppression de l'intégration Google en cours" in page and run.support_reference in page
    assert "removal-dialog" not in page  # no second removal while one runs

    watcher = client_for(operator_user)  # every role of the tenant may watch
    polled = watcher.get(reverse(PROGRESS), headers={"HX-Request": "true"})
    assert polled.status_code == 200 and "HX-Refresh" not in polled
    assert "every 2s" in polled.content.decode()

    for callback in queued:
        callback()
    done = watcher.get(reverse(PROGRESS), headers={"HX-Request": "true"})
    assert done["HX-Refresh"] == "true"
    assert "supprimée le" in done.content.decode()


def test_failure_shows_the_reference_and_reessayer_works(
    integration, admin_client_, google_emulator, django_capture_on_commit_callbacks
):
    google_emulator.add_fault(method="oauth2.revoke", status=500, count=None)
    _post_and_run(admin_client_, reverse(REMOVE), django_capture_on_commit_callbacks)

    failed = RemovalRun.unscoped.get()
    assert failed.status == RemovalStatus.FAILED
    page = _page(admin_client_)
    assert "La suppression de l'intégration Google a échoué." in page
    assert f"<strong>REM-{failed.pk}-acme</strong>" in page
    retry_url = reverse("chromeos:removal_retry", args=[failed.pk])
    assert f'action="{retry_url}"' in page and "Réessayer" in page
    assert ChromeOSDevice.unscoped.count() == 12
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.ACTIVE

    google_emulator.control("DELETE", "/faults")
    _post_and_run(admin_client_, retry_url, django_capture_on_commit_callbacks)
    retry = RemovalRun.unscoped.exclude(pk=failed.pk).get()
    assert retry.status == RemovalStatus.SUCCEEDED and retry.retry_of_id == failed.pk
    assert ChromeOSDevice.unscoped.count() == 0


def test_retry_of_a_run_that_did_not_fail_is_refused(integration, admin_client_):
    done = RemovalRun.unscoped.create(tenant=integration.tenant, status=RemovalStatus.SUCCEEDED)
    response = admin_client_.post(reverse("chromeos:removal_retry", args=[done.pk]), follow=True)
    assert "Seule une suppression en échec peut être relancée." in response.content.decode()
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.ACTIVE


def test_authorizing_again_after_removal_starts_from_scratch(
    integration, admin_client_, google_emulator, tenant, django_capture_on_commit_callbacks
):
    directory = LdapDirectoryFactory(tenant=tenant)
    LdapOrgUnitFactory(tenant=tenant, directory=directory, name="Paris", added=True)
    LdapSyncRunFactory(tenant=tenant, directory=directory, finished_at=timezone.now())
    old_customer, old_token = integration.customer_id, integration.refresh_token
    _post_and_run(admin_client_, reverse(REMOVE), django_capture_on_commit_callbacks)

    start = admin_client_.post(reverse("chromeos:authorize"))
    assert start.status_code == 302
    answer = follow_consent(start["Location"])
    callback = admin_client_.get(reverse("chromeos:oauth_callback"), answer)
    assert callback.status_code == 302
    page = _page(admin_client_)

    assert "Configuration réussie de ChromeOS" in page
    fresh = GoogleIntegration.unscoped.get(tenant=tenant)
    assert fresh.status == IntegrationStatus.ACTIVE and fresh.customer_id == old_customer
    assert fresh.refresh_token != old_token
    assert fresh.pk != integration.pk
    assert ChromeOSDevice.unscoped.filter(tenant=tenant).count() == 0
    assert "removal-dialog" in page  # and it can be removed again


def test_support_finds_a_removal_by_its_reference_in_django_admin(
    tenant, other_tenant, support_user, client_for
):
    wanted = RemovalRun.unscoped.create(
        tenant=tenant, status=RemovalStatus.FAILED, domain="wanted.example.com"
    )
    RemovalRun.unscoped.create(tenant=other_tenant, status=RemovalStatus.FAILED, domain="other.example.com")
    url = reverse("admin:chromeos_removalrun_changelist")
    page = client_for(support_user).get(url, {"q": wanted.support_reference}).content.decode()
    assert "wanted.example.com" in page and "other.example.com" not in page
