"""Admin > Google > Gestion ChromeOS and "Autoriser Google", driven over HTTP: the console through Django's test
client, Google through the emulator over real HTTP (consent page included). Success, and every failure the
issue names, each with its message and nothing stored."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from chromeos.google.client import SCOPES, GoogleClient
from chromeos.google.oauth import SESSION_KEY
from chromeos.models import ChromeOSDevice, GoogleIntegration, IntegrationStatus
from google_emulator.testing import follow_consent
from mdm.models import AuditEvent
from tests.factories import ChromeOSDeviceFactory, GoogleIntegrationFactory
from tests.ldap.factories import LdapDirectoryFactory, LdapOrgUnitFactory, LdapSyncRunFactory

MANAGE = "/admin/google/chromeos/"
CALLBACK_PATH = "/admin/google/chromeos/oauth/callback/"
SUCCESS = "Configuration réussie de ChromeOS"


@pytest.fixture
def ldap_ready(tenant):
    """The guide's prerequisites: an LDAP directory configured, synced, with OUs added."""
    directory = LdapDirectoryFactory(tenant=tenant)
    LdapOrgUnitFactory(tenant=tenant, directory=directory, name="Paris", added=True)
    LdapSyncRunFactory(tenant=tenant, directory=directory, finished_at=timezone.now())
    return directory


@pytest.fixture
def admin(admin_client_, emulator_settings, ldap_ready):
    return admin_client_


def start(client) -> str:
    response = client.post(reverse("chromeos:authorize"))
    assert response.status_code == 302, response.content
    return response["Location"]


def callback(client, params: dict[str, str]):
    response = client.get(reverse("chromeos:oauth_callback"), params)
    assert response.status_code == 302
    assert response["Location"] == MANAGE
    return client.get(MANAGE)


def authorize(client, approve: bool = True):
    """The whole dance: "Autoriser Google", Google's consent page, the callback; returns the page after it."""
    answer = follow_consent(start(client), approve=approve)
    return callback(client, answer)


def assert_nothing_stored(tenant) -> None:
    assert not GoogleIntegration.unscoped.filter(tenant=tenant).exists()


def last_failure(tenant) -> AuditEvent:
    return AuditEvent.unscoped.filter(tenant=tenant, action="integration.authorize_failed").latest("id")


# -- the page --------------------------------------------------------------------------------------------------
def test_sidebar_link_resolves_to_the_page():
    assert reverse("chromeos:manage") == MANAGE
    assert reverse("chromeos:oauth_callback") == CALLBACK_PATH


def test_without_ldap_the_prerequisites_say_what_to_fix_and_authorize_is_disabled(
    admin_client_, emulator_settings
):
    page = admin_client_.get(MANAGE).content.decode()
    assert "Annuaire LDAP configuré" in page
    assert "Aucun serveur LDAP n&#x27;est configuré." in page
    assert f'href="{reverse("ldap_sync:directory")}"' in page
    assert 'id="authorize-button" disabled' in page
    assert "Configurez d&#x27;abord l&#x27;annuaire LDAP" in page
    # And the POST is refused the same way, without going to Google.
    response = admin_client_.post(reverse("chromeos:authorize"), follow=True)
    assert response.redirect_chain == [(MANAGE, 302)]
    assert "Configurez d&#x27;abord l&#x27;annuaire LDAP" in response.content.decode()
    assert SESSION_KEY not in admin_client_.session


def test_with_prerequisites_met_authorize_is_enabled(admin):
    page = admin.get(MANAGE).content.decode()
    assert page.count('<span class="status ok">') == 2
    assert 'id="authorize-button">' in page


