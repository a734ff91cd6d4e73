"""Writing to devices: annotations, moves, status changes and remote commands."""

from __future__ import annotations

import json

import pytest
from googleapiclient.errors import HttpError


def active_ids(emulator, count: int) -> list[str]:
    return [d.device_id for d in emulator.state.devices.values() if d.data["status"] == "ACTIVE"][:count]


def test_patch_annotations_keeps_other_fields_and_changes_etag(emulator):
    devices = emulator.directory().chromeosdevices()
    device_id = active_ids(emulator, 1)[0]
    before = devices.get(customerId="my_customer", deviceId=device_id).execute()
    after = devices.patch(
        customerId="my_customer",
        deviceId=device_id,
        body={"annotatedUser": "Zoé Lefèvre", "notes": "Prêt 📚"},
    ).execute()
    assert after["annotatedUser"] == "Zoé Lefèvre"
    assert after["notes"] == "Prêt 📚"
    assert after["serialNumber"] == before["serialNumber"]
    assert after["etag"] != before["etag"]


def test_annotation_too_long_is_400(emulator):
    device_id = active_ids(emulator, 1)[0]
    with pytest.raises(HttpError) as raised:
        emulator.directory().chromeosdevices().update(
            customerId="my_customer", deviceId=device_id, body={"annotatedUser": "x" * 101}
        ).execute()
    assert raised.value.status_code == 400


def test_move_devices_to_ou(emulator):
    devices = emulator.directory().chromeosdevices()
    ids = active_ids(emulator, 3)
    assert devices.moveDevicesToOu(
        customerId="my_customer", orgUnitPath="/Lyon/Équipe Réseau", body={"deviceIds": ids}
    ).execute() in ("", b"", None)
    unit = emulator.state.org_unit("/Lyon/Équipe Réseau")
    for device_id in ids:
        device = devices.get(customerId="my_customer", deviceId=device_id).execute()
        assert (device["orgUnitPath"], device["orgUnitId"]) == (unit.path, unit.org_unit_id)
    with pytest.raises(HttpError) as raised:
        devices.moveDevicesToOu(
            customerId="my_customer", orgUnitPath="/Nowhere", body={"deviceIds": ids}
        ).execute()
    assert raised.value.status_code == 400
    with pytest.raises(HttpError):
        devices.moveDevicesToOu(
            customerId="my_customer", orgUnitPath="/Lyon", body={"deviceIds": ids * 17}
        ).execute()


def test_batch_change_status_per_device_results(emulator):
    chromeos = emulator.directory().customer().devices().chromeos()
    ids = active_ids(emulator, 2)

    def change(action: str, device_ids: list[str], **extra) -> list[dict]:
        body = {"deviceIds": device_ids, "changeChromeOsDeviceStatusAction": action, **extra}
        return chromeos.batchChangeStatus(customerId="my_customer", body=body).execute()[
            "changeChromeOsDeviceStatusResults"
        ]

    disabled = change("CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_DISABLE", [*ids, "missing"])
    assert [r.get("response") for r in disabled[:2]] == [{}, {}]
    assert disabled[2]["error"]["code"] == 5
    again = change("CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_DISABLE", ids[:1])
    assert again[0]["error"]["code"] == 9  # already disabled
    emulator.control("POST", "/licenses", {"available": 1})
    reenabled = change("CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_REENABLE", ids)
    assert "response" in reenabled[0]
    assert "No available licenses" in reenabled[1]["error"]["message"]
    with pytest.raises(HttpError) as raised:
        change("CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_DEPROVISION", ids)  # no reason
    assert raised.value.status_code == 400
    deprovisioned = change(
        "CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_DEPROVISION",
        ids[:1],
        deprovisionReason="DEPROVISION_REASON_REPAIR_CENTER",
    )
    assert deprovisioned[0]["response"] == {}
    device = emulator.state.devices[ids[0]].data
    assert (device["status"], device["deprovisionReason"]) == (
        "DEPROVISIONED",
        "DEPROVISION_REASON_REPAIR_CENTER",
    )
    with pytest.raises(HttpError):
        change("CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_DISABLE", ids * 26)  # over 50


def test_legacy_action_disable(emulator):
    device_id = active_ids(emulator, 1)[0]
    emulator.directory().chromeosdevices().action(
        customerId="my_customer", resourceId=device_id, body={"action": "disable"}
    ).execute()
    assert emulator.state.devices[device_id].data["status"] == "DISABLED"


def issue(emulator, device_id: str, command_type: str = "REBOOT") -> tuple[object, str]:
    chromeos = emulator.directory().customer().devices().chromeos()
    issued = chromeos.issueCommand(
        customerId="my_customer", deviceId=device_id, body={"commandType": command_type}
    ).execute()
    assert issued["commandId"].isdigit()
    return chromeos, issued["commandId"]


def command_state(chromeos, device_id: str, command_id: str) -> dict:
    return (
        chromeos.commands().get(customerId="my_customer", deviceId=device_id, commandId=command_id).execute()
    )


def test_command_moves_through_states_with_the_clock(emulator):
    # Long steps, moved by the clock: a loaded machine's own delays cannot skip a state.
    emulator.control("POST", "/commands/behaviour", {"step_seconds": 60})
    device_id = active_ids(emulator, 1)[0]
    chromeos, command_id = issue(emulator, device_id)
    seen = []
    for _ in range(4):
        seen.append(command_state(chromeos, device_id, command_id)["state"])
        emulator.control("POST", "/clock/advance", {"seconds": 60})
    assert seen == ["PENDING", "SENT_TO_CLIENT", "ACKED_BY_CLIENT", "EXECUTED_BY_CLIENT"]
    final = command_state(chromeos, device_id, command_id)
    assert final["commandResult"]["result"] == "SUCCESS"


def test_command_outcomes_expired_and_failure_and_forced_state(emulator):
    device_id = active_ids(emulator, 1)[0]
    emulator.control("POST", "/commands/behaviour", {"outcome": "EXPIRED"})
    chromeos, expired = issue(emulator, device_id)
    emulator.control("POST", "/commands/behaviour", {"outcome": "FAILURE", "step_seconds": 0})
    _, failed = issue(emulator, device_id, "WIPE_USERS")
    emulator.control("POST", "/clock/advance", {"seconds": 5})
    assert command_state(chromeos, device_id, expired)["state"] == "EXPIRED"
    failure = command_state(chromeos, device_id, failed)
    assert (failure["state"], failure["commandResult"]["result"]) == ("EXECUTED_BY_CLIENT", "FAILURE")
    emulator.control("POST", "/commands/set", {"command_id": failed, "state": "CANCELLED"})
    assert command_state(chromeos, device_id, failed)["state"] == "CANCELLED"


def test_command_errors(emulator):
    chromeos = emulator.directory().customer().devices().chromeos()
    with pytest.raises(HttpError) as raised:
        chromeos.issueCommand(
            customerId="my_customer", deviceId="nope", body={"commandType": "REBOOT"}
        ).execute()
    assert raised.value.status_code == 404
    device_id = active_ids(emulator, 1)[0]
    with pytest.raises(HttpError):
        chromeos.issueCommand(
            customerId="my_customer", deviceId=device_id, body={"commandType": "DANCE"}
        ).execute()
    with pytest.raises(HttpError) as raised:
        command_state(chromeos, device_id, "123")
    assert json.loads(raised.value.content)["error"]["code"] == 404
