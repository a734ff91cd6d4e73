"""Fault injection: errors, Retry-After, slowness, failures and changes mid-listing, the request log."""

from __future__ import annotations

import json
import time

import pytest
import requests
from googleapiclient.errors import HttpError

LIST = "directory.chromeosdevices.list"


def list_page(emulator, **kwargs):
    return emulator.directory().chromeosdevices().list(customerId="my_customer", **kwargs)


@pytest.mark.parametrize(
    ("status", "reason", "google_status"),
    [
        (429, "rateLimitExceeded", "RESOURCE_EXHAUSTED"),
        (500, "backendError", "INTERNAL"),
        (503, "backendError", "UNAVAILABLE"),
        (403, "userRateLimitExceeded", "PERMISSION_DENIED"),
        (403, "quotaExceeded", "PERMISSION_DENIED"),
    ],
)
def test_injected_errors_have_googles_shape(emulator, status, reason, google_status):
    emulator.add_fault(method=LIST, status=status, reason=reason if status == 403 else None)
    with pytest.raises(HttpError) as raised:
        list_page(emulator).execute()
    error = json.loads(raised.value.content)["error"]
    assert (error["code"], error["status"], error["errors"][0]["reason"]) == (status, google_status, reason)
    assert error["errors"][0]["domain"] == "global"
    list_page(emulator).execute()  # count=1: the next call succeeds


def test_retry_after_header_and_client_retries(emulator):
    emulator.add_fault(method=LIST, status=503, retry_after=0, count=2)
    token = emulator.grant()["access_token"]
    raw = requests.get(
        f"{emulator.url}/admin/directory/v1/customer/my_customer/devices/chromeos",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert (raw.status_code, raw.headers["Retry-After"]) == (503, "0")
    page = list_page(emulator).execute(num_retries=2)  # the second fault, then success
    assert page["chromeosdevices"]
    assert [r["status"] for r in emulator.requests(LIST)] == [503, 503, 200]


def test_wildcard_fault_and_count(emulator):
    emulator.add_fault(method="*", status=500, count=None)
    directory = emulator.directory()
    with pytest.raises(HttpError):
        directory.customers().get(customerKey="my_customer").execute()
    with pytest.raises(HttpError):
        directory.orgunits().list(customerId="my_customer").execute()
    emulator.control("DELETE", "/faults")
    directory.customers().get(customerKey="my_customer").execute()


def test_slow_responses(emulator):
    emulator.add_fault(method="directory.customers.get", delay_ms=300)
    directory = emulator.directory()
    directory.customers().get(customerKey="my_customer").execute()  # warms the token
    emulator.add_fault(method="directory.customers.get", delay_ms=300)
    started = time.perf_counter()
    directory.customers().get(customerKey="my_customer").execute()
    assert time.perf_counter() - started >= 0.3


def test_error_at_page_k_of_a_listing(emulator):
    emulator.add_fault(method=LIST, page=3, status=500)
    request = list_page(emulator, maxResults=10)
    devices = emulator.directory().chromeosdevices()
    pages = 0
    with pytest.raises(HttpError) as raised:
        while request is not None:
            page = request.execute()
            pages += 1
            request = devices.list_next(request, page)
    assert pages == 2
    assert raised.value.status_code == 500
    assert emulator.requests(LIST)[-1]["params"]["pageToken"]


def test_listing_that_changes_between_pages_misses_new_and_deleted_devices(emulator):
    total = len(emulator.state.devices)
    emulator.add_fault(method=LIST, page=1, mutation={"op": "delete_devices", "count": 5, "seed": 3})
    emulator.add_fault(method=LIST, page=2, mutation={"op": "add_devices", "count": 4})
    devices = emulator.directory().chromeosdevices()
    request = list_page(emulator, maxResults=10)
    seen = []
    while request is not None:
        page = request.execute()
        seen.extend(d["deviceId"] for d in page.get("chromeosdevices", []))
        request = devices.list_next(request, page)
    count = (
        emulator.directory()
        .customer()
        .devices()
        .chromeos()
        .countChromeOsDevices(customerId="my_customer")
        .execute()
    )
    assert int(count["count"]) == total - 5 + 4
    assert len(seen) < int(count["count"])  # the app must notice: a listing is not the truth


def test_expired_page_token_is_400(emulator):
    first = list_page(emulator, maxResults=10).execute()
    emulator.control("POST", "/page-tokens/expire")
    with pytest.raises(HttpError) as raised:
        list_page(emulator, maxResults=10, pageToken=first["nextPageToken"]).execute()
    assert raised.value.status_code == 400


def test_page_token_with_other_query_is_400(emulator):
    first = list_page(emulator, maxResults=10).execute()
    with pytest.raises(HttpError):
        list_page(emulator, maxResults=10, orderBy="status", pageToken=first["nextPageToken"]).execute()


def test_token_endpoint_faults_are_retried_by_google_auth(emulator):
    credentials = emulator.credentials()
    emulator.add_fault(method="oauth2.token", status=503)
    emulator.directory(credentials).customers().get(customerKey="my_customer").execute()
    assert [r["status"] for r in emulator.requests("oauth2.token")] == [503, 200]


def test_request_log_redacts_secrets(emulator):
    credentials = emulator.credentials()
    emulator.directory(credentials).customers().get(customerKey="my_customer").execute()
    token_call = emulator.requests("oauth2.token")[0]
    assert token_call["body"]["client_secret"] == "<redacted>"
    assert token_call["body"]["refresh_token"] == "<redacted>"
    api_call = emulator.requests("directory.customers.get")[0]
    assert (api_call["http_method"], api_call["status"]) == ("GET", 200)