# -- success ---------------------------------------------------------------------------------------------------
def test_authorize_redirects_to_google_with_state_pkce_offline_consent_exact_redirect(admin, google_emulator):
    location = start(admin)
    url = urlparse(location)
    assert f"{url.scheme}://{url.netloc}" == google_emulator.url
    assert url.path == "/o/oauth2/v2/auth"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query["redirect_uri"] == "http://testserver" + CALLBACK_PATH
    assert query["access_type"] == "offline"
    assert query["prompt"] == "consent"
    assert query["code_challenge_method"] == "S256"
    assert query["response_type"] == "code"
    assert set(SCOPES) <= set(query["scope"].split())
    pending = admin.session[SESSION_KEY][query["state"]]
    # The PKCE verifier stays on the server, bound to the tenant and the user; only its hash went to Google.
    assert len(pending["code_verifier"]) == 128
    assert pending["code_verifier"] not in location
    assert pending["tenant_id"] and pending["user_id"]
    assert pending["redirect_uri"] == query["redirect_uri"]


def test_full_authorization_stores_the_integration_and_shows_the_domain(
    admin, google_emulator, tenant, admin_user
):
    page = authorize(admin).content.decode()
    customer = google_emulator.state.customer
    assert SUCCESS in page
    assert customer["customerDomain"] in page and customer["id"] in page
    assert google_emulator.state.admin_email in page

    integration = GoogleIntegration.unscoped.get(tenant=tenant)
    assert integration.status == IntegrationStatus.ACTIVE
    assert integration.customer_id == customer["id"]
    assert integration.domain == customer["customerDomain"]
    assert integration.admin_email == google_emulator.state.admin_email
    assert integration.authorized_by == admin_user
    assert set(SCOPES) <= set(integration.scopes)
    assert integration.customer_info["postalAddress"]["locality"] == "Paris"
    assert SESSION_KEY in admin.session and not admin.session[SESSION_KEY]  # state consumed

    # The stored token is real (it opens the emulator's API) and unreadable in the database.
    client = GoogleClient(integration)
    assert (
        client.execute(client.directory().customers().get(customerKey="my_customer"))["id"] == customer["id"]
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT refresh_token, access_token FROM chromeos_googleintegration WHERE id = %s",
            [integration.pk],
        )
        raw_refresh, raw_access = cursor.fetchone()
    assert integration.refresh_token not in raw_refresh and integration.refresh_token[:12] not in raw_refresh
    assert integration.access_token not in raw_access

    event = AuditEvent.unscoped.get(tenant=tenant, action="integration.authorize")
    assert event.target == customer["customerDomain"]
    assert event.details["customer_id"] == customer["id"]
    assert integration.refresh_token not in str(event.details)


def test_console_base_url_makes_the_redirect_uri(admin, settings):
    settings.CONSOLE_BASE_URL = "https://mdm.example.org/"
    query = parse_qs(urlparse(start(admin)).query)
    assert query["redirect_uri"] == ["https://mdm.example.org" + CALLBACK_PATH]


# -- failures: nothing stored, a clear message ------------------------------------------------------------------
def test_consent_denied(admin, tenant):
    page = authorize(admin, approve=False).content.decode()
    assert "Vous avez refusé l&#x27;accès dans Google" in page
    assert SUCCESS not in page
    assert_nothing_stored(tenant)
    assert last_failure(tenant).details["error"] == "consent_denied"


def test_wrong_state(admin, tenant):
    answer = follow_consent(start(admin))
    page = callback(admin, {**answer, "state": "forged-" + answer["state"]}).content.decode()
    assert "ne correspond à aucune demande d&#x27;autorisation en cours" in page
    assert_nothing_stored(tenant)
    assert last_failure(tenant).details["error"] == "invalid_state"


def test_missing_state(admin, tenant):
    answer = follow_consent(start(admin))
    del answer["state"]
    page = callback(admin, answer).content.decode()
    assert "ne correspond à aucune demande d&#x27;autorisation en cours" in page
    assert_nothing_stored(tenant)


def test_expired_state(admin, tenant):
    location = start(admin)
    session = admin.session
    state = parse_qs(urlparse(location).query)["state"][0]
    pending = session[SESSION_KEY]
    pending[state]["created"] -= 601
    session[SESSION_KEY] = pending
    session.save()
    page = callback(admin, follow_consent(location)).content.decode()
    assert "La demande d&#x27;autorisation a expiré" in page
    assert_nothing_stored(tenant)
    assert last_failure(tenant).details["error"] == "expired_state"


