"""The emulator names the consenting account in an ID token when ``openid`` is asked, and can rotate refresh
tokens on refresh, as Google may."""

from __future__ import annotations

import base64
import json

import pytest
from google.auth.exceptions import RefreshError
from google.auth.transport.requests import Request

from google_emulator.testing import CONSOLE_SCOPES, follow_consent
from tests.emulator.test_oauth_flow import make_flow


def claims_of(id_token: str) -> dict:
    payload = id_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_openid_email_scopes_bring_an_id_token_naming_the_account(emulator):
    flow = make_flow(emulator, scopes=[*CONSOLE_SCOPES, "openid", "email"])
    url, _ = flow.authorization_url(access_type="offline", prompt="consent")
    token = flow.fetch_token(code=follow_consent(url)["code"])
    claims = claims_of(token["id_token"])
    assert claims["email"] == emulator.state.admin_email
    assert claims["email_verified"] is True
    assert claims["aud"] == emulator.client_id


def test_no_id_token_without_openid(emulator):
    flow = make_flow(emulator)
    url, _ = flow.authorization_url(access_type="offline", prompt="consent")
    token = flow.fetch_token(code=follow_consent(url)["code"])
    assert "id_token" not in token


def test_rotation_returns_a_new_refresh_token_and_kills_the_old_one(emulator):
    credentials = emulator.credentials()
    old = credentials.refresh_token
    emulator.control("POST", "/oauth/rotate-refresh-token", {"count": 1})
    credentials.refresh(Request())
    assert credentials.refresh_token != old
    credentials.refresh(Request())  # the new one keeps working, without rotating again
    stale = emulator.credentials(refresh_token=old)
    with pytest.raises(RefreshError, match="invalid_grant"):
        stale.refresh(Request())
