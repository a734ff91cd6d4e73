"""Changes to the domain made behind the app's back: what tests and fault injections use.

Each operation is a plain function of the state, also reachable as ``{"op": name, ...}`` so a
fault can apply one between two pages of a listing (see ``apply``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from google_emulator.generator import NOTES, OS_VERSIONS, iso_time
from google_emulator.model import DeviceRecord
from google_emulator.org_units import normalise_path
from google_emulator.state import EmulatorState


def _pick(state: EmulatorState, count: int, rng_seed: int | None) -> list[DeviceRecord]:
    rng = random.Random(rng_seed)
    devices = list(state.devices.values())
    return rng.sample(devices, min(count, len(devices)))


def add_devices(
    state: EmulatorState, count: int = 1, org_unit_path: str | None = None, status: str | None = None
) -> list[str]:
    with state.lock:
        units = list(state.org_units)
        if org_unit_path is not None:
            unit = state.org_unit(org_unit_path)
            if unit is None:
                raise ValueError(f"unknown org unit {org_unit_path!r}")
            units = [unit]
        added = []
        for _ in range(count):
            record = state.generator.device(units, state.users)
            if status is not None:
                record.data["status"] = status
                record.touch()
            state.devices[record.device_id] = record
            added.append(record.device_id)
        state.changed()
        return added


def change_devices(state: EmulatorState, count: int = 1, seed: int | None = None) -> list[str]:
    """Touch N random devices the way real fleets change: a sync, an OS update, a new note."""
    with state.lock:
        rng = random.Random(seed)
        changed = []
        for record in _pick(state, count, seed):
            data = record.data
            data["lastSync"] = iso_time(datetime.fromtimestamp(state.clock.now(), UTC))
            data["osVersion"] = rng.choice(OS_VERSIONS)[0]
            data["notes"] = rng.choice(NOTES)
            record.touch()
            changed.append(record.device_id)
        state.changed()
        return changed


def delete_devices(
    state: EmulatorState,
    count: int | None = None,
    device_ids: list[str] | None = None,
    seed: int | None = None,
) -> list[str]:
    with state.lock:
        if device_ids is None:
            device_ids = [r.device_id for r in _pick(state, count or 0, seed)]
        deleted = [d for d in device_ids if state.devices.pop(d, None) is not None]
        state.changed()
        return deleted


def move_device(state: EmulatorState, record: DeviceRecord, org_unit_path: str) -> None:
    unit = state.org_unit(org_unit_path)
    if unit is None:
        raise ValueError(f"unknown org unit {org_unit_path!r}")
    record.data["orgUnitPath"] = unit.path
    record.data["orgUnitId"] = unit.org_unit_id
    record.touch()


def move_devices(
    state: EmulatorState,
    org_unit_path: str,
    count: int | None = None,
    device_ids: list[str] | None = None,
    seed: int | None = None,
) -> list[str]:
    with state.lock:
        records = (
            [state.devices[d] for d in device_ids if d in state.devices]
            if device_ids is not None
            else _pick(state, count or 0, seed)
        )
        for record in records:
            move_device(state, record, org_unit_path)
        state.changed()
        return [r.device_id for r in records]


def update_devices(state: EmulatorState, device_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Overwrite raw fields of one device (any field: this is the back door, not the API)."""
    with state.lock:
        record = state.devices[device_id]
        for key, value in changes.items():
            if value is None:
                record.data.pop(key, None)
            else:
                record.data[key] = value
        record.touch()
        state.changed()
        return record.data


def add_org_units(state: EmulatorState, paths: list[str]) -> list[str]:
    with state.lock:
        created = [state.org_units.add_path(p, state.new_org_unit_id).path for p in paths]
        state.changed()
        return created


def delete_org_units(state: EmulatorState, paths: list[str]) -> list[str]:
    """Delete OUs (and their subtrees); their devices move to the parent, as the Admin console requires."""
    with state.lock:
        deleted = []
        for path in paths:
            unit = state.org_unit(path)
            if unit is None or unit.parent_id is None:
                continue
            parent = state.org_units.by_id[unit.parent_id]
            removed = state.org_units.remove(unit)
            gone = {u.path for u in removed}
            for record in state.devices.values():
                if record.data.get("orgUnitPath") in gone:
                    move_device(state, record, parent.path)
            deleted.extend(sorted(gone))
        state.changed()
        return deleted


def replace_org_units(state: EmulatorState, paths: list[str]) -> list[str]:
    """Make the tree exactly these paths (plus parents): the demo mirrors its LDAP tree this way."""
    with state.lock:
        wanted = {normalise_path(p).casefold() for p in paths}
        for path in paths:
            state.org_units.add_path(path, state.new_org_unit_id)
        keep = set(wanted)
        for path in wanted:  # parents of wanted paths stay
            while path != "/":
                path = path.rsplit("/", 1)[0] or "/"
                keep.add(path)
        extra = [u.path for u in state.org_units if u.path.casefold() not in keep and u.path != "/"]
        delete_org_units(state, sorted(extra, key=len))
        return sorted(u.path for u in state.org_units)


OPERATIONS: dict[str, Callable[..., Any]] = {
    "add_devices": add_devices,
    "change_devices": change_devices,
    "delete_devices": delete_devices,
    "move_devices": move_devices,
    "add_org_units": add_org_units,
    "delete_org_units": delete_org_units,
}


def apply(state: EmulatorState, mutation: dict[str, Any]) -> Any:
    arguments = dict(mutation)
    operation = OPERATIONS.get(arguments.pop("op", ""))
    if operation is None:
        raise ValueError(f"unknown mutation {mutation!r}; known: {sorted(OPERATIONS)}")
    return operation(state, **arguments)