def test_state_of_another_user_is_refused(admin, tenant, make_user, client_for, emulator_settings):
    answer = follow_consent(start(admin))
    other_admin = client_for(make_user(tenant, "admin", username="admin2@acme.test"))
    page = callback(other_admin, answer).content.decode()
    assert "ne correspond à aucune demande d&#x27;autorisation en cours" in page
    assert_nothing_stored(tenant)


def test_replayed_state_after_success_changes_nothing(admin, tenant):
    answer = follow_consent(start(admin))
    assert SUCCESS in callback(admin, answer).content.decode()
    before = GoogleIntegration.unscoped.get(tenant=tenant)
    page = callback(admin, answer).content.decode()
    assert "ne correspond à aucune demande d&#x27;autorisation en cours" in page
    after = GoogleIntegration.unscoped.get(tenant=tenant)
    assert (after.refresh_token, after.updated_at) == (before.refresh_token, before.updated_at)


def test_replayed_code_is_refused_by_google(admin, tenant):
    answer = follow_consent(start(admin))
    assert SUCCESS in callback(admin, answer).content.decode()
    before = GoogleIntegration.unscoped.get(tenant=tenant)
    # A fresh, valid state, but the code Google already exchanged.
    fresh_state = parse_qs(urlparse(start(admin)).query)["state"][0]
    page = callback(admin, {**answer, "state": fresh_state}).content.decode()
    assert "Google a refusé le code d&#x27;autorisation" in page
    after = GoogleIntegration.unscoped.get(tenant=tenant)
    assert (after.refresh_token, after.updated_at) == (before.refresh_token, before.updated_at)
    assert last_failure(tenant).details["error"] == "code_rejected"


def test_no_refresh_token_returned(admin, tenant, google_emulator):
    google_emulator.control("POST", "/oauth/withhold-refresh-token", {"count": 1})
    page = authorize(admin).content.decode()
    assert "Google n&#x27;a pas fourni de jeton d&#x27;actualisation" in page
    assert_nothing_stored(tenant)
    assert last_failure(tenant).details["error"] == "no_refresh_token"


def test_scopes_not_all_granted(admin, tenant, google_emulator):
    partial = [s for s in SCOPES if not s.endswith("chrome.management.policy")] + ["openid", "email"]
    google_emulator.control("POST", "/oauth/granted-scopes", {"scopes": partial})
    page = authorize(admin).content.decode()
    assert "Toutes les autorisations demandées n&#x27;ont pas été accordées" in page
    assert "chrome.management.policy" in page
    assert_nothing_stored(tenant)
    assert last_failure(tenant).details["scopes"] == "chrome.management.policy"


def test_account_that_is_not_a_google_admin(admin, tenant, google_emulator):
    google_emulator.control("POST", "/admin", {"email": "eleve@example.com", "is_admin": False})
    page = authorize(admin).content.decode()
    assert "n&#x27;est pas administrateur de son domaine Google Workspace" in page
    assert_nothing_stored(tenant)
    assert last_failure(tenant).details["error"] == "not_google_admin"


def test_google_domain_already_connected_to_another_tenant(admin, tenant, other_tenant, google_emulator):
    customer = google_emulator.state.customer
    GoogleIntegrationFactory(
        tenant=other_tenant, customer_id=customer["id"], domain=customer["customerDomain"]
    )
    page = authorize(admin).content.decode()
    assert f"Le domaine Google {customer['customerDomain']} est déjà connecté à un autre locataire" in page
    assert_nothing_stored(tenant)


def test_token_endpoint_unavailable(admin, tenant, google_emulator):
    google_emulator.add_fault(method="oauth2.token", status=503)
    page = authorize(admin).content.decode()
    assert "Google est momentanément indisponible" in page
    assert_nothing_stored(tenant)


def test_error_other_than_denial_is_reported(admin, tenant):
    state = parse_qs(urlparse(start(admin)).query)["state"][0]
    page = callback(admin, {"state": state, "error": "invalid_scope"}).content.decode()
    assert "Google a refusé la demande d&#x27;autorisation (invalid_scope)" in page
    assert_nothing_stored(tenant)


