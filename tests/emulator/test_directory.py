"""Directory API through google-api-python-client: customers, org units, devices, users."""

from __future__ import annotations

import json

import pytest
from googleapiclient.errors import HttpError

from google_emulator.oauth import SCOPE_PREFIX
from google_emulator.testing import CONSOLE_SCOPES, USERS_SCOPE


def error_of(raised: pytest.ExceptionInfo[HttpError]) -> dict:
    return json.loads(raised.value.content)["error"]


def list_all(directory, **kwargs) -> list[dict]:
    request = directory.chromeosdevices().list(customerId="my_customer", **kwargs)
    devices = []
    while request is not None:
        page = request.execute()
        devices.extend(page.get("chromeosdevices", []))
        request = directory.chromeosdevices().list_next(request, page)
    return devices


def test_paths_come_out_as_googles(emulator):
    emulator.directory().chromeosdevices().list(customerId="my_customer", maxResults=1).execute()
    assert emulator.requests("directory.chromeosdevices.list")[-1]["path"] == (
        "/admin/directory/v1/customer/my_customer/devices/chromeos"
    )


def test_customer_by_alias_and_by_id(emulator):
    directory = emulator.directory()
    by_alias = directory.customers().get(customerKey="my_customer").execute()
    by_id = directory.customers().get(customerKey=by_alias["id"]).execute()
    assert by_alias == by_id
    with pytest.raises(HttpError) as raised:
        directory.customers().get(customerKey="C0someoneelse").execute()
    assert raised.value.status_code == 403


def test_non_admin_gets_forbidden(emulator):
    emulator.control("POST", "/admin", {"is_admin": False})
    with pytest.raises(HttpError) as raised:
        emulator.directory().customers().get(customerKey="my_customer").execute()
    error = error_of(raised)
    assert error["code"] == 403
    assert error["message"] == "Not Authorized to access this resource/api"
    assert error["errors"][0]["reason"] == "forbidden"


def test_org_units_list_types_and_get_with_accents(emulator):
    orgunits = emulator.directory().orgunits()
    everything = orgunits.list(customerId="my_customer", type="all").execute()["organizationUnits"]
    paths = {u["orgUnitPath"] for u in everything}
    assert "/Lyon/Équipe Réseau" in paths
    assert "/" not in paths
    children = orgunits.list(customerId="my_customer", orgUnitPath="/Lyon", type="children").execute()
    assert {u["orgUnitPath"] for u in children["organizationUnits"]} == {
        p for p in paths if p.startswith("/Lyon/") and p.count("/") == 2
    }
    with_parent = orgunits.list(
        customerId="my_customer", orgUnitPath="Lyon", type="allIncludingParent"
    ).execute()
    assert with_parent["organizationUnits"][0]["orgUnitPath"] == "/Lyon"
    unit = orgunits.get(customerId="my_customer", orgUnitPath="Lyon/Équipe Réseau").execute()
    assert unit["name"] == "Équipe Réseau"
    assert unit["orgUnitId"].startswith("id:")
    assert unit["parentOrgUnitPath"] == "/Lyon"
    by_id = orgunits.get(customerId="my_customer", orgUnitPath=unit["orgUnitId"]).execute()
    assert by_id == unit


def test_org_unit_list_without_children_omits_key(emulator):
    emulator.control("PUT", "/org-units", {"paths": ["/Solo"]})
    body = emulator.directory().orgunits().list(customerId="my_customer", orgUnitPath="/Solo").execute()
    assert "organizationUnits" not in body


def test_list_pages_through_everything_with_opaque_tokens(emulator):
    directory = emulator.directory()
    first = directory.chromeosdevices().list(customerId="my_customer", maxResults=7).execute()
    assert len(first["chromeosdevices"]) == 7
    token = first["nextPageToken"]
    assert not token.isdigit()
    devices = list_all(directory, maxResults=7, projection="FULL")
    assert len(devices) == len({d["deviceId"] for d in devices}) == len(emulator.state.devices)
    count = directory.customer().devices().chromeos().countChromeOsDevices(customerId="my_customer").execute()
    assert count == {"count": str(len(devices))}


def test_last_page_has_no_token(emulator):
    page = emulator.directory().chromeosdevices().list(customerId="my_customer", maxResults=300).execute()
    assert "nextPageToken" not in page
    assert page["kind"] == "admin#directory#chromeosdevices"


def test_max_results_over_300_is_googles_400(emulator):
    with pytest.raises(HttpError) as raised:
        emulator.directory().chromeosdevices().list(customerId="my_customer", maxResults=301).execute()
    error = error_of(raised)
    assert error["code"] == 400
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["message"] == "Invalid value '301'. Values must be within the range: [1, 300]"
    assert error["errors"][0]["reason"] == "invalid"


def test_bad_page_token_is_400(emulator):
    with pytest.raises(HttpError) as raised:
        emulator.directory().chromeosdevices().list(customerId="my_customer", pageToken="bm9wZQ").execute()
    assert raised.value.status_code == 400


def test_basic_projection_leaves_telemetry_out(emulator):
    directory = emulator.directory()
    basic = list_all(directory, projection="BASIC", maxResults=300)
    full = list_all(directory, projection="FULL", maxResults=300)
    assert not any("recentUsers" in d or "activeTimeRanges" in d for d in basic)
    assert any("recentUsers" in d for d in full)


