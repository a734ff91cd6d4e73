"""GoogleClient against the emulator over HTTP: token refresh and rotation persisted encrypted, one typed error
per Google answer, backoff with Retry-After, a revoked grant marking the integration "réautorisation requise"."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from chromeos.google.client import (
    GoogleClient,
    OrjsonModel,
    google_endpoints,
    parse_retry_after,
    token_fingerprint,
)
from chromeos.google.errors import (
    AuthRevoked,
    GoogleBadRequest,
    GoogleNotFound,
    GooglePermissionDenied,
    GoogleUnsupported,
    QuotaExhausted,
    TransientGoogleError,
)
from chromeos.models import GoogleIntegration, IntegrationStatus
from chromeos.services.integration import integration_google_refused
from mdm.models import AuditEvent

CUSTOMERS_GET = "directory.customers.get"


def get_customer(client: GoogleClient, **kwargs):
    return client.execute(client.directory().customers().get(customerKey="my_customer"), **kwargs)


def raw_tokens(integration: GoogleIntegration) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT refresh_token, access_token FROM chromeos_googleintegration WHERE id = %s",
            [integration.pk],
        )
        return cursor.fetchone()


def reload(integration: GoogleIntegration) -> GoogleIntegration:
    return GoogleIntegration.unscoped.get(pk=integration.pk)


# -- where Google is -------------------------------------------------------------------------------------------
def test_endpoints_are_googles_unless_the_emulator_host_is_set(settings):
    settings.GOOGLE_EMULATOR_HOST = ""
    real = google_endpoints()
    assert real.token_uri == "https://oauth2.googleapis.com/token"
    assert real.directory_root == "https://admin.googleapis.com/"
    assert real.policy_root == "https://chromepolicy.googleapis.com/"
    settings.GOOGLE_EMULATOR_HOST = "127.0.0.1:9"
    emulated = google_endpoints()
    assert {emulated.auth_uri, emulated.token_uri, emulated.revoke_uri} == {
        "http://127.0.0.1:9/o/oauth2/v2/auth",
        "http://127.0.0.1:9/token",
        "http://127.0.0.1:9/revoke",
    }
    assert emulated.directory_root == emulated.policy_root == "http://127.0.0.1:9/"


def test_chrome_policy_client_reaches_the_emulator(google_integration, google_emulator):
    client = GoogleClient(google_integration)
    request = (
        client.chrome_policy().customers().policySchemas().list(parent="customers/my_customer", pageSize=5)
    )
    assert request.uri.startswith(google_emulator.url + "/v1/customers/my_customer/policySchemas")


# -- tokens ----------------------------------------------------------------------------------------------------
def test_access_token_refreshed_after_a_401_is_persisted_encrypted(google_integration, google_emulator):
    old_access = google_integration.access_token
    google_emulator.control("POST", "/oauth/expire-access-tokens")
    assert get_customer(GoogleClient(google_integration))["id"] == google_integration.customer_id
    stored = reload(google_integration)
    assert stored.access_token and stored.access_token != old_access
    assert stored.access_token_expires_at > timezone.now() + timedelta(minutes=50)
    assert stored.refresh_token == google_integration.refresh_token
    raw_refresh, raw_access = raw_tokens(stored)
    assert stored.access_token not in raw_access and stored.refresh_token not in raw_refresh
    assert [r["status"] for r in google_emulator.requests(CUSTOMERS_GET)] == [401, 200]
    # The next client starts from the persisted token: no refresh needed.
    google_emulator.control("DELETE", "/requests")
    get_customer(GoogleClient(stored))
    assert [r["method"] for r in google_emulator.requests()] == [CUSTOMERS_GET]


def test_expired_access_token_is_refreshed_before_the_call(google_integration, google_emulator):
    GoogleIntegration.unscoped.filter(pk=google_integration.pk).update(
        access_token_expires_at=timezone.now() - timedelta(minutes=1)
    )
    get_customer(GoogleClient(reload(google_integration)))
    assert [r["method"] for r in google_emulator.requests()] == ["oauth2.token", CUSTOMERS_GET]
    assert reload(google_integration).access_token != google_integration.access_token


def test_rotated_refresh_token_is_persisted_encrypted(google_integration, google_emulator):
    old_refresh = google_integration.refresh_token
    google_emulator.control("POST", "/oauth/rotate-refresh-token", {"count": 1})
    google_emulator.control("POST", "/oauth/expire-access-tokens")
    get_customer(GoogleClient(google_integration))
    stored = reload(google_integration)
    assert stored.refresh_token != old_refresh
    assert stored.refresh_token not in raw_tokens(stored)[0]
    # The old refresh token died with the rotation; the persisted one works.
    google_emulator.control("POST", "/oauth/expire-access-tokens")
    get_customer(GoogleClient(stored))
    assert reload(google_integration).status == IntegrationStatus.ACTIVE


# -- typed errors ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        (400, "invalid", GoogleBadRequest),
        (403, "forbidden", GooglePermissionDenied),
        (403, "insufficientPermissions", GooglePermissionDenied),
        (403, "dailyLimitExceeded", QuotaExhausted),
        (404, "notFound", GoogleNotFound),
        # Google's concurrency limit per Workspace account: retried with backoff, not a daily quota.
        (403, "quotaExceeded", TransientGoogleError),
        (403, "userRateLimitExceeded", TransientGoogleError),
        (403, "rateLimitExceeded", TransientGoogleError),
        (429, "rateLimitExceeded", TransientGoogleError),
        (500, "backendError", TransientGoogleError),
        (502, "backendError", TransientGoogleError),
        (503, "backendError", TransientGoogleError),
        (504, "backendError", TransientGoogleError),
        # Permanent server answers: asking again changes nothing.
        (501, "notImplemented", GoogleUnsupported),
        (505, "httpVersionNotSupported", GoogleUnsupported),
    ],
)
def test_each_google_answer_becomes_its_typed_error(
    google_integration, google_emulator, status, reason, expected
):
    google_emulator.add_fault(method=CUSTOMERS_GET, status=status, reason=reason, count=None)
    sleeps: list[float] = []
    with pytest.raises(expected) as caught:
        get_customer(GoogleClient(google_integration, sleep=sleeps.append), attempts=3)
    assert caught.type is expected
    assert (caught.value.status, caught.value.reason) == (status, reason)
    calls = len(google_emulator.requests(CUSTOMERS_GET))
    if expected is TransientGoogleError:
        assert calls == 3 and len(sleeps) == 2  # retried until attempts ran out
    else:
        assert calls == 1 and sleeps == []  # never retried
    assert reload(google_integration).status == IntegrationStatus.ACTIVE


def test_transient_errors_retry_then_succeed(google_integration, google_emulator):
    google_emulator.add_fault(method=CUSTOMERS_GET, status=503, count=2)
    sleeps: list[float] = []
    assert get_customer(GoogleClient(google_integration, sleep=sleeps.append))["id"]
    assert len(sleeps) == 2
    assert [r["status"] for r in google_emulator.requests(CUSTOMERS_GET)] == [503, 503, 200]


def test_backoff_honours_retry_after_up_to_four_times_the_cap(google_integration, google_emulator, settings):
    settings.GOOGLE_RETRY_MAX_SECONDS = 16.0
    google_emulator.add_fault(method=CUSTOMERS_GET, status=429, retry_after=7, count=2)
    sleeps: list[float] = []
    get_customer(GoogleClient(google_integration, sleep=sleeps.append))
    assert sleeps == [7.0, 7.0]
    google_emulator.add_fault(method=CUSTOMERS_GET, status=503, retry_after=3600, count=1)
    get_customer(GoogleClient(google_integration, sleep=sleeps.append))
    assert sleeps == [7.0, 7.0, 64.0]


def test_backoff_without_retry_after_is_exponential_with_jitter(
    google_integration, google_emulator, settings
):
    settings.GOOGLE_RETRY_BASE_SECONDS = 1.0
    settings.GOOGLE_RETRY_MAX_SECONDS = 16.0
    google_emulator.add_fault(method=CUSTOMERS_GET, status=500, count=None)
    sleeps: list[float] = []
    with pytest.raises(TransientGoogleError):
        get_customer(GoogleClient(google_integration, sleep=sleeps.append), attempts=6)
    assert len(sleeps) == 5
    for attempt, delay in enumerate(sleeps):
        base = min(16.0, 2.0**attempt)
        assert base <= delay <= base + 1.0


def test_retry_after_accepts_seconds_and_http_dates():
    assert parse_retry_after("30") == 30.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    assert 110 <= parse_retry_after(later) <= 121
    past = format_datetime(datetime.now(UTC) - timedelta(seconds=120), usegmt=True)
    assert parse_retry_after(past) == 0.0


def test_unreachable_google_is_transient(google_integration, settings):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    settings.GOOGLE_EMULATOR_HOST = f"127.0.0.1:{port}"  # nothing listens there
    sleeps: list[float] = []
    with pytest.raises(TransientGoogleError):
        get_customer(GoogleClient(google_integration, sleep=sleeps.append), attempts=2)
    assert len(sleeps) == 1


# -- revoked grant ---------------------------------------------------------------------------------------------
def test_revoked_grant_raises_auth_revoked_and_the_service_marks_reauthorization_required(
    google_integration, google_emulator
):
    google_emulator.control("POST", "/oauth/revoke", {})
    with pytest.raises(AuthRevoked) as caught:
        get_customer(GoogleClient(google_integration, sleep=lambda s: None))
    assert caught.value.reason == "invalid_grant"
    assert caught.value.token_fingerprint == token_fingerprint(google_integration.refresh_token)
    assert google_integration.refresh_token not in str(caught.value.__dict__)
    # The client only raises; the service decides.
    assert reload(google_integration).status == IntegrationStatus.ACTIVE
    assert integration_google_refused(integration=google_integration, error=caught.value)
    stored = reload(google_integration)
    assert stored.status == IntegrationStatus.REAUTH_REQUIRED
    assert "invalid_grant" in stored.status_detail
    assert stored.refresh_token == google_integration.refresh_token  # kept: nothing is deleted
    event = AuditEvent.unscoped.get(tenant=google_integration.tenant, action="integration.reauth_required")
    assert google_integration.refresh_token not in str(event.details)
    # Google was asked once for a new token, never retried.
    assert [r["method"] for r in google_emulator.requests()].count("oauth2.token") == 1


def test_the_google_client_imports_no_service():
    import chromeos.google.client as client_module

    source = Path(client_module.__file__).read_text()
    assert "from chromeos.services" not in source and "import chromeos.services" not in source


def test_persistent_401_after_refresh_is_auth_revoked(google_integration, google_emulator):
    google_emulator.add_fault(method=CUSTOMERS_GET, status=401, count=None)
    with pytest.raises(AuthRevoked) as caught:
        get_customer(GoogleClient(google_integration))
    assert integration_google_refused(integration=google_integration, error=caught.value)
    assert reload(google_integration).status == IntegrationStatus.REAUTH_REQUIRED


def test_revoked_grant_during_removal_keeps_the_removal_status(google_integration, google_emulator):
    GoogleIntegration.unscoped.filter(pk=google_integration.pk).update(status=IntegrationStatus.REMOVING)
    google_emulator.control("POST", "/oauth/revoke", {})
    with pytest.raises(AuthRevoked) as caught:
        get_customer(GoogleClient(reload(google_integration)))
    assert not integration_google_refused(integration=google_integration, error=caught.value)
    assert reload(google_integration).status == IntegrationStatus.REMOVING
    assert not AuditEvent.unscoped.filter(action="integration.reauth_required").exists()


def test_a_run_holding_the_old_grant_does_not_undo_a_fresh_reauthorization(
    google_integration, google_emulator
):
    """A sync started before the admin re-authorized fails on the old grant: the new one stays active."""
    running_client = GoogleClient(google_integration, sleep=lambda s: None)
    google_emulator.control("POST", "/oauth/revoke", {})  # the old grant dies...
    fresh = google_emulator.grant()  # ...and the admin consents again: a new refresh token is stored
    GoogleIntegration.unscoped.filter(pk=google_integration.pk).update(
        refresh_token=fresh["refresh_token"], access_token=fresh["access_token"]
    )
    google_emulator.control("POST", "/oauth/expire-access-tokens")
    with pytest.raises(AuthRevoked) as caught:
        get_customer(running_client)
    assert not integration_google_refused(integration=google_integration, error=caught.value)
    assert reload(google_integration).status == IntegrationStatus.ACTIVE
    assert not AuditEvent.unscoped.filter(action="integration.reauth_required").exists()
    # The stored grant works.
    assert get_customer(GoogleClient(reload(google_integration)))["id"]


def test_the_orjson_model_decodes_as_the_json_model_does() -> None:
    from googleapiclient.model import JsonModel

    ours, theirs = OrjsonModel(False), JsonModel(False)
    bodies = [
        b'{"chromeosdevices": [{"deviceId": "d1", "model": "Mod\xc3\xa8le"}], "nextPageToken": "t2"}',
        b'{"notes": "\\ud800 seul"}',  # a lone surrogate: orjson refuses it, json keeps it
        b'{"value": NaN}',  # not JSON, but Python's json reads it
        b"<html>proxy error</html>",  # not JSON at all: both hand back the text
        b"",
    ]
    for body in bodies:
        decoded, expected = ours.deserialize(body), theirs.deserialize(body)
        assert repr(decoded) == repr(expected), body  # repr: NaN != NaN
    assert ours.deserialize(bodies[0])["chromeosdevices"][0]["model"] == "Modèle"
