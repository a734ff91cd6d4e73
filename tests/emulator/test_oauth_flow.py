"""The whole OAuth dance with google-auth-oauthlib, as the console performs it, against the emulator."""

from __future__ import annotations

import pytest
import requests
from google.auth.exceptions import RefreshError
from google_auth_oauthlib.flow import Flow

from google_emulator.testing import CONSOLE_SCOPES, follow_consent

REDIRECT_URI = "http://testserver/chromeos/oauth/callback"


def make_flow(emulator, scopes=CONSOLE_SCOPES, redirect_uri=REDIRECT_URI, secret=None) -> Flow:
    config = {
        "web": {
            "client_id": emulator.client_id,
            "client_secret": secret or emulator.client_secret,
            "auth_uri": f"{emulator.url}/o/oauth2/auth",
            "token_uri": emulator.token_uri,
            "redirect_uris": [redirect_uri],
        }
    }
    return Flow.from_client_config(config, scopes=scopes, redirect_uri=redirect_uri)


def consent(emulator, flow: Flow, approve: bool = True, **options) -> dict[str, str]:
    options.setdefault("prompt", "consent")
    url, state = flow.authorization_url(access_type="offline", **options)
    answer = follow_consent(url, approve=approve)
    assert answer.get("state") == state
    return answer


def test_consent_page_lists_scopes_and_account_and_has_both_buttons(emulator):
    url, _ = make_flow(emulator).authorization_url(access_type="offline", prompt="consent")
    page = requests.get(url, timeout=5)
    assert page.status_code == 200
    assert 'id="submit_approve_access"' in page.text
    assert 'id="submit_deny_access"' in page.text
    assert "Allow" in page.text
    assert emulator.state.admin_email in page.text
    for scope in CONSOLE_SCOPES:
        assert scope in page.text


def test_full_dance_then_directory_call_with_refreshing_credentials(emulator):
    flow = make_flow(emulator)
    answer = consent(emulator, flow)
    token = flow.fetch_token(code=answer["code"])
    assert token["refresh_token"]
    assert token["expires_in"] == 3599
    assert token["token_type"] == "Bearer"
    assert set(token["scope"]) == set(CONSOLE_SCOPES)

    credentials = emulator.credentials(refresh_token=token["refresh_token"])
    customer = emulator.directory(credentials).customers().get(customerKey="my_customer").execute()
    assert customer["customerDomain"] == "example.com"
    assert customer["id"] == emulator.state.customer["id"]


def test_pkce_s256_is_sent_by_the_flow_and_checked(emulator):
    flow = make_flow(emulator)
    url, _ = flow.authorization_url(access_type="offline", prompt="consent")
    assert "code_challenge_method=S256" in url
    answer = follow_consent(url)
    flow.code_verifier = "x" * 64  # not the verifier the challenge was made from
    with pytest.raises(Exception, match="invalid_grant"):
        flow.fetch_token(code=answer["code"])


