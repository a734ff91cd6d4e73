"""Admin SDK Directory API v1: customers, org units, ChromeOS devices and their commands, users."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google_emulator import device_query, errors
from google_emulator.api import ApiCall, RawJson, api_method
from google_emulator.discovery import load_document
from google_emulator.model import WRITABLE_DEVICE_FIELDS, Command, DeviceRecord, compact_json, make_etag
from google_emulator.mutations import move_device

DEFAULT_DEVICE_PROJECTION = "FULL"
MAX_BATCH_DEVICES = 50


def rfc3339(epoch_seconds: float) -> str:
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# -- customers ---------------------------------------------------------------------------------
@api_method("directory.customers.get")
def customers_get(call: ApiCall) -> dict[str, Any]:
    call.require_my_customer(call.param("customerKey"))
    customer = dict(call.state.customer)
    customer["etag"] = make_etag("customer", customer["id"])
    return customer


# -- org units ---------------------------------------------------------------------------------
@api_method("directory.orgunits.list")
def orgunits_list(call: ApiCall) -> dict[str, Any]:
    call.require_my_customer(call.param("customerId"))
    state = call.state
    with state.lock:
        parent = state.org_unit(call.param("orgUnitPath") or "/")
        if parent is None:
            raise errors.invalid("Invalid Input: INVALID_OU_ID", "orgUnitPath")
        kind = call.param("type") or "children"
        if kind == "children":
            units = state.org_units.children(parent)
        else:
            units = state.org_units.descendants(parent)
            if kind == "allIncludingParent":
                units = [parent, *units]
        body: dict[str, Any] = {
            "kind": "admin#directory#orgUnits",
            "etag": make_etag("orgunits", state.changes),
        }
        if units:  # Google leaves the key out when there are none
            body["organizationUnits"] = [u.resource() for u in units]
        return body


@api_method("directory.orgunits.get")
def orgunits_get(call: ApiCall) -> dict[str, Any]:
    call.require_my_customer(call.param("customerId"))
    with call.state.lock:
        unit = call.state.org_unit(call.param("orgUnitPath"))
        if unit is None:
            raise errors.not_found("Org unit not found")
        return unit.resource()


# -- devices: reading --------------------------------------------------------------------------
def _device(call: ApiCall, device_id: str) -> DeviceRecord:
    record = call.state.devices.get(device_id)
    if record is None:
        raise errors.not_found()
    return record


def _device_criteria(call: ApiCall, org_unit_path: str | None, include_children: bool) -> tuple[Any, Any]:
    """The org unit paths (None: every unit) and the compiled query (None: no query) of a list or count."""
    state = call.state
    paths: set[str] | None = None
    if include_children and not org_unit_path:
        raise errors.invalid(
            "Invalid Input: includeChildOrgunits requires orgUnitPath", "includeChildOrgunits"
        )
    if org_unit_path:
        unit = state.org_unit(org_unit_path)
        if unit is None:
            raise errors.invalid("Invalid Input: INVALID_OU_ID", "orgUnitPath")
        paths = state.org_units.subtree_paths(unit) if include_children else {unit.path}
    return paths, device_query.compile_query(call.param("query") or call.param("filter"))


def _matching_records(call: ApiCall) -> Any:
    """The devices a list or count selects, or None for every device. Most devices exist only as a seed
    (device_store.py): "every device" needs none generated, an org unit filter reads each seeded device's unit
    from a compact array, only a query generates every device."""
    paths, query = _device_criteria(call, call.param("orgUnitPath"), bool(call.param("includeChildOrgunits")))
    if paths is None and query is None:
        return None
    devices = call.state.devices
    records = devices.values() if paths is None else devices.in_org_units(paths)
    return records if query is None else (r for r in records if query(r.data))


@api_method("directory.chromeosdevices.list")
def chromeosdevices_list(call: ApiCall) -> RawJson:
    call.require_my_customer(call.param("customerId"))
    state = call.state
    page_size = call.param("maxResults", 100)
    projection = call.param("projection") or DEFAULT_DEVICE_PROJECTION
    order_by = call.param("orderBy")
    descending = call.param("sortOrder") == "DESCENDING"
    query_key = repr(
        [
            call.param(k)
            for k in ("customerId", "orgUnitPath", "includeChildOrgunits", "query", "orderBy", "sortOrder")
        ]
    )

    def matching_ids() -> list[str]:
        with state.lock:
            selected = _matching_records(call)
            if selected is None and not order_by:
                return list(state.devices)  # every device, in order: the ids alone, nothing generated
            records = list(state.devices.values() if selected is None else selected)
        if order_by:
            field = device_query.ORDER_FIELDS[order_by]
            # Devices without the field sort last, as Google does for empty annotations.
            records.sort(key=lambda r: (field not in r.data, str(r.data.get(field, "")).casefold()))
            if descending:
                records.reverse()
        return [r.device_id for r in records]

    page = state.paginator.page(call.param("pageToken"), page_size, query_key, matching_ids)
    call.page_reached(page.number)
    with state.lock:
        chunks = [r.json(projection) for i in page.keys if (r := state.devices.get(i)) is not None]
        etag = make_etag("chromeosdevices", state.changes, page.number)
    body = b'{"kind":"admin#directory#chromeosdevices","etag":' + compact_json(etag)
    if chunks:
        body += b',"chromeosdevices":[' + b",".join(chunks) + b"]"
    if page.next_token:
        body += b',"nextPageToken":"' + page.next_token.encode() + b'"'
    return RawJson(body + b"}")


@api_method("admin.customer.devices.chromeos.countChromeOsDevices")
def chromeos_count(call: ApiCall) -> dict[str, Any]:
    call.require_my_customer(call.param("customerId"))
    with call.state.lock:
        selected = _matching_records(call)
        count = len(call.state.devices) if selected is None else sum(1 for _ in selected)
    return {"count": str(count)}


@api_method("directory.chromeosdevices.get")
def chromeosdevices_get(call: ApiCall) -> RawJson:
    call.require_my_customer(call.param("customerId"))
    with call.state.lock:
        return RawJson(_device(call, call.param("deviceId")).json(call.param("projection") or "FULL"))


# -- devices: writing --------------------------------------------------------------------------
def _write_device(call: ApiCall) -> RawJson:
    call.require_my_customer(call.param("customerId"))
    body = call.json_body()
    for name, limit in WRITABLE_DEVICE_FIELDS.items():
        value = body.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            raise errors.invalid(f"Invalid Input: {name} must be a string of at most {limit} characters")
    with call.state.lock:
        record = _device(call, call.param("deviceId"))
        # update and patch both keep what the body leaves out, as Google's implementation does.
        for name in WRITABLE_DEVICE_FIELDS:
            if name in body:
                if body[name] in (None, ""):
                    record.data.pop(name, None)
                else:
                    record.data[name] = body[name]
        if body.get("orgUnitPath"):
            if call.state.org_unit(body["orgUnitPath"]) is None:
                raise errors.invalid("Invalid Input: INVALID_OU_ID", "orgUnitPath")
            move_device(call.state, record, body["orgUnitPath"])
        record.touch()
        call.state.changed()
        return RawJson(record.json(call.param("projection") or "FULL"))


api_method("directory.chromeosdevices.update")(_write_device)
api_method("directory.chromeosdevices.patch")(_write_device)


# Legacy action names and what they do: (allowed from, resulting status).
LEGACY_ACTIONS = {
    "disable": ({"ACTIVE"}, "DISABLED"),
    "reenable": ({"DISABLED"}, "ACTIVE"),
    "deprovision": ({"ACTIVE", "DISABLED", "INACTIVE"}, "DEPROVISIONED"),
    "pre_provisioned_disable": ({"PRE_PROVISIONED"}, "DISABLED"),
    "pre_provisioned_reenable": ({"DISABLED"}, "PRE_PROVISIONED"),
}


@api_method("directory.chromeosdevices.action")
def chromeosdevices_action(call: ApiCall) -> None:
    call.require_my_customer(call.param("customerId"))
    body = call.json_body()
    action = body.get("action")
    if action not in LEGACY_ACTIONS:
        raise errors.invalid("Invalid Input: action")
    if action == "deprovision" and not body.get("deprovisionReason"):
        raise errors.invalid("Invalid Input: deprovisionReason is required to deprovision a device")
    with call.state.lock:
        record = _device(call, call.param("resourceId"))
        allowed, target = LEGACY_ACTIONS[action]
        if record.data["status"] not in allowed:
            raise errors.ApiError(
                412, "Precondition Failed: Illegal device state transition", "conditionNotMet"
            )
        _set_status(call, record, target, body.get("deprovisionReason"))
    return None


def _set_status(call: ApiCall, record: DeviceRecord, status: str, reason: str | None = None) -> None:
    if status == "ACTIVE" and call.state.free_licenses is not None:
        call.state.free_licenses -= 1
    if (
        record.data["status"] == "ACTIVE"
        and status == "DEPROVISIONED"
        and call.state.free_licenses is not None
    ):
        call.state.free_licenses += 1
    record.data["status"] = status
    if status == "DEPROVISIONED":
        record.data["deprovisionReason"] = reason or "DEPROVISION_REASON_UNSPECIFIED"
        record.data["lastDeprovisionTimestamp"] = rfc3339(call.state.clock.now())
    record.touch()
    call.state.changed()


BATCH_ACTIONS = {
    "CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_DISABLE": ({"ACTIVE"}, "DISABLED"),
    "CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_REENABLE": ({"DISABLED"}, "ACTIVE"),
    "CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_DEPROVISION": (
        {"ACTIVE", "DISABLED", "INACTIVE"},
        "DEPROVISIONED",
    ),
}


def _rpc_error(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message}


@api_method("admin.customer.devices.chromeos.batchChangeStatus")
def chromeos_batch_change_status(call: ApiCall) -> dict[str, Any]:
    call.require_my_customer(call.param("customerId"))
    body = call.json_body()
    action = body.get("changeChromeOsDeviceStatusAction")
    device_ids = body.get("deviceIds") or []
    if action not in BATCH_ACTIONS:
        raise errors.invalid("Invalid Input: changeChromeOsDeviceStatusAction")
    if not isinstance(device_ids, list) or not device_ids:
        raise errors.invalid("Invalid Input: deviceIds must not be empty")
    if len(device_ids) > MAX_BATCH_DEVICES:
        raise errors.invalid(f"Invalid Input: at most {MAX_BATCH_DEVICES} deviceIds per request")
    reason = body.get("deprovisionReason")
    deprovision = action.endswith("DEPROVISION")
    if deprovision and reason in (None, "DEPROVISION_REASON_UNSPECIFIED"):
        raise errors.invalid("Invalid Input: deprovisionReason is required to deprovision devices")
    allowed, target = BATCH_ACTIONS[action]
    results = []
    with call.state.lock:
        for device_id in device_ids:
            result: dict[str, Any] = {"deviceId": device_id}
            record = call.state.devices.get(device_id)
            if record is None:
                result["error"] = _rpc_error(5, "Device not found.")
            elif record.data["status"] not in allowed:
                result["error"] = _rpc_error(
                    9, f"Illegal device state transition from {record.data['status']}."
                )
            elif target == "ACTIVE" and call.state.free_licenses == 0:
                result["error"] = _rpc_error(9, "No available licenses to re-enable the device.")
            else:
                _set_status(call, record, target, reason)
                result["response"] = {}
            results.append(result)
    return {"changeChromeOsDeviceStatusResults": results}


@api_method("directory.chromeosdevices.moveDevicesToOu")
def chromeosdevices_move(call: ApiCall) -> None:
    call.require_my_customer(call.param("customerId"))
    device_ids = call.json_body().get("deviceIds") or []
    if not device_ids:
        raise errors.invalid("Invalid Input: deviceIds")
    if len(device_ids) > MAX_BATCH_DEVICES:
        raise errors.invalid(f"Invalid Input: at most {MAX_BATCH_DEVICES} deviceIds per request")
    with call.state.lock:
        if call.state.org_unit(call.param("orgUnitPath")) is None:
            raise errors.invalid("Invalid Input: INVALID_OU_ID", "orgUnitPath")
        unknown = [d for d in device_ids if d not in call.state.devices]
        if unknown:
            raise errors.invalid(f"Invalid Input: unknown deviceId {unknown[0]}", "deviceIds")
        for device_id in device_ids:
            move_device(call.state, call.state.devices[device_id], call.param("orgUnitPath"))
        call.state.changed()
    return None


# -- remote commands ---------------------------------------------------------------------------
@api_method("admin.customer.devices.chromeos.issueCommand")
def chromeos_issue_command(call: ApiCall) -> dict[str, Any]:
    call.require_my_customer(call.param("customerId"))
    body = call.json_body()
    command_type = body.get("commandType")
    if command_type not in _command_types() or command_type == "COMMAND_TYPE_UNSPECIFIED":
        raise errors.invalid("Invalid Input: commandType")
    state = call.state
    with state.lock:
        record = _device(call, call.param("deviceId"))
        if record.data["status"] != "ACTIVE":
            raise errors.ApiError(400, "Device is not active; commands can only be issued to active devices.")
        now = state.clock.now()
        command = Command(
            command_id=state.next_command_id(),
            device_id=record.device_id,
            command_type=command_type,
            issue_time=now,
            expire_time=now + state.config.command_ttl,
            payload=body.get("payload"),
            outcome=state.command_outcome,
            step_seconds=state.command_step_seconds,
        )
        state.commands[command.command_id] = command
        state.changed()
    return {"commandId": command.command_id}


def _command_types() -> list[str]:
    schema = load_document("admin")["schemas"]["DirectoryChromeosdevicesIssueCommandRequest"]
    return schema["properties"]["commandType"]["enum"]


def command_resource(command: Command, now: float) -> dict[str, Any]:
    state = command.state_at(now)
    body: dict[str, Any] = {
        "commandId": command.command_id,
        "type": command.command_type,
        "issueTime": rfc3339(command.issue_time),
        "state": state,
        "commandExpireTime": rfc3339(command.expire_time),
    }
    if command.payload:
        body["payload"] = command.payload
    if state == "EXECUTED_BY_CLIENT":
        result: dict[str, Any] = {"result": command.outcome, "executeTime": rfc3339(command.execute_time())}
        if command.outcome == "FAILURE":
            result["errorMessage"] = "The device failed to execute the command."
        body["commandResult"] = result
    return body


@api_method("admin.customer.devices.chromeos.commands.get")
def chromeos_command_get(call: ApiCall) -> dict[str, Any]:
    call.require_my_customer(call.param("customerId"))
    with call.state.lock:
        command = call.state.commands.get(call.param("commandId"))
        if command is None or command.device_id != call.param("deviceId"):
            raise errors.not_found()
        return command_resource(command, call.state.clock.now())


# -- users -------------------------------------------------------------------------------------
@api_method("directory.users.list")
def users_list(call: ApiCall) -> dict[str, Any]:
    state = call.state
    customer, domain = call.param("customer"), call.param("domain")
    if not customer and not domain:
        raise errors.bad_request()
    if customer and not state.is_my_customer(customer):
        raise errors.forbidden()
    if domain and domain != state.customer["customerDomain"]:
        raise errors.forbidden()
    needle = (call.param("query") or "").split(":")[-1].strip("'\"* ").casefold()
    order_by = call.param("orderBy") or "email"
    query_key = repr([customer, domain, needle, order_by, call.param("sortOrder")])

    def matching_ids() -> list[str]:
        with state.lock:
            users = [u for u in state.users if not needle or needle in u["primaryEmail"].casefold()]
        sort_key = {
            "email": ("primaryEmail",),
            "givenName": ("name", "givenName"),
            "familyName": ("name", "familyName"),
        }
        path = sort_key[order_by]
        users.sort(key=lambda u: u[path[0]] if len(path) == 1 else u[path[0]][path[1]])
        if call.param("sortOrder") == "DESCENDING":
            users.reverse()
        return [u["id"] for u in users]

    page = state.paginator.page(
        call.param("pageToken"), call.param("maxResults", 100), query_key, matching_ids
    )
    call.page_reached(page.number)
    with state.lock:
        by_id = {u["id"]: u for u in state.users}
        found = [by_id[i] for i in page.keys if i in by_id]
    body: dict[str, Any] = {"kind": "admin#directory#users", "etag": make_etag("users", state.changes)}
    if found:
        body["users"] = found
    if page.next_token:
        body["nextPageToken"] = page.next_token
    return body
