"""The schemas added for the console's Blueprint settings and for apps in managed guest sessions and kiosks:
served, validated (names, values, target keys, one namespace per batch) and resolved with inheritance."""

from __future__ import annotations

import json

import pytest
from googleapiclient.errors import HttpError

APP = {"app_id": "chrome:aapbdbdomjkkjkaonfhkkikfgjllcleb"}


def target(emulator, path: str, **keys: str) -> dict:
    key: dict = {"targetResource": f"orgunits/{emulator.state.org_unit(path).org_unit_id}"}
    if keys:
        key["additionalTargetKeys"] = keys
    return key


def modify(emulator, requests: list[dict]) -> None:
    policies = emulator.chromepolicy().customers().policies()
    policies.orgunits().batchModify(customer="customers/my_customer", body={"requests": requests}).execute()


def resolve(emulator, pattern: str, key: dict) -> list[dict]:
    policies = emulator.chromepolicy().customers().policies()
    body = {"policySchemaFilter": pattern, "policyTargetKey": key}
    return policies.resolve(customer="customers/my_customer", body=body).execute().get("resolvedPolicies", [])


def test_added_schemas_are_served(emulator):
    schemas = emulator.chromepolicy().customers().policySchemas()
    for name in (
        "chrome.devices.AutoUpdateSettings",
        "chrome.users.LockScreen",
        "chrome.devices.managedguest.IncognitoMode",
        "chrome.devices.managedguest.apps.InstallType",
        "chrome.devices.kiosk.apps.ForceInstall",
    ):
        found = schemas.get(name=f"customers/my_customer/policySchemas/{name}").execute()
        assert found["schemaName"] == name


def test_device_settings_set_and_inherited_by_sub_units(emulator):
    modify(
        emulator,
        [
            {
                "policyTargetKey": target(emulator, "/Paris"),
                "policyValue": {
                    "policySchema": "chrome.devices.AutoUpdateSettings",
                    "value": {"updateDisabled": True, "rebootAfterUpdate": False},
                },
                "updateMask": "updateDisabled,rebootAfterUpdate",
            }
        ],
    )
    child = next(u for u in emulator.state.org_units if u.path.startswith("/Paris/"))
    resolved = resolve(emulator, "chrome.devices.AutoUpdateSettings", target(emulator, child.path))
    assert resolved[0]["value"]["value"] == {"updateDisabled": True, "rebootAfterUpdate": False}
    assert resolved[0]["sourceKey"] == target(emulator, "/Paris")


def test_app_schemas_need_their_app_id_and_their_own_values(emulator):
    kiosk = {
        "policyTargetKey": target(emulator, "/Paris", **APP),
        "policyValue": {
            "policySchema": "chrome.devices.kiosk.apps.ForceInstall",
            "value": {"forceInstall": True},
        },
        "updateMask": "forceInstall",
    }
    modify(emulator, [kiosk])
    resolved = resolve(emulator, "chrome.devices.kiosk.apps.*", target(emulator, "/Paris", **APP))
    assert [r["value"] for r in resolved] == [
        {"policySchema": "chrome.devices.kiosk.apps.ForceInstall", "value": {"forceInstall": True}}
    ]
    # Managed guest sessions cannot "allow" an app: only NOT_INSTALLED, FORCED, FORCED_AND_PIN_TO_TOOLBAR.
    guest = {
        "policyTargetKey": target(emulator, "/Paris", **APP),
        "policyValue": {
            "policySchema": "chrome.devices.managedguest.apps.InstallType",
            "value": {"appInstallType": "ALLOWED"},
        },
        "updateMask": "appInstallType",
    }
    with pytest.raises(HttpError) as raised:
        modify(emulator, [guest])
    assert raised.value.status_code == 400
    without_app = dict(kiosk, policyTargetKey=target(emulator, "/Paris"))
    with pytest.raises(HttpError) as raised:
        modify(emulator, [without_app])
    assert "Missing additional target key" in json.loads(raised.value.content)["error"]["message"]


def test_managed_guest_and_user_namespaces_do_not_mix_in_one_batch(emulator):
    requests = [
        {
            "policyTargetKey": target(emulator, "/Paris"),
            "policyValue": {"policySchema": "chrome.users.LockScreen", "value": {"allowScreenLock": False}},
            "updateMask": "allowScreenLock",
        },
        {
            "policyTargetKey": target(emulator, "/Paris"),
            "policyValue": {
                "policySchema": "chrome.devices.managedguest.IncognitoMode",
                "value": {"incognitoModeAvailability": "INCOGNITO_MODE_AVAILABILITY_ENUM_UNAVAILABLE"},
            },
            "updateMask": "incognitoModeAvailability",
        },
    ]
    with pytest.raises(HttpError) as raised:
        modify(emulator, requests)
    assert "same namespace" in json.loads(raised.value.content)["error"]["message"]
    assert resolve(emulator, "chrome.users.LockScreen", target(emulator, "/Paris")) == []