def test_get_unknown_device_is_404(emulator):
    with pytest.raises(HttpError) as raised:
        emulator.directory().chromeosdevices().get(customerId="my_customer", deviceId="nope").execute()
    error = error_of(raised)
    assert (error["code"], error["status"], error["errors"][0]["reason"]) == (404, "NOT_FOUND", "notFound")


def test_org_unit_filter_with_and_without_children(emulator):
    directory = emulator.directory()
    state = emulator.state
    in_paris = [d.data for d in state.devices.values() if d.data["orgUnitPath"].startswith("/Paris")]
    exactly_paris = [d for d in in_paris if d["orgUnitPath"] == "/Paris"]
    assert {d["deviceId"] for d in list_all(directory, orgUnitPath="Paris")} == {
        d["deviceId"] for d in exactly_paris
    }
    subtree = list_all(directory, orgUnitPath="/Paris", includeChildOrgunits=True)
    assert {d["deviceId"] for d in subtree} == {d["deviceId"] for d in in_paris}


@pytest.mark.parametrize(
    ("query", "check"),
    [
        ("status:disabled", lambda d: d["status"] == "DISABLED"),
        ("status:provisioned", lambda d: d["status"] == "ACTIVE"),
        ("sync:..2000-01-01", lambda d: False),
        ("register:2000-01-01..", lambda d: "lastEnrollmentTime" in d),
    ],
)
def test_query_operators(emulator, query, check):
    expected = {d.device_id for d in emulator.state.devices.values() if check(d.data)}
    found = {d["deviceId"] for d in list_all(emulator.directory(), query=query, maxResults=300)}
    assert found == expected


def test_query_by_partial_serial_mac_user_and_free_text(emulator):
    directory = emulator.directory()
    device = next(
        d.data
        for d in emulator.state.devices.values()
        if "annotatedUser" in d.data and "macAddress" in d.data
    )
    by_serial = list_all(directory, query=f"id:{device['serialNumber'][1:5]}")
    assert device["deviceId"] in {d["deviceId"] for d in by_serial}
    by_mac = list_all(directory, query=f"wifi_mac:{device['macAddress']}")
    assert [d["deviceId"] for d in by_mac] == [device["deviceId"]]
    by_user = list_all(directory, query=f'user:"{device["annotatedUser"]}"')
    assert device["deviceId"] in {d["deviceId"] for d in by_user}
    free = list_all(directory, query=device["serialNumber"])
    assert device["deviceId"] in {d["deviceId"] for d in free}


def test_order_by_serial_descending(emulator):
    devices = list_all(emulator.directory(), orderBy="serialNumber", sortOrder="DESCENDING", maxResults=300)
    serials = [d["serialNumber"].casefold() for d in devices]
    assert serials == sorted(serials, reverse=True)


def test_fields_selector(emulator):
    page = (
        emulator.directory()
        .chromeosdevices()
        .list(
            customerId="my_customer",
            maxResults=5,
            fields="nextPageToken,chromeosdevices(deviceId,serialNumber)",
        )
        .execute()
    )
    assert set(page) == {"nextPageToken", "chromeosdevices"}
    assert all(set(d) == {"deviceId", "serialNumber"} for d in page["chromeosdevices"])
    with pytest.raises(HttpError) as raised:
        emulator.directory().chromeosdevices().list(
            customerId="my_customer", fields="chromeosdevices(nope)"
        ).execute()
    assert raised.value.status_code == 400


def test_missing_scope_is_insufficient_permissions(emulator):
    credentials = emulator.credentials(scopes=[SCOPE_PREFIX + "admin.directory.orgunit.readonly"])
    with pytest.raises(HttpError) as raised:
        emulator.directory(credentials).chromeosdevices().list(customerId="my_customer").execute()
    error = error_of(raised)
    assert error["code"] == 403
    assert error["message"] == "Request had insufficient authentication scopes."
    assert error["errors"][0]["reason"] == "insufficientPermissions"
    assert error["status"] == "PERMISSION_DENIED"


def test_unknown_query_parameter_is_400(emulator, requests_session=None):
    import requests

    token = emulator.grant()["access_token"]
    response = requests.get(
        f"{emulator.url}/admin/directory/v1/customer/my_customer/devices/chromeos",
        params={"bogus": "1"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert response.status_code == 400
    assert "bogus" in response.json()["error"]["message"]
    bad_enum = requests.get(
        f"{emulator.url}/admin/directory/v1/customer/my_customer/devices/chromeos",
        params={"projection": "EVERYTHING"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert bad_enum.status_code == 400


def test_no_credentials_is_401(emulator):
    import requests

    response = requests.get(f"{emulator.url}/admin/directory/v1/customers/my_customer", timeout=5)
    assert response.status_code == 401
    assert response.json()["error"]["status"] == "UNAUTHENTICATED"
    bad = requests.get(
        f"{emulator.url}/admin/directory/v1/customers/my_customer",
        headers={"Authorization": "Bearer x"},
        timeout=5,
    )
    assert bad.json()["error"]["errors"][0]["reason"] == "authError"


def test_users_list_pages(emulator):
    users = emulator.directory(emulator.credentials([*CONSOLE_SCOPES, USERS_SCOPE])).users()
    request = users.list(customer="my_customer", maxResults=10)
    seen = []
    while request is not None:
        page = request.execute()
        seen.extend(u["primaryEmail"] for u in page.get("users", []))
        request = users.list_next(request, page)
    assert len(seen) == len(emulator.state.users)
    assert seen == sorted(seen)
