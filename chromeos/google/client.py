"""The one client for Google's APIs: OAuth endpoints, the Admin SDK Directory API and the Chrome Policy API.

Where Google is: the real endpoints, unless ``settings.GOOGLE_EMULATOR_HOST`` (``host:port``) is set, in which
case every Google endpoint is reached over plain HTTP at that address with Google's own paths (Google's
``*_EMULATOR_HOST`` convention). That setting is the only switch; nothing else differs.

Every API call goes through :meth:`GoogleClient.execute`, which first waits for the quota governor
(``quota.py``: Google's per-user, per-project and per-Workspace-account limits, shared by every worker through
Redis; a rate or quota error shrinks the matching limit for every worker), then applies timeouts, turns failures into the
typed errors of ``errors.py`` (see the retry policy table there) and retries transient ones with truncated
exponential backoff and jitter: 1, 2, 4, 8, 16 s (capped at ``GOOGLE_RETRY_MAX_SECONDS``) plus up to 1 s of
random jitter, or the server's ``Retry-After`` when it sends one; at most ``GOOGLE_RETRY_ATTEMPTS`` attempts.
Refreshed access tokens (and a rotated refresh token, should Google rotate it) are persisted on the
integration, encrypted. A refused grant (``AuthRevoked``: ``invalid_grant`` on refresh, or 401 after a refresh)
is only raised, carrying the fingerprint of the refresh token that failed: the client never decides what a
refused grant means for the integration; the calling service does (``integration_mark_reauth_required``).

A ``GoogleClient`` may also wrap an unsaved integration (the authorization callback reads the customer with
the tokens it has just received before anything is stored): then nothing is persisted or marked.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import google_auth_httplib2
import httplib2
import orjson
from django.conf import settings
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2.credentials import Credentials
from googleapiclient import discovery_cache
from googleapiclient.discovery import build_from_document, fix_method_name
from googleapiclient.errors import HttpError
from googleapiclient.model import JsonModel

from chromeos.google import quota
from chromeos.google.errors import (
    AuthRevoked,
    GoogleBadRequest,
    GoogleError,
    GoogleNotFound,
    GoogleOutcomeUnknown,
    GooglePermissionDenied,
    GoogleUnsupported,
    QuotaExhausted,
    TransientGoogleError,
)
from ops import metrics

if TYPE_CHECKING:
    from googleapiclient.discovery import Resource
    from googleapiclient.http import HttpRequest

    from chromeos.models import GoogleIntegration

logger = logging.getLogger(__name__)

SCOPE_PREFIX = "https://www.googleapis.com/auth/"
# The least the console's features need: read and act on ChromeOS devices, read OUs and the customer, and
# manage Chrome policies (apps and Blueprint settings). No users scope: the annotated user is a device field,
# and the console reads no user (a grant made earlier with admin.directory.user.readonly keeps working).
SCOPES = [
    SCOPE_PREFIX + "admin.directory.device.chromeos",
    SCOPE_PREFIX + "admin.directory.orgunit.readonly",
    SCOPE_PREFIX + "admin.directory.customer.readonly",
    SCOPE_PREFIX + "chrome.management.policy",
]

HTTP_TIMEOUT_SECONDS = 60
# Answers worth asking again (after a backoff): Google's own list of retryable errors.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
# 403s that are rate or concurrency limits: quotaExceeded is the limit of concurrent requests per Workspace
# account (Google's "Limits and quotas" page), retried with backoff like the per-user rate limit.
RATE_LIMIT_REASONS = frozenset({"userRateLimitExceeded", "rateLimitExceeded", "quotaExceeded"})
# The project's daily quota: nothing will change before tomorrow.
DAILY_QUOTA_REASONS = frozenset({"dailyLimitExceeded"})


@dataclass(frozen=True)
class GoogleEndpoints:
    auth_uri: str
    token_uri: str
    revoke_uri: str
    directory_root: str
    policy_root: str


def google_endpoints() -> GoogleEndpoints:
    host = settings.GOOGLE_EMULATOR_HOST
    if host:
        base = f"http://{host}"
        # oauthlib refuses plain HTTP; only an emulator host is ever reached that way.
        os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")
        return GoogleEndpoints(
            auth_uri=f"{base}/o/oauth2/v2/auth",
            token_uri=f"{base}/token",
            revoke_uri=f"{base}/revoke",
            directory_root=f"{base}/",
            policy_root=f"{base}/",
        )
    return GoogleEndpoints(
        auth_uri="https://accounts.google.com/o/oauth2/v2/auth",
        token_uri="https://oauth2.googleapis.com/token",  # noqa: S106
        revoke_uri="https://oauth2.googleapis.com/revoke",
        directory_root="https://admin.googleapis.com/",
        policy_root="https://chromepolicy.googleapis.com/",
    )


class OrjsonModel(JsonModel):
    """Google's JSON decoded by orjson: 3x faster than json, and decoding the device pages is most of a sync's
    client time (and it holds the GIL that the sync's database thread waits for). Where orjson is stricter
    (a lone surrogate, a NaN), or not JSON at all, JsonModel decides as before. Google sends int64 values as
    strings; a bare integer past 64 bits, which orjson would read as a float, never comes from it."""

    def deserialize(self, content: Any) -> Any:
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError:
            return super().deserialize(content)
        if self._data_wrapper and isinstance(body, dict) and "data" in body:
            body = body["data"]
        return body


def new_http() -> httplib2.Http:
    return httplib2.Http(
        timeout=float(getattr(settings, "GOOGLE_HTTP_TIMEOUT_SECONDS", HTTP_TIMEOUT_SECONDS))
    )


_DOCUMENTS: dict[tuple[str, str], dict[str, Any]] = {}
_DOCUMENTS_LOCK = threading.Lock()


def discovery_document(api: str, version: str) -> dict[str, Any]:
    """An API's discovery document (the library's static copy), parsed once per process and shared by every
    client's ``Resource``.

    ``build()`` parsed it again for every client: ~30 ms of CPU each (a sync makes one client, a parallel
    listing one per thread), and ~1 MB of objects that the ``Resource``'s reference cycles keep until the
    garbage collector's full pass, which the worker's tuned collector makes rare (``ops/worker.py``): found by
    ``benchmarks/fleet.py``, a threads worker's peak RSS 384 → 484 MB with the tuned collector (100 tenants).

    The library completes a method's description in place the first time it builds that method (it adds the
    standard parameters, the same values every time). So the first parse is built whole here, under the lock,
    every nested resource included: later builds, on any thread, only reassign keys that exist, and no thread
    sees one of these dicts change size while it reads it."""
    key = (api, version)
    document = _DOCUMENTS.get(key)
    if document is None:
        with _DOCUMENTS_LOCK:
            document = _DOCUMENTS.get(key)
            if document is None:
                document = json.loads(discovery_cache.get_static_doc(api, version))
                _build_every_resource(build_from_document(document, http=new_http()), document)
                _DOCUMENTS[key] = document
    return document


def _build_every_resource(resource: Any, description: dict[str, Any]) -> None:
    for name, nested in (description.get("resources") or {}).items():
        _build_every_resource(getattr(resource, fix_method_name(name))(), nested)


def _google_error_details(exc: HttpError) -> tuple[str, str]:
    """(message, reason) from Google's error envelope, tolerating bodies that are not JSON."""
    try:
        body = json.loads(exc.content.decode("utf-8", "replace"))
        error = body.get("error", {})
        if isinstance(error, str):  # OAuth endpoints: {"error": "...", "error_description": "..."}
            return body.get("error_description", error), error
        errors = error.get("errors") or [{}]
        return error.get("message", "") or str(exc), errors[0].get("reason", "") or error.get("status", "")
    except (ValueError, AttributeError):
        return exc.content.decode("utf-8", "replace")[:300] or str(exc), ""


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def translate_http_error(exc: HttpError) -> GoogleError:
    status = int(exc.resp.status)
    message, reason = _google_error_details(exc)
    retry_after = parse_retry_after(exc.resp.get("retry-after"))
    if status in TRANSIENT_STATUSES or (status == 403 and reason in RATE_LIMIT_REASONS):
        return TransientGoogleError(message, status=status, reason=reason, retry_after=retry_after)
    if status == 403 and reason in DAILY_QUOTA_REASONS:
        return QuotaExhausted(message, status=status, reason=reason)
    if status >= 500:
        return GoogleUnsupported(message, status=status, reason=reason)
    if status == 401:
        return AuthRevoked(message, status=status, reason=reason)
    if status == 403:
        return GooglePermissionDenied(message, status=status, reason=reason)
    if status == 404:
        return GoogleNotFound(message, status=status, reason=reason)
    return GoogleBadRequest(message, status=status, reason=reason)


