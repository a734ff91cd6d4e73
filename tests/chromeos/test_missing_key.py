"""A secret that no configured key decrypts (key missing from MDM_ENCRYPTION_KEYS, or a wrong key): Gestion
ChromeOS shows a clear page instead of a server error, and the integration can still be removed."""

from __future__ import annotations

import html

import pytest
from cryptography.fernet import Fernet
from django.urls import reverse

from chromeos.models import GoogleIntegration, RemovalRun, RemovalStatus
from chromeos.services.removal import TOKEN_UNREADABLE
from mdm.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def key_lost(google_integration, settings):  # type: ignore[no-untyped-def]
    """The integration's tokens were encrypted with a key the console no longer has."""
    settings.MDM_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    return google_integration


def test_gestion_chromeos_explains_instead_of_a_server_error(key_lost, admin_client_):
    response = admin_client_.get(reverse("chromeos:manage"))
    assert response.status_code == 503
    page = html.unescape(response.content.decode())
    assert "Service momentanément indisponible" in page
    assert "la clé de chiffrement qui les protège n'est pas configurée sur le serveur" in page
    assert f'href="{reverse("chromeos:remove")}"' in page
    assert "Console MDM" in page  # the console's own page, with its shell


def test_gestion_chromeos_explains_in_english_too(key_lost, admin_client_):
    admin_client_.cookies["django_language"] = "en"
    response = admin_client_.get(reverse("chromeos:manage"), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 503
    assert "the encryption key that protects them is not configured on the server" in html.unescape(
        response.content.decode()
    )


def test_the_integration_can_still_be_removed(key_lost, admin_client_, django_capture_on_commit_callbacks):
    assert admin_client_.get(reverse("chromeos:remove")).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_.post(reverse("chromeos:remove"))
    assert response.status_code == 302
    run = RemovalRun.unscoped.get()
    assert run.status == RemovalStatus.SUCCEEDED
    assert run.revocation == TOKEN_UNREADABLE
    assert not GoogleIntegration.unscoped.exists()
    assert AuditEvent.unscoped.get(action="google.remove").details["revocation"] == TOKEN_UNREADABLE
    # The page works again: back to "Autoriser Google".
    assert admin_client_.get(reverse("chromeos:manage")).status_code == 200


def test_removal_asked_to_restore_policies_still_completes(
    key_lost, admin_client_, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        admin_client_.post(reverse("chromeos:remove"), {"restore_policies": "on"})
    run = RemovalRun.unscoped.get()
    assert run.status == RemovalStatus.SUCCEEDED
    assert run.policies == [{"outcome": TOKEN_UNREADABLE}]
    assert not GoogleIntegration.unscoped.exists()
