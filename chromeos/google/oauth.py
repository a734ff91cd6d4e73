"""Google's OAuth 2.0 web server flow, with google-auth-oauthlib: the authorize URL and the code exchange.

What each step guarantees:

* ``state``: 256 random bits, remembered server-side in the Django session together with the tenant, the
  user, the time and the PKCE verifier (the session cookie only carries the session key). The callback pops
  it: single use; it expires after ``STATE_TTL_SECONDS``.
* PKCE S256: the 128-character verifier never leaves the server until the code exchange.
* ``access_type=offline`` and ``prompt=consent``: Google returns a refresh token only when the consent screen
  was shown, so consent is always asked.
* The redirect URI is sent identically in the authorize URL and in the code exchange (Google compares them
  byte for byte); it is remembered with the state rather than rebuilt.
* Scopes: ``SCOPES`` (what the console's features need) plus ``openid email``, so the token response carries
  an ID token naming the Google account that consented. Google may answer with more scopes than asked (it
  returns the union of the grants, and spells ``email`` as ``.../auth/userinfo.email``): oauthlib would raise
  on any difference, so ``OAUTHLIB_RELAX_TOKEN_SCOPE`` is set and the caller checks the granted scopes itself.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import time
from collections.abc import MutableMapping
from dataclasses import asdict, dataclass
from typing import Any

import requests
from django.conf import settings
from google_auth_oauthlib.flow import Flow
from oauthlib.oauth2 import OAuth2Error

from chromeos.google.client import HTTP_TIMEOUT_SECONDS, SCOPES, google_endpoints
from chromeos.google.errors import GoogleError, TransientGoogleError

os.environ.setdefault("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")

IDENTITY_SCOPES = ["openid", "email"]
AUTHORIZATION_SCOPES = [*SCOPES, *IDENTITY_SCOPES]
STATE_TTL_SECONDS = 10 * 60
SESSION_KEY = "chromeos_oauth_pending"
# A few tabs may start an authorization each; older pending ones are dropped beyond this.
MAX_PENDING = 5
TRANSIENT_OAUTH_ERRORS = {
    "internal_failure",
    "server_error",
    "temporarily_unavailable",
    "rate_limit_exceeded",
}


class CodeExchangeRefused(GoogleError):
    """Google's token endpoint refused the authorization code (``error`` is OAuth's error code)."""


@dataclass(frozen=True)
class PendingAuthorization:
    """What the callback needs to trust and complete one authorization; lives in the session only."""

    state: str
    tenant_id: int
    user_id: int
    created: float
    code_verifier: str
    redirect_uri: str

    def expired(self, now: float | None = None) -> bool:
        return (now if now is not None else time.time()) - self.created > STATE_TTL_SECONDS


def client_config(redirect_uri: str) -> dict[str, Any]:
    endpoints = google_endpoints()
    return {
        "web": {
            "client_id": settings.GOOGLE_OAUTH_CLIENT_ID,
            "client_secret": settings.GOOGLE_OAUTH_CLIENT_SECRET,
            "auth_uri": endpoints.auth_uri,
            "token_uri": endpoints.token_uri,
            "redirect_uris": [redirect_uri],
        }
    }


def build_flow(*, redirect_uri: str, state: str | None = None, code_verifier: str | None = None) -> Flow:
    return Flow.from_client_config(
        client_config(redirect_uri),
        scopes=AUTHORIZATION_SCOPES,
        redirect_uri=redirect_uri,
        state=state,
        code_verifier=code_verifier,
        autogenerate_code_verifier=code_verifier is None,
    )


def authorization_request(
    *, redirect_uri: str, tenant_id: int, user_id: int
) -> tuple[str, PendingAuthorization]:
    """Google's authorize URL for a new authorization, and what to remember for its callback."""
    state = secrets.token_urlsafe(32)
    flow = build_flow(redirect_uri=redirect_uri, state=state)
    url, returned_state = flow.authorization_url(access_type="offline", prompt="consent")
    assert returned_state == state and flow.code_verifier
    pending = PendingAuthorization(
        state=state,
        tenant_id=tenant_id,
        user_id=user_id,
        created=time.time(),
        code_verifier=flow.code_verifier,
        redirect_uri=redirect_uri,
    )
    return url, pending


def remember_pending(session: MutableMapping[str, Any], pending: PendingAuthorization) -> None:
    entries: dict[str, dict[str, Any]] = dict(session.get(SESSION_KEY) or {})
    entries[pending.state] = asdict(pending)
    newest = sorted(entries.values(), key=lambda entry: entry["created"])[-MAX_PENDING:]
    session[SESSION_KEY] = {entry["state"]: entry for entry in newest}


def pop_pending(session: MutableMapping[str, Any], state: str) -> PendingAuthorization | None:
    """The pending authorization for ``state``, removed from the session (single use); None if unknown."""
    entries: dict[str, dict[str, Any]] = dict(session.get(SESSION_KEY) or {})
    entry = entries.pop(state, None) if state else None
    session[SESSION_KEY] = entries
    if entry is None:
        return None
    try:
        return PendingAuthorization(**entry)
    except TypeError:  # an entry written by an older version of this module
        return None


def exchange_code(pending: PendingAuthorization, code: str) -> dict[str, Any]:
    """Exchange the authorization code (with the PKCE verifier) for tokens.

    Never retried: a code is single use, so a retry after a lost answer would only meet ``invalid_grant``.
    Raises ``CodeExchangeRefused`` (Google said no) or ``TransientGoogleError`` (Google unreachable or failing).
    """
    flow = build_flow(
        redirect_uri=pending.redirect_uri, state=pending.state, code_verifier=pending.code_verifier
    )
    try:
        token: dict[str, Any] = flow.fetch_token(code=code, timeout=HTTP_TIMEOUT_SECONDS)
    except OAuth2Error as exc:
        error = exc.error or "invalid_request"
        description = exc.description or ""
        if error in TRANSIENT_OAUTH_ERRORS:
            raise TransientGoogleError(f"{error}: {description}", reason=error) from exc
        raise CodeExchangeRefused(f"{error}: {description}", reason=error) from exc
    except requests.RequestException as exc:
        raise TransientGoogleError(f"Google unreachable: {exc.__class__.__name__}") from exc
    except ValueError as exc:  # a body that is not an OAuth answer (an HTML error page...)
        raise TransientGoogleError(f"Unexpected answer from Google's token endpoint: {exc}") from exc
    return token


def granted_scopes(token: dict[str, Any]) -> list[str]:
    scope = token.get("scope") or []
    return sorted(scope.split() if isinstance(scope, str) else scope)


def id_token_email(token: dict[str, Any]) -> str:
    """The consenting account's address from the ID token, or "" when there is none.

    The signature is not checked: the token came straight from Google's token endpoint over TLS, in exchange
    for our code and client secret, which OpenID Connect Core §3.1.3.7 accepts in place of a signature check.
    """
    raw = token.get("id_token")
    if not isinstance(raw, str) or raw.count(".") != 2:
        return ""
    payload = raw.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        return ""
    email = claims.get("email") if isinstance(claims, dict) else None
    return email if isinstance(email, str) and "@" in email else ""
