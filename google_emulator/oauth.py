"""OAuth 2.0 for web server applications: clients, codes, grants and tokens (no HTTP here).

The rules are Google's: codes are single use and short-lived; a refresh token is only issued for
``access_type=offline`` when the consent screen was shown (``prompt=consent`` or a first/extended
grant); revoking any token of a grant revokes the grant whole, its access tokens included.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import secrets
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from google_emulator.errors import OAuthError
from google_emulator.model import AccessToken, Authorization, AuthorizationCode, OAuthClient

SCOPE_PREFIX = "https://www.googleapis.com/auth/"

# Human wording on the consent page (Google shows a sentence per scope).
SCOPE_DESCRIPTIONS = {
    "admin.directory.device.chromeos": "View and manage your Chrome OS devices' metadata",
    "admin.directory.device.chromeos.readonly": "View your Chrome OS devices' metadata",
    "admin.directory.orgunit": "View and manage organization units on your domain",
    "admin.directory.orgunit.readonly": "View organization units on your domain",
    "admin.directory.customer": "View and manage customer related information",
    "admin.directory.customer.readonly": "View customer related information",
    "admin.directory.user": "View and manage the provisioning of users on your domain",
    "admin.directory.user.readonly": "See info about users on your domain",
    "chrome.management.policy": "See, edit, create or delete policies applied to Chrome OS and Chrome Browsers",
    "chrome.management.policy.readonly": "See policies applied to Chrome OS and Chrome Browsers",
    "chrome.management.telemetry.readonly": "See reports about devices and Chrome browsers managed within your organization",
    "chrome.management.reports.readonly": "See reports about devices and Chrome browsers managed within your organization",
}
KNOWN_SCOPES = frozenset(SCOPE_PREFIX + s for s in SCOPE_DESCRIPTIONS) | {"openid", "email", "profile"}


def describe_scope(scope: str) -> str:
    return SCOPE_DESCRIPTIONS.get(scope.removeprefix(SCOPE_PREFIX), scope)


def _random_token(prefix: str, size: int) -> str:
    return prefix + secrets.token_urlsafe(size)


def pkce_matches(challenge: str, method: str | None, verifier: str) -> bool:
    if (method or "plain") == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        computed = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    else:
        computed = verifier
    return hmac.compare_digest(computed, challenge)


class OAuthStore:
    def __init__(self, now: Callable[[], float], access_token_ttl: int = 3599, code_ttl: int = 60) -> None:
        self.now = now
        self.access_token_ttl = access_token_ttl
        self.code_ttl = code_ttl
        self.clients: dict[str, OAuthClient] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.authorizations: dict[tuple[str, str], Authorization] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, tuple[str, str, list[str]]] = {}  # token -> (client, user, scopes)
        # Test controls: consent grants only these scopes; the next N exchanges withhold the refresh token.
        self.granted_scopes_limit: list[str] | None = None
        self.withhold_refresh_tokens = 0
        # The next N refreshes rotate the refresh token (Google may do so): a new one is returned, the old dies.
        self.rotate_refresh_tokens = 0
        self.pending: dict[str, dict[str, Any]] = {}  # consent screens shown, not yet answered
        self._epochs = itertools.count(1)

    # -- clients -------------------------------------------------------------------------------
    def register_client(
        self, client_id: str, client_secret: str, redirect_uris: list[str] | None = None
    ) -> None:
        self.clients[client_id] = OAuthClient(client_id, client_secret, list(redirect_uris or []))

    def authenticate_client(self, client_id: str | None, client_secret: str | None) -> OAuthClient:
        if not client_id:
            raise OAuthError("invalid_request", "Could not determine client ID from request.")
        client = self.clients.get(client_id)
        if client is None:
            raise OAuthError("invalid_client", "The OAuth client was not found.", 401)
        if client_secret is None or not hmac.compare_digest(client.client_secret, client_secret):
            raise OAuthError("invalid_client", "Unauthorized", 401)
        return client

    @staticmethod
    def redirect_uri_allowed(client: OAuthClient, uri: str) -> bool:
        if client.redirect_uris:
            return uri in client.redirect_uris
        return uri.startswith(("http://", "https://"))

    # -- consent -------------------------------------------------------------------------------
    def consent_required(self, client_id: str, user: str, scopes: list[str], prompt: str) -> bool:
        """Whether Google would show the consent screen (and so issue a refresh token)."""
        if "consent" in prompt.split():
            return True
        existing = self.authorizations.get((client_id, user))
        return existing is None or not set(scopes) <= set(existing.scopes)

    def granted(self, requested: list[str]) -> list[str]:
        if self.granted_scopes_limit is None:
            return list(requested)
        return [s for s in requested if s in self.granted_scopes_limit]

    def issue_code(
        self,
        *,
        client_id: str,
        redirect_uri: str,
        user: str,
        scopes: list[str],
        issue_refresh_token: bool,
        code_challenge: str | None,
        code_challenge_method: str | None,
    ) -> str:
        code = _random_token("4/0A", 48)
        self.codes[code] = AuthorizationCode(
            code=code,
            client_id=client_id,
            redirect_uri=redirect_uri,
            user=user,
            scopes=scopes,
            expires_at=self.now() + self.code_ttl,
            issue_refresh_token=issue_refresh_token,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
        )
        return code

    def grant_directly(self, client_id: str, user: str, scopes: list[str]) -> dict[str, Any]:
        """A consent without the screen: what test fixtures use to get a refresh token quickly."""
        authorization = self._authorize(client_id, user, scopes)
        response = self._access_token_response(client_id, user, scopes, authorization.epoch)
        refresh_token = _random_token("1//0", 72)
        self.refresh_tokens[refresh_token] = (client_id, user, list(scopes))
        authorization.refresh_tokens.append(refresh_token)
        return {**response, "refresh_token": refresh_token}

    # -- token endpoint ------------------------------------------------------------------------
    def exchange_code(
        self, client: OAuthClient, code: str | None, redirect_uri: str | None, verifier: str | None
    ) -> dict[str, Any]:
        grant = self.codes.get(code or "")
        if (
            grant is None
            or grant.used
            or grant.expires_at <= self.now()
            or grant.client_id != client.client_id
        ):
            raise OAuthError("invalid_grant", "Bad Request")
        if redirect_uri != grant.redirect_uri:
            raise OAuthError("redirect_uri_mismatch", "Bad Request")
        if grant.code_challenge:
            if not verifier:
                raise OAuthError("invalid_grant", "Missing code verifier.")
            if not pkce_matches(grant.code_challenge, grant.code_challenge_method, verifier):
                raise OAuthError("invalid_grant", "Invalid code verifier.")
        grant.used = True
        authorization = self._authorize(client.client_id, grant.user, grant.scopes)
        response = self._access_token_response(
            client.client_id, grant.user, grant.scopes, authorization.epoch
        )
        if "openid" in grant.scopes:
            response["id_token"] = self._id_token(client, grant.user, grant.scopes)
        if grant.issue_refresh_token:
            if self.withhold_refresh_tokens > 0:
                self.withhold_refresh_tokens -= 1
            else:
                refresh_token = _random_token("1//0", 72)
                self.refresh_tokens[refresh_token] = (client.client_id, grant.user, list(grant.scopes))
                authorization.refresh_tokens.append(refresh_token)
                response["refresh_token"] = refresh_token
        return response

    def refresh(self, client: OAuthClient, refresh_token: str | None, scope: str | None) -> dict[str, Any]:
        entry = self.refresh_tokens.get(refresh_token or "")
        if entry is None:
            raise OAuthError("invalid_grant", "Token has been expired or revoked.")
        client_id, user, scopes = entry
        if client_id != client.client_id:
            raise OAuthError("unauthorized_client", "Unauthorized")
        authorization = self.authorizations.get((client_id, user))
        if authorization is None:
            raise OAuthError("invalid_grant", "Token has been expired or revoked.")
        if scope:
            requested = scope.split()
            extra = [s for s in requested if s not in scopes]
            if extra:
                raise OAuthError("invalid_scope", f"Some requested scopes were invalid. {{invalid={extra}}}")
            scopes = requested
        response = self._access_token_response(client_id, user, scopes, authorization.epoch)
        if self.rotate_refresh_tokens > 0:
            self.rotate_refresh_tokens -= 1
            rotated = _random_token("1//0", 72)
            self.refresh_tokens[rotated] = self.refresh_tokens.pop(refresh_token or "")
            authorization.refresh_tokens = [
                rotated if token == refresh_token else token for token in authorization.refresh_tokens
            ]
            response["refresh_token"] = rotated
        return response

    def _id_token(self, client: OAuthClient, user: str, scopes: list[str]) -> str:
        """An OpenID Connect ID token naming the consenting account. Signed HS256 with the client secret (Google
        signs RS256 with its own keys); an app that got it straight from the token endpoint need not verify it."""
        now = int(self.now())
        claims: dict[str, Any] = {
            "iss": "https://accounts.google.com",
            "azp": client.client_id,
            "aud": client.client_id,
            "sub": str(int(hashlib.sha256(user.encode()).hexdigest()[:15], 16)),
            "iat": now,
            "exp": now + self.access_token_ttl,
        }
        if "email" in scopes or SCOPE_PREFIX + "userinfo.email" in scopes:
            claims.update(email=user, email_verified=True)

        def encode(part: bytes) -> str:
            return base64.urlsafe_b64encode(part).decode().rstrip("=")

        header = encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = encode(json.dumps(claims).encode())
        signature = hmac.new(client.client_secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
        return f"{header}.{payload}.{encode(signature.digest())}"

    def _authorize(self, client_id: str, user: str, scopes: list[str]) -> Authorization:
        existing = self.authorizations.get((client_id, user))
        if existing is None:
            existing = Authorization(client_id, user, [], next(self._epochs))
            self.authorizations[(client_id, user)] = existing
        existing.scopes = sorted(set(existing.scopes) | set(scopes))
        return existing

    def _access_token_response(
        self, client_id: str, user: str, scopes: list[str], epoch: int
    ) -> dict[str, Any]:
        token = _random_token("ya29.a0", 96)
        self.access_tokens[token] = AccessToken(
            token, client_id, user, list(scopes), self.now() + self.access_token_ttl, epoch
        )
        return {
            "access_token": token,
            "expires_in": self.access_token_ttl,
            "scope": " ".join(scopes),
            "token_type": "Bearer",
        }

    # -- using and revoking tokens ---------------------------------------------------------------
    def validate_access_token(self, token: str) -> AccessToken | None:
        found = self.access_tokens.get(token)
        if found is None or found.expires_at <= self.now():
            return None
        authorization = self.authorizations.get((found.client_id, found.user))
        if authorization is None or authorization.epoch != found.epoch:
            return None
        return found

    def revoke(self, token: str) -> bool:
        """Revoke the grant a token (access or refresh) belongs to. False if the token is unknown."""
        if token in self.refresh_tokens:
            client_id, user, _ = self.refresh_tokens[token]
        elif (access := self.validate_access_token(token)) is not None:
            client_id, user = access.client_id, access.user
        else:
            return False
        self.revoke_grants(client_id=client_id, user=user)
        return True

    def revoke_grants(self, client_id: str | None = None, user: str | None = None) -> int:
        """What an admin does under "Third-party apps with account access": returns grants removed."""
        keys = [
            key
            for key in self.authorizations
            if (client_id is None or key[0] == client_id) and (user is None or key[1] == user)
        ]
        for key in keys:
            authorization = self.authorizations.pop(key)
            for refresh_token in authorization.refresh_tokens:
                self.refresh_tokens.pop(refresh_token, None)
        self.access_tokens = {
            t: a for t, a in self.access_tokens.items() if (a.client_id, a.user) in self.authorizations
        }
        return len(keys)

    def expire_access_tokens(self) -> int:
        now = self.now()
        for token in self.access_tokens.values():
            token.expires_at = min(token.expires_at, now)
        return len(self.access_tokens)

    # -- persistence ---------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        return {
            "clients": [asdict(c) for c in self.clients.values()],
            "authorizations": [asdict(a) for a in self.authorizations.values()],
            "access_tokens": [asdict(t) for t in self.access_tokens.values()],
            "refresh_tokens": {t: list(v) for t, v in self.refresh_tokens.items()},
        }

    def load(self, data: dict[str, Any]) -> None:
        self.clients = {c["client_id"]: OAuthClient(**c) for c in data.get("clients", [])}
        self.authorizations = {
            (a["client_id"], a["user"]): Authorization(**a) for a in data.get("authorizations", [])
        }
        self.access_tokens = {t["token"]: AccessToken(**t) for t in data.get("access_tokens", [])}
        self.refresh_tokens = {t: (v[0], v[1], v[2]) for t, v in data.get("refresh_tokens", {}).items()}
        top = max((a.epoch for a in self.authorizations.values()), default=0)
        self._epochs = itertools.count(top + 1)