# -- re-authorization ------------------------------------------------------------------------------------------
def test_reauth_required_shows_a_banner_and_reauthorizing_updates_in_place(
    google_integration, admin_client_, ldap_ready, tenant
):
    device = ChromeOSDeviceFactory(tenant=tenant, integration=google_integration)
    GoogleIntegration.unscoped.filter(pk=google_integration.pk).update(
        status=IntegrationStatus.REAUTH_REQUIRED,
        status_detail="invalid_grant: Token has been expired or revoked.",
    )
    page = admin_client_.get(MANAGE).content.decode()
    assert 'id="reauth-banner"' in page and "Réautorisation requise" in page
    assert 'id="authorize-button">' in page

    page = authorize(admin_client_).content.decode()
    assert SUCCESS in page and 'id="reauth-banner"' not in page
    integration = GoogleIntegration.unscoped.get(tenant=tenant)
    assert integration.pk == google_integration.pk
    assert integration.status == IntegrationStatus.ACTIVE and integration.status_detail == ""
    assert integration.refresh_token != google_integration.refresh_token
    assert list(ChromeOSDevice.unscoped.filter(integration=integration)) == [device]
    assert AuditEvent.unscoped.filter(tenant=tenant, action="integration.reauthorize").exists()


def test_authorizing_a_different_google_domain_is_refused(admin, tenant):
    existing = GoogleIntegrationFactory(tenant=tenant, customer_id="C0another", domain="autre.example")
    page = authorize(admin).content.decode()
    assert "déjà connectée au domaine Google autre.example" in page
    assert "supprimez d&#x27;abord l&#x27;intégration" in page
    after = GoogleIntegration.unscoped.get(tenant=tenant)
    assert (after.customer_id, after.refresh_token) == (existing.customer_id, existing.refresh_token)


def test_integration_being_removed_cannot_be_authorized(admin, tenant):
    GoogleIntegrationFactory(tenant=tenant, status=IntegrationStatus.REMOVING)
    response = admin.post(reverse("chromeos:authorize"), follow=True)
    assert "en cours de suppression" in response.content.decode()
    assert SESSION_KEY not in admin.session


# -- roles -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("role_user", ["operator_user", "readonly_user"])
def test_operators_and_readers_see_the_page_without_buttons(
    role_user, request, client_for, google_integration
):
    client = client_for(request.getfixturevalue(role_user))
    page = client.get(MANAGE).content.decode()
    assert google_integration.domain in page
    assert "authorize-button" not in page and "reauthorize-button" not in page
    assert client.post(reverse("chromeos:authorize")).status_code == 403
    assert client.get(reverse("chromeos:oauth_callback"), {"state": "x", "code": "y"}).status_code == 403


@pytest.mark.parametrize("role_user", ["operator_user", "readonly_user"])
def test_operators_and_readers_see_no_authorize_button_before_authorization(
    role_user, request, client_for, emulator_settings, ldap_ready
):
    page = client_for(request.getfixturevalue(role_user)).get(MANAGE).content.decode()
    assert "authorize-button" not in page
    assert "Seul un administrateur du locataire peut autoriser Google." in page


def test_authorized_page_shows_the_integration_details(google_integration, admin_client_, tenant, ldap_ready):
    ChromeOSDeviceFactory.create_batch(3, tenant=tenant, integration=google_integration)
    page = admin_client_.get(MANAGE).content.decode()
    for text in (google_integration.domain, google_integration.customer_id, google_integration.admin_email):
        assert text in page
    assert '<strong id="device-count">3</strong>' in page
    assert "chrome.management.policy" in page
    assert 'id="reauthorize-button"' in page
    assert "Autorisée depuis le" in page and "Dernière synchronisation" in page


def test_the_page_speaks_english_too(admin, google_emulator):
    page = admin.get(MANAGE, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "ChromeOS management" in page and "Prerequisites" in page and "Authorize Google" in page
    answer = follow_consent(start(admin))
    admin.get(reverse("chromeos:oauth_callback"), answer, HTTP_ACCEPT_LANGUAGE="en")
    page = admin.get(MANAGE, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "ChromeOS setup successful" in page and "Domain information" in page
