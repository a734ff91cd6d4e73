"""Chrome Policy API: apps and settings applied to org units, inherited down the tree, read back."""

from __future__ import annotations

import json

import pytest
from googleapiclient.errors import HttpError

from google_emulator.oauth import SCOPE_PREFIX

CUSTOMER = "customers/my_customer"
APP = "chrome:aapbdbdomjkkjkaonfhkkikfgjllcleb"


def target(emulator, path: str, app_id: str | None = None) -> dict:
    key = {"targetResource": f"orgunits/{emulator.state.org_unit(path).org_unit_id}"}
    if app_id:
        key["additionalTargetKeys"] = {"app_id": app_id}
    return key


def modify(emulator, path: str, schema: str, value: dict, app_id: str | None = None, mask: str | None = None):
    request = {
        "policyTargetKey": target(emulator, path, app_id),
        "policyValue": {"policySchema": schema, "value": value},
        "updateMask": mask or ",".join(value),
    }
    policies = emulator.chromepolicy().customers().policies()
    return policies.orgunits().batchModify(customer=CUSTOMER, body={"requests": [request]}).execute()


def resolve(emulator, path: str, schema_filter: str, app_id: str | None = None, **extra) -> dict:
    body = {"policySchemaFilter": schema_filter, "policyTargetKey": target(emulator, path, app_id), **extra}
    return emulator.chromepolicy().customers().policies().resolve(customer=CUSTOMER, body=body).execute()


def test_app_forced_on_parent_is_inherited_by_child(emulator):
    assert modify(emulator, "/Lyon", "chrome.users.apps.InstallType", {"appInstallType": "FORCED"}, APP) == {}
    resolved = resolve(emulator, "/Lyon/Équipe Réseau", "chrome.users.apps.*")["resolvedPolicies"]
    assert resolved == [
        {
            "targetKey": target(emulator, "/Lyon/Équipe Réseau", APP),
            "value": {"policySchema": "chrome.users.apps.InstallType", "value": {"appInstallType": "FORCED"}},
            "sourceKey": target(emulator, "/Lyon", APP),
        }
    ]


def test_child_override_then_inherit_again(emulator):
    modify(emulator, "/Lyon", "chrome.users.apps.InstallType", {"appInstallType": "FORCED"}, APP)
    modify(
        emulator, "/Lyon/Équipe Réseau", "chrome.users.apps.InstallType", {"appInstallType": "BLOCKED"}, APP
    )
    child = resolve(emulator, "/Lyon/Équipe Réseau", "chrome.users.apps.InstallType", APP)[
        "resolvedPolicies"
    ][0]
    assert child["value"]["value"] == {"appInstallType": "BLOCKED"}
    assert child["sourceKey"] == target(emulator, "/Lyon/Équipe Réseau", APP)
    policies = emulator.chromepolicy().customers().policies()
    policies.orgunits().batchInherit(
        customer=CUSTOMER,
        body={
            "requests": [
                {
                    "policyTargetKey": target(emulator, "/Lyon/Équipe Réseau", APP),
                    "policySchema": "chrome.users.apps.InstallType",
                }
            ]
        },
    ).execute()
    child = resolve(emulator, "/Lyon/Équipe Réseau", "chrome.users.apps.InstallType", APP)[
        "resolvedPolicies"
    ][0]
    assert child["value"]["value"] == {"appInstallType": "FORCED"}


def test_android_app_and_device_settings(emulator):
    modify(
        emulator,
        "/Paris",
        "chrome.users.apps.InstallType",
        {"appInstallType": "ALLOWED"},
        "android:com.example.app",
    )
    modify(emulator, "/Paris", "chrome.devices.GuestMode", {"guestModeEnabled": False})
    modify(
        emulator,
        "/Paris",
        "chrome.devices.SignInRestriction",
        {
            "deviceAllowNewUsers": "DEVICE_ALLOW_NEW_USERS_ENUM_RESTRICTED_LIST",
            "userAllowlist": ["*@example.com"],
        },
    )
    devices = resolve(emulator, "/Paris/Ventes et Marketing", "chrome.devices.*")["resolvedPolicies"]
    assert {p["value"]["policySchema"] for p in devices} == {
        "chrome.devices.GuestMode",
        "chrome.devices.SignInRestriction",
    }
    apps = resolve(emulator, "/Paris", "chrome.users.apps.InstallType", "android:com.example.app")
    assert apps["resolvedPolicies"][0]["value"]["value"] == {"appInstallType": "ALLOWED"}


def test_nothing_set_resolves_to_empty_response(emulator):
    assert resolve(emulator, "/Paris", "chrome.users.apps.*") == {}