def test_missing_code_verifier_is_rejected(emulator):
    flow = make_flow(emulator)
    answer = consent(emulator, flow)
    response = requests.post(
        emulator.token_uri,
        data={"grant_type": "authorization_code", "code": answer["code"], "redirect_uri": REDIRECT_URI},
        auth=(emulator.client_id, emulator.client_secret),
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_grant", "error_description": "Missing code verifier."}


def test_deny_redirects_with_access_denied_and_state(emulator):
    flow = make_flow(emulator)
    url, state = flow.authorization_url(access_type="offline", prompt="consent")
    answer = follow_consent(url, approve=False)
    assert answer == {"error": "access_denied", "state": state}


def test_code_is_single_use(emulator):
    flow = make_flow(emulator)
    code = consent(emulator, flow)["code"]
    flow.fetch_token(code=code)
    with pytest.raises(Exception, match="invalid_grant"):
        flow.fetch_token(code=code)


def test_code_expires(emulator):
    flow = make_flow(emulator)
    code = consent(emulator, flow)["code"]
    emulator.control("POST", "/clock/advance", {"seconds": 61})
    with pytest.raises(Exception, match="invalid_grant"):
        flow.fetch_token(code=code)


def test_redirect_uri_must_match_at_exchange(emulator):
    flow = make_flow(emulator)
    code = consent(emulator, flow)["code"]
    flow.redirect_uri = "http://testserver/elsewhere"
    with pytest.raises(Exception, match="redirect_uri_mismatch"):
        flow.fetch_token(code=code)


def test_wrong_client_secret_is_invalid_client_401(emulator):
    flow = make_flow(emulator)
    code = consent(emulator, flow)["code"]
    response = requests.post(
        emulator.token_uri,
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        auth=(emulator.client_id, "wrong"),
        timeout=5,
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_unsupported_grant_type(emulator):
    response = requests.post(
        emulator.token_uri,
        data={
            "grant_type": "password",
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
        },
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_unknown_client_and_unregistered_redirect_show_error_pages(emulator):
    bad_client = requests.get(
        f"{emulator.url}/o/oauth2/v2/auth",
        params={
            "client_id": "nope",
            "redirect_uri": REDIRECT_URI,
            "response_type": "code",
            "scope": "openid",
        },
        timeout=5,
    )
    assert bad_client.status_code == 401
    assert "invalid_client" in bad_client.text
    bad_redirect = requests.get(
        f"{emulator.url}/o/oauth2/v2/auth",
        params={
            "client_id": emulator.client_id,
            "redirect_uri": "ftp://x",
            "response_type": "code",
            "scope": "openid",
        },
        timeout=5,
    )
    assert bad_redirect.status_code == 400
    assert "redirect_uri_mismatch" in bad_redirect.text


def test_refresh_token_only_when_consent_is_shown(emulator):
    flow = make_flow(emulator)
    first = flow.fetch_token(code=consent(emulator, flow)["code"])
    assert "refresh_token" in first
    again = make_flow(emulator)
    second = again.fetch_token(code=consent(emulator, again, prompt=None)["code"])
    assert "refresh_token" not in second  # already granted, no consent screen: no refresh token


def test_withheld_refresh_token_control(emulator):
    emulator.control("POST", "/oauth/withhold-refresh-token", {"count": 1})
    flow = make_flow(emulator)
    assert "refresh_token" not in flow.fetch_token(code=consent(emulator, flow)["code"])
    flow = make_flow(emulator)
    assert "refresh_token" in flow.fetch_token(code=consent(emulator, flow)["code"])


def test_fewer_scopes_granted_than_asked(emulator):
    emulator.control("POST", "/oauth/granted-scopes", {"scopes": CONSOLE_SCOPES[:2]})
    flow = make_flow(emulator)
    answer = consent(emulator, flow)
    assert answer["scope"].split() == CONSOLE_SCOPES[:2]
    token = flow.fetch_token(code=answer["code"])
    assert set(token["scope"]) == set(CONSOLE_SCOPES[:2])


def test_prompt_none_without_prior_grant_asks_for_consent(emulator):
    url, state = make_flow(emulator).authorization_url(access_type="offline", prompt="none")
    assert follow_consent(url) == {"state": state, "error": "consent_required"}


def test_refresh_then_revoke_invalidates_refresh_and_access_tokens(emulator):
    credentials = emulator.credentials()
    directory = emulator.directory(credentials)
    directory.customers().get(customerKey="my_customer").execute()  # refreshes, gets an access token
    access_token = credentials.token
    assert access_token

    revoked = requests.post(f"{emulator.url}/revoke", data={"token": credentials.refresh_token}, timeout=5)
    assert revoked.status_code == 200
    assert revoked.content == b""

    api = requests.get(
        f"{emulator.url}/admin/directory/v1/customers/my_customer",
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=5,
    )
    assert api.status_code == 401
    with pytest.raises(RefreshError, match="invalid_grant"):
        credentials.refresh(__import__("google.auth.transport.requests").auth.transport.requests.Request())


def test_revoke_unknown_token_and_get_method(emulator):
    unknown = requests.post(f"{emulator.url}/revoke", params={"token": "nope"}, timeout=5)
    assert unknown.status_code == 400
    assert unknown.json()["error"] == "invalid_token"
    assert requests.get(f"{emulator.url}/revoke", params={"token": "nope"}, timeout=5).status_code == 404


def test_expired_access_token_is_refreshed_transparently(emulator):
    credentials = emulator.credentials()
    directory = emulator.directory(credentials)
    directory.customers().get(customerKey="my_customer").execute()
    first = credentials.token
    emulator.control("POST", "/oauth/expire-access-tokens")
    directory.customers().get(customerKey="my_customer").execute()  # 401, refresh, retry
    assert credentials.token != first
    statuses = [r["status"] for r in emulator.requests("directory.customers.get")]
    assert statuses == [200, 401, 200]


def test_control_revoke_grant_makes_refresh_fail(emulator):
    credentials = emulator.credentials()
    emulator.control("POST", "/oauth/revoke", {})
    with pytest.raises(RefreshError, match="invalid_grant"):
        emulator.directory(credentials).customers().get(customerKey="my_customer").execute()


def test_refresh_with_scopes_beyond_the_grant_is_invalid_scope(emulator):
    token = emulator.grant(CONSOLE_SCOPES[:1])
    credentials = emulator.credentials(scopes=CONSOLE_SCOPES, refresh_token=token["refresh_token"])
    with pytest.raises(RefreshError, match="invalid_scope"):
        emulator.directory(credentials).customers().get(customerKey="my_customer").execute()