def translate_exception(exc: Exception) -> GoogleError:
    if isinstance(exc, GoogleError):
        return exc
    if isinstance(exc, HttpError):
        return translate_http_error(exc)
    if isinstance(exc, RefreshError):
        # google-auth raises RefreshError for invalid_grant (revoked or expired grant) and invalid_client.
        if exc.retryable:
            return TransientGoogleError(f"Token refresh failed: {exc}")
        return AuthRevoked(f"Token refresh refused: {exc}", reason="invalid_grant")
    if isinstance(
        exc, TransportError | httplib2.HttpLib2Error | socket.timeout | TimeoutError | ConnectionError
    ):
        return TransientGoogleError(f"Google unreachable: {exc}")
    if isinstance(exc, OSError):
        return TransientGoogleError(f"Network error: {exc}")
    raise exc


def _may_have_reached_google(exc: Exception) -> bool:
    """The request was sent and its answer never came: Google may have acted on it. (A refused connection or a
    failed token refresh never reached the API; an HTTP error is Google's answer.)"""
    return isinstance(
        exc,
        TimeoutError
        | ConnectionResetError
        | ConnectionAbortedError
        | BrokenPipeError
        | http.client.IncompleteRead,
    )


def backoff_delay(attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based)."""
    cap = float(getattr(settings, "GOOGLE_RETRY_MAX_SECONDS", 16.0))
    base = float(getattr(settings, "GOOGLE_RETRY_BASE_SECONDS", 1.0))
    if retry_after is not None:
        return min(retry_after, cap * 4)
    return min(cap, base * 2**attempt) + random.uniform(0, base)


class GoogleClient:
    """Authorized access to one tenant's Google APIs, built from its stored (encrypted) tokens."""

    def __init__(
        self, integration: GoogleIntegration, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.integration = integration
        self.endpoints = google_endpoints()
        self._sleep = sleep
        self._credentials = Credentials(
            token=integration.access_token or None,
            refresh_token=integration.refresh_token,
            token_uri=self.endpoints.token_uri,
            client_id=settings.GOOGLE_OAUTH_CLIENT_ID,
            client_secret=settings.GOOGLE_OAUTH_CLIENT_SECRET,
            scopes=integration.scopes or SCOPES,
            expiry=_naive_utc(integration.access_token_expires_at),
        )
        self._directory: Resource | None = None
        self._policy: Resource | None = None
        # Whose quota this client's calls spend, and how long they waited for it (the sync logs it).
        self.quota_subject = quota.Subject(
            project=settings.GOOGLE_OAUTH_CLIENT_ID,
            user=integration.admin_email or "unknown",
            customer=integration.customer_id or f"tenant-{integration.tenant_id}",
        )
        self.quota_waits = 0
        self.quota_wait_seconds = 0.0

    # -- services --------------------------------------------------------------------------------------------
    def _authorized_http(self) -> google_auth_httplib2.AuthorizedHttp:
        return google_auth_httplib2.AuthorizedHttp(self._credentials, http=new_http())

    def _service(self, api: str, version: str, root: str) -> Resource:
        return build_from_document(
            discovery_document(api, version),
            http=self._authorized_http(),
            model=OrjsonModel(False),
            client_options={"api_endpoint": root},
        )

    def directory(self) -> Resource:
        if self._directory is None:
            self._directory = self._service("admin", "directory_v1", self.endpoints.directory_root)
        return self._directory

    def chrome_policy(self) -> Resource:
        if self._policy is None:
            self._policy = self._service("chromepolicy", "v1", self.endpoints.policy_root)
        return self._policy

    # -- calls -----------------------------------------------------------------------------------------------
    def execute(
        self, request: HttpRequest, *, attempts: int | None = None, resend_unanswered: bool = True
    ) -> Any:
        """Run one API request with the retry policy; return Google's decoded response.

        ``resend_unanswered=False`` for a call that must not be done twice (a remote command): a request that
        left without an answer (timeout, dropped connection) is not sent again, ``GoogleOutcomeUnknown`` is
        raised instead. Google's error answers (429, 503...) are retried as usual: those did nothing."""
        max_attempts = attempts or int(getattr(settings, "GOOGLE_RETRY_ATTEMPTS", 5))
        for attempt in range(max_attempts):
            method = getattr(request, "methodId", "") or "unknown"
            lease = quota.acquire(self.quota_subject)
            if lease.waited_seconds:
                self.quota_waits += 1
                self.quota_wait_seconds += lease.waited_seconds
            try:
                response = request.execute()
            except Exception as raw:
                lease.release()
                error = translate_exception(raw)
                metrics.record_google_call(method, error.status)
                quota.penalize(self.quota_subject, error.status, error.reason)
                if not resend_unanswered and _may_have_reached_google(raw):
                    raise GoogleOutcomeUnknown(f"No answer from Google: {raw}") from raw
                if isinstance(error, TransientGoogleError) and attempt + 1 < max_attempts:
                    delay = backoff_delay(attempt, error.retry_after)
                    metrics.record_google_retry_wait(error.status, delay)
                    logger.warning(
                        "google transient error tenant=%s status=%s reason=%s; retry %d in %.1fs",
                        self.integration.tenant_id,
                        error.status,
                        error.reason,
                        attempt + 1,
                        delay,
                    )
                    self._sleep(delay)
                    continue
                self.persist_tokens()
                if isinstance(error, AuthRevoked):
                    error.token_fingerprint = token_fingerprint(self._credentials.refresh_token or "")
                raise error from raw
            lease.release()
            metrics.record_google_call(method, "2xx")
            self.persist_tokens()
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def persist_tokens(self) -> None:
        """Save a refreshed access token (and a rotated refresh token) on the integration, encrypted."""
        creds = self._credentials
        integration = self.integration
        if integration.pk is None:
            return
        changes: dict[str, Any] = {}
        if creds.token and creds.token != integration.access_token:
            changes["access_token"] = creds.token
            changes["access_token_expires_at"] = creds.expiry.replace(tzinfo=UTC) if creds.expiry else None
        if creds.refresh_token and creds.refresh_token != integration.refresh_token:
            changes["refresh_token"] = creds.refresh_token
        if not changes:
            return
        for field, value in changes.items():
            setattr(integration, field, value)
        # update(), not save(): a concurrent save of other fields must not be overwritten. update() still runs
        # the field's get_prep_value, so the tokens are stored encrypted.
        type(integration).unscoped.filter(pk=integration.pk).update(**changes)


class RevocationOutcome(StrEnum):
    REVOKED = "revoked"
    # Google no longer knows the token (expired, already revoked, or the admin removed the app's access):
    # the grant is gone either way, which is what revoking wanted.
    ALREADY_INVALID = "already_invalid"


def revoke_token(token: str, *, sleep: Callable[[float], None] = time.sleep) -> RevocationOutcome:
    """Revoke a token at Google's revoke endpoint; revoking a refresh token revokes its whole grant.

    200 → ``REVOKED``; 400 ``invalid_token`` → ``ALREADY_INVALID``. Transient failures (timeouts, connection
    errors, 429, 5xx) are retried with the same backoff as API calls; when attempts run out, or on any other
    answer, the typed error is raised.
    """
    uri = google_endpoints().revoke_uri
    body = urlencode({"token": token})
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    max_attempts = int(getattr(settings, "GOOGLE_RETRY_ATTEMPTS", 5))
    for attempt in range(max_attempts):
        try:
            response, content = new_http().request(uri, "POST", body=body, headers=headers)
        except Exception as raw:
            error = translate_exception(raw)
            metrics.record_google_call("oauth.revoke", error.status)
        else:
            metrics.record_google_call(
                "oauth.revoke", "2xx" if int(response.status) == 200 else response.status
            )
            if int(response.status) == 200:
                return RevocationOutcome.REVOKED
            error = translate_http_error(HttpError(response, content, uri=uri))
            if int(response.status) == 400 and error.reason == "invalid_token":
                return RevocationOutcome.ALREADY_INVALID
        if isinstance(error, TransientGoogleError) and attempt + 1 < max_attempts:
            delay = backoff_delay(attempt, error.retry_after)
            metrics.record_google_retry_wait(error.status, delay)
            logger.warning(
                "google revoke transient error status=%s; retry %d in %.1fs", error.status, attempt + 1, delay
            )
            sleep(delay)
            continue
        raise error
    raise AssertionError("unreachable")  # pragma: no cover


def token_fingerprint(token: str) -> str:
    """What identifies a refresh token without revealing it (compared, logged or raised instead of it)."""
    return hashlib.sha256(token.encode()).hexdigest()[:32] if token else ""


def _naive_utc(value: datetime | None) -> datetime | None:
    # google-auth compares expiry with a naive UTC "now".
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None)