def test_resolve_pages(emulator):
    for index in range(5):
        modify(
            emulator,
            "/Paris",
            "chrome.users.apps.InstallType",
            {"appInstallType": "FORCED"},
            f"chrome:app{index}",
        )
    first = resolve(emulator, "/Paris", "chrome.users.apps.*", pageSize=2)
    assert len(first["resolvedPolicies"]) == 2
    second = resolve(emulator, "/Paris", "chrome.users.apps.*", pageSize=2, pageToken=first["nextPageToken"])
    assert len(second["resolvedPolicies"]) == 2
    with pytest.raises(HttpError) as raised:
        resolve(emulator, "/Paris", "chrome.users.apps.*", pageSize=1001)
    assert raised.value.status_code == 400


@pytest.mark.parametrize(
    ("schema", "value", "app_id", "mask"),
    [
        ("chrome.users.apps.InstallType", {"appInstallType": "SOMETIMES"}, APP, None),  # bad enum
        ("chrome.users.apps.InstallType", {"appInstallType": "FORCED"}, None, None),  # app_id missing
        ("chrome.users.apps.InstallType", {"appInstallType": "FORCED"}, "firefox:x", None),  # bad app id
        ("chrome.devices.GuestMode", {"guestModeEnabled": "no"}, None, None),  # wrong type
        ("chrome.devices.GuestMode", {"guestMode": True}, None, "guestModeEnabled"),  # unknown field
        ("chrome.devices.GuestMode", {"guestModeEnabled": True}, None, "nope"),  # bad mask
        ("chrome.devices.Imaginary", {"x": True}, None, None),  # unknown schema
    ],
)
def test_validation_errors_are_400_invalid_argument(emulator, schema, value, app_id, mask):
    with pytest.raises(HttpError) as raised:
        modify(emulator, "/Paris", schema, value, app_id, mask)
    error = json.loads(raised.value.content)["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert emulator.state.policies == {}  # nothing written


def test_mixed_namespaces_in_one_batch_are_rejected(emulator):
    requests = [
        {
            "policyTargetKey": target(emulator, "/Paris"),
            "policyValue": {"policySchema": "chrome.devices.GuestMode", "value": {"guestModeEnabled": True}},
            "updateMask": "guestModeEnabled",
        },
        {
            "policyTargetKey": target(emulator, "/Paris"),
            "policyValue": {
                "policySchema": "chrome.users.ShowLogoutButton",
                "value": {"showLogoutButtonInTray": True},
            },
            "updateMask": "showLogoutButtonInTray",
        },
    ]
    with pytest.raises(HttpError) as raised:
        emulator.chromepolicy().customers().policies().orgunits().batchModify(
            customer=CUSTOMER, body={"requests": requests}
        ).execute()
    assert raised.value.status_code == 400


def test_root_cannot_inherit(emulator):
    with pytest.raises(HttpError):
        emulator.chromepolicy().customers().policies().orgunits().batchInherit(
            customer=CUSTOMER,
            body={
                "requests": [
                    {"policyTargetKey": target(emulator, "/"), "policySchema": "chrome.devices.GuestMode"}
                ]
            },
        ).execute()


def test_readonly_scope_can_resolve_but_not_modify(emulator):
    credentials = emulator.credentials(scopes=[SCOPE_PREFIX + "chrome.management.policy.readonly"])
    policies = emulator.chromepolicy(credentials).customers().policies()
    body = {"policySchemaFilter": "chrome.devices.*", "policyTargetKey": target(emulator, "/Paris")}
    policies.resolve(customer=CUSTOMER, body=body).execute()
    with pytest.raises(HttpError) as raised:
        policies.orgunits().batchModify(customer=CUSTOMER, body={"requests": []}).execute()
    assert raised.value.status_code == 403


def test_policy_schemas_list_and_get(emulator):
    schemas = emulator.chromepolicy().customers().policySchemas()
    apps = schemas.list(parent=CUSTOMER, filter="name=chrome.users.apps").execute()["policySchemas"]
    assert {s["schemaName"] for s in apps} == {
        "chrome.users.apps.InstallType",
        "chrome.users.apps.ManagedConfiguration",
    }
    install = schemas.get(name=f"{CUSTOMER}/policySchemas/chrome.users.apps.InstallType").execute()
    assert install["additionalTargetKeyNames"][0]["key"] == "app_id"
    enum_values = [v["name"] for v in install["definition"]["enumType"][0]["value"]]
    assert enum_values == ["BLOCKED", "ALLOWED", "FORCED", "FORCED_AND_PIN_TO_TOOLBAR"]
    with pytest.raises(HttpError) as raised:
        schemas.get(name=f"{CUSTOMER}/policySchemas/chrome.nothing.Here").execute()
    assert raised.value.status_code == 404
