"""Every response of every method the emulator serves conforms to the discovery document's schema."""

from __future__ import annotations

import pytest

from google_emulator import schemas
from google_emulator.api import HANDLERS
from google_emulator.testing import CONSOLE_SCOPES, USERS_SCOPE

pytestmark = pytest.mark.google_emulator(devices=400, seed=11)

APP = {"app_id": "chrome:aapbdbdomjkkjkaonfhkkikfgjllcleb"}


def check(method_id: str, body) -> None:
    problems = schemas.response_errors(method_id, body)
    assert not problems, problems[:5]


def target(emulator, path: str, **keys) -> dict:
    key = {"targetResource": f"orgunits/{emulator.state.org_unit(path).org_unit_id}"}
    if keys:
        key["additionalTargetKeys"] = keys
    return key


def exercise_directory(emulator) -> set[str]:
    directory = emulator.directory(emulator.credentials([*CONSOLE_SCOPES, USERS_SCOPE]))
    devices = directory.chromeosdevices()
    chromeos = directory.customer().devices().chromeos()
    check("directory.customers.get", directory.customers().get(customerKey="my_customer").execute())
    for kind in ("all", "children", "allIncludingParent"):
        check(
            "directory.orgunits.list",
            directory.orgunits().list(customerId="my_customer", type=kind).execute(),
        )
    check(
        "directory.orgunits.get",
        directory.orgunits().get(customerId="my_customer", orgUnitPath="Paris").execute(),
    )

    for projection in ("BASIC", "FULL"):
        request = devices.list(customerId="my_customer", projection=projection, maxResults=300)
        while request is not None:
            page = request.execute()
            check("directory.chromeosdevices.list", page)
            request = devices.list_next(request, page)
    check(
        "directory.chromeosdevices.list",
        devices.list(
            customerId="my_customer", fields="nextPageToken,chromeosdevices(deviceId,serialNumber)"
        ).execute(),
    )
    check(
        "directory.chromeosdevices.list",
        devices.list(customerId="my_customer", query="id:zzzzzzzz").execute(),
    )
    check(
        "admin.customer.devices.chromeos.countChromeOsDevices",
        chromeos.countChromeOsDevices(
            customerId="my_customer", orgUnitPath="/Paris", includeChildOrgunits=True
        ).execute(),
    )

    state = emulator.state
    active = [d.device_id for d in state.devices.values() if d.data["status"] == "ACTIVE"]
    device_id = active[0]
    check(
        "directory.chromeosdevices.get", devices.get(customerId="my_customer", deviceId=device_id).execute()
    )
    check(
        "directory.chromeosdevices.patch",
        devices.patch(customerId="my_customer", deviceId=device_id, body={"notes": "Écran 🖥️"}).execute(),
    )
    check(
        "directory.chromeosdevices.update",
        devices.update(
            customerId="my_customer", deviceId=device_id, projection="BASIC", body={"annotatedUser": "Zoé"}
        ).execute(),
    )
    check(
        "directory.chromeosdevices.action",
        devices.action(customerId="my_customer", resourceId=active[1], body={"action": "disable"}).execute(),
    )
    check(
        "directory.chromeosdevices.moveDevicesToOu",
        devices.moveDevicesToOu(
            customerId="my_customer", orgUnitPath="/Lyon", body={"deviceIds": active[2:4]}
        ).execute(),
    )
    check(
        "admin.customer.devices.chromeos.batchChangeStatus",
        chromeos.batchChangeStatus(
            customerId="my_customer",
            body={
                "deviceIds": [*active[4:6], "unknown-device"],
                "changeChromeOsDeviceStatusAction": "CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_DEPROVISION",
                "deprovisionReason": "DEPROVISION_REASON_RETIRING_DEVICE",
            },
        ).execute(),
    )
    issued = chromeos.issueCommand(
        customerId="my_customer",
        deviceId=device_id,
        body={"commandType": "SET_VOLUME", "payload": '{"volume": 50}'},
    ).execute()
    check("admin.customer.devices.chromeos.issueCommand", issued)
    for _ in range(4):  # every state, through to the result
        command = (
            chromeos.commands()
            .get(customerId="my_customer", deviceId=device_id, commandId=issued["commandId"])
            .execute()
        )
        check("admin.customer.devices.chromeos.commands.get", command)
        emulator.control("POST", "/clock/advance", {"seconds": 1})
    assert command["state"] == "EXECUTED_BY_CLIENT"

    check("directory.users.list", directory.users().list(customer="my_customer", maxResults=5).execute())
    return {
        "directory.customers.get",
        "directory.orgunits.list",
        "directory.orgunits.get",
        "directory.chromeosdevices.list",
        "admin.customer.devices.chromeos.countChromeOsDevices",
        "directory.chromeosdevices.get",
        "directory.chromeosdevices.patch",
        "directory.chromeosdevices.update",
        "directory.chromeosdevices.action",
        "directory.chromeosdevices.moveDevicesToOu",
        "admin.customer.devices.chromeos.batchChangeStatus",
        "admin.customer.devices.chromeos.issueCommand",
        "admin.customer.devices.chromeos.commands.get",
        "directory.users.list",
    }


