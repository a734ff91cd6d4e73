"""HTTP endpoints of OAuth 2.0: the consent screen, the token endpoint and revocation.

Authorize-time problems with the client or the redirect URI are shown on an error page, never
redirected (Google will not send a user to an unverified URI); a denied consent redirects back
with ``error=access_denied``.
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any
from urllib.parse import unquote, urlencode

from werkzeug import Request, Response

from google_emulator.consent_page import consent_page, error_page
from google_emulator.errors import OAuthError
from google_emulator.faults import Fault, sleep_ms
from google_emulator.oauth import KNOWN_SCOPES
from google_emulator.state import EmulatorState

# What the token endpoint answers for injected faults: the error codes google-auth retries on.
TOKEN_FAULT_ERRORS = {429: "rate_limit_exceeded", 500: "internal_failure", 503: "temporarily_unavailable"}
NO_STORE = {"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate", "Pragma": "no-cache"}


def _html(body: str, status: int = 200) -> Response:
    return Response(body, status, content_type="text/html; charset=utf-8")


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body),
        status,
        content_type="application/json; charset=utf-8",
        headers={**NO_STORE, **(headers or {})},
    )


def _redirect(uri: str, params: dict[str, str]) -> Response:
    separator = "&" if "?" in uri else "?"
    return Response(status=302, headers={"Location": uri + separator + urlencode(params)})


def fault_response(faults: list[Fault]) -> Response | None:
    for fault in faults:
        sleep_ms(fault.delay_ms)
        if fault.status is not None:
            error = TOKEN_FAULT_ERRORS.get(fault.status, "internal_failure")
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            return _json(
                {"error": error, "error_description": fault.message or "Backend Error"}, fault.status, headers
            )
    return None


def authorize(state: EmulatorState, request: Request) -> Response:
    args = request.args
    client = state.oauth.clients.get(args.get("client_id", ""))
    if client is None:
        return _html(error_page("invalid_client", "The OAuth client was not found.", 401), 401)
    redirect_uri = args.get("redirect_uri", "")
    if not redirect_uri or not state.oauth.redirect_uri_allowed(client, redirect_uri):
        description = f"redirect_uri={redirect_uri} is not registered for this client."
        return _html(error_page("redirect_uri_mismatch", description, 400), 400)
    if args.get("response_type") != "code":
        return _html(error_page("unsupported_response_type", "Invalid response_type.", 400), 400)
    scopes = args.get("scope", "").split()
    if not scopes:
        return _html(error_page("invalid_request", "Missing required parameter: scope", 400), 400)
    unknown = [s for s in scopes if s not in KNOWN_SCOPES]
    if unknown:
        return _html(error_page("invalid_scope", f"Some requested scopes were invalid: {unknown}", 400), 400)
    method = args.get("code_challenge_method")
    if method not in (None, "S256", "plain") or (method and not args.get("code_challenge")):
        return _html(error_page("invalid_request", "Invalid code_challenge_method.", 400), 400)

    request_state = {k: args[k] for k in ("state",) if k in args}
    with state.lock:
        accounts = [c.admin_email for c in state.customers]
        # Google's login_hint picks the account; else the first customer's admin (the account chooser's default).
        hint = args.get("login_hint", "")
        user = hint if hint in accounts else state.admin_email
        needs_consent = state.oauth.consent_required(client.client_id, user, scopes, args.get("prompt", ""))
        pending = {
            "client_id": client.client_id,
            "redirect_uri": redirect_uri,
            "scopes": scopes,
            "state": args.get("state"),
            "offline": args.get("access_type") == "offline",
            "include_granted_scopes": args.get("include_granted_scopes") == "true",
            "consent_shown": needs_consent,
            "user": user,
            "prompt": args.get("prompt", ""),
            "code_challenge": args.get("code_challenge"),
            "code_challenge_method": method or ("plain" if args.get("code_challenge") else None),
        }
        if "none" in args.get("prompt", "").split():
            # No UI allowed: succeed silently if already granted, else tell the app to ask.
            if needs_consent:
                return _redirect(redirect_uri, {**request_state, "error": "consent_required"})
            return _redirect(redirect_uri, _approve(state, pending))
        consent_id = secrets.token_urlsafe(16)
        state.oauth.pending[consent_id] = pending
    return _html(
        consent_page(
            consent_id=consent_id,
            client_id=client.client_id,
            account=user,
            scopes=scopes,
            accounts=accounts if len(accounts) > 1 else None,
        )
    )


def _approve(state: EmulatorState, pending: dict[str, Any]) -> dict[str, str]:
    oauth = state.oauth
    user = pending["user"]
    scopes = oauth.granted(pending["scopes"])
    if pending["include_granted_scopes"] and (
        existing := oauth.authorizations.get((pending["client_id"], user))
    ):
        scopes = sorted(set(scopes) | set(existing.scopes))
    code = oauth.issue_code(
        client_id=pending["client_id"],
        redirect_uri=pending["redirect_uri"],
        user=user,
        scopes=scopes,
        issue_refresh_token=pending["offline"] and pending["consent_shown"],
        code_challenge=pending["code_challenge"],
        code_challenge_method=pending["code_challenge_method"],
    )
    prompt = "consent" if pending["consent_shown"] else "none"
    params = {"code": code, "scope": " ".join(scopes), "authuser": "0", "prompt": prompt}
    if pending["state"] is not None:
        params = {"state": pending["state"], **params}
    return params


def approval(state: EmulatorState, request: Request) -> Response:
    with state.lock:
        pending = state.oauth.pending.pop(request.form.get("consent_id", ""), None)
        if pending is None:
            return _html(
                error_page("invalid_request", "This consent screen has expired. Start again.", 400), 400
            )
        if request.form.get("decision") != "allow":
            denied = {"error": "access_denied"}
            if pending["state"] is not None:
                denied["state"] = pending["state"]
            return _redirect(pending["redirect_uri"], denied)
        chosen = request.form.get("account")
        if chosen and chosen != pending["user"] and chosen in [c.admin_email for c in state.customers]:
            # Another account picked in the chooser: whether consent is needed depends on that account's grant.
            pending["user"] = chosen
            pending["consent_shown"] = state.oauth.consent_required(
                pending["client_id"], chosen, pending["scopes"], pending["prompt"]
            )
        return _redirect(pending["redirect_uri"], _approve(state, pending))


def _client_credentials(request: Request) -> tuple[str | None, str | None]:
    """HTTP Basic (what oauthlib's Flow sends) or form fields (what google-auth's refresh sends)."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip()).decode()
        except ValueError:
            raise OAuthError("invalid_client", "Unauthorized", 401) from None
        client_id, _, secret = decoded.partition(":")
        # RFC 6749 §2.3.1: both halves are form-urlencoded before being joined.
        return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))
    return request.form.get("client_id"), request.form.get("client_secret")


def token(state: EmulatorState, request: Request) -> Response:
    form = request.form
    try:
        with state.lock:
            client = state.oauth.authenticate_client(*_client_credentials(request))
            grant_type = form.get("grant_type", "")
            if grant_type == "authorization_code":
                body = state.oauth.exchange_code(
                    client, form.get("code"), form.get("redirect_uri"), form.get("code_verifier")
                )
            elif grant_type == "refresh_token":
                body = state.oauth.refresh(client, form.get("refresh_token"), form.get("scope"))
            else:
                raise OAuthError("unsupported_grant_type", f"Invalid grant_type: {grant_type}")
            state.changed()
    except OAuthError as error:
        return _json(error.body(), error.code)
    return _json(body)


def revoke(state: EmulatorState, request: Request) -> Response:
    raw = request.form.get("token") or request.args.get("token") or ""
    with state.lock:
        revoked = state.oauth.revoke(raw)
        state.changed()
    if not revoked:
        return _json({"error": "invalid_token", "error_description": "Token expired or revoked"}, 400)
    return Response(b"", 200, content_type="application/json; charset=utf-8")