def exercise_policy(emulator) -> set[str]:
    customers = emulator.chromepolicy().customers()
    check(
        "chromepolicy.customers.policySchemas.list",
        customers.policySchemas().list(parent="customers/my_customer", pageSize=3).execute(),
    )
    check(
        "chromepolicy.customers.policySchemas.get",
        customers.policySchemas()
        .get(name="customers/my_customer/policySchemas/chrome.devices.SignInRestriction")
        .execute(),
    )
    modify = (
        customers.policies()
        .orgunits()
        .batchModify(
            customer="customers/my_customer",
            body={
                "requests": [
                    {
                        "policyTargetKey": target(emulator, "/Paris", **APP),
                        "policyValue": {
                            "policySchema": "chrome.users.apps.InstallType",
                            "value": {"appInstallType": "FORCED"},
                        },
                        "updateMask": "appInstallType",
                    }
                ]
            },
        )
    )
    check("chromepolicy.customers.policies.orgunits.batchModify", modify.execute())
    resolved = customers.policies().resolve(
        customer="customers/my_customer",
        body={
            "policySchemaFilter": "chrome.users.apps.*",
            "policyTargetKey": target(emulator, "/Paris/Ventes et Marketing"),
        },
    )
    check("chromepolicy.customers.policies.resolve", resolved.execute())
    inherit = (
        customers.policies()
        .orgunits()
        .batchInherit(
            customer="customers/my_customer",
            body={
                "requests": [
                    {
                        "policyTargetKey": target(emulator, "/Paris", **APP),
                        "policySchema": "chrome.users.apps.InstallType",
                    }
                ]
            },
        )
    )
    check("chromepolicy.customers.policies.orgunits.batchInherit", inherit.execute())
    return {
        "chromepolicy.customers.policySchemas.list",
        "chromepolicy.customers.policySchemas.get",
        "chromepolicy.customers.policies.orgunits.batchModify",
        "chromepolicy.customers.policies.resolve",
        "chromepolicy.customers.policies.orgunits.batchInherit",
    }


def test_every_served_method_conforms_to_its_discovery_schema(emulator):
    covered = exercise_directory(emulator) | exercise_policy(emulator)
    assert covered == set(HANDLERS), "a served method is missing from the conformance test"


def test_converter_is_strict():
    assert schemas.response_errors("directory.customers.get", {"id": "C0", "madeUp": 1})
    assert schemas.response_errors("admin.customer.devices.chromeos.countChromeOsDevices", {"count": 3})
    assert schemas.response_errors("directory.chromeosdevices.get", {"deviceLicenseType": "shiny"})
    assert not schemas.response_errors("admin.customer.devices.chromeos.countChromeOsDevices", {"count": "3"})
