"""What a listing split by org unit relies on: chromeosdevices.list and countChromeOsDevices per OU (its id or
path, with or without its children, with a query), and faults aimed at one OU's listing among several."""

from __future__ import annotations

import json

import pytest
from googleapiclient.errors import HttpError

LIST = "directory.chromeosdevices.list"
COUNT = "admin.customer.devices.chromeos.countChromeOsDevices"


def list_ids(directory, **kwargs) -> list[str]:
    devices = directory.chromeosdevices()
    request = devices.list(customerId="my_customer", maxResults=50, **kwargs)
    found: list[str] = []
    while request is not None:
        page = request.execute()
        found.extend(d["deviceId"] for d in page.get("chromeosdevices", []))
        request = devices.list_next(request, page)
    return found


def count(directory, **kwargs) -> int:
    chromeos = directory.customer().devices().chromeos()
    return int(chromeos.countChromeOsDevices(customerId="my_customer", **kwargs).execute()["count"])


def org_units(directory) -> list[dict]:
    return (
        directory.orgunits()
        .list(customerId="my_customer", type="allIncludingParent")
        .execute()["organizationUnits"]
    )


def test_each_org_unit_without_its_children_partitions_the_fleet(emulator):
    directory = emulator.directory()
    units = org_units(directory)
    assert any(u["orgUnitPath"] == "/" for u in units)  # the root holds devices too: listed by its id
    seen: dict[str, str] = {}
    counted = 0
    for unit in units:
        ids = list_ids(directory, orgUnitPath=unit["orgUnitId"], includeChildOrgunits=False)
        assert (
            len(ids)
            == len(set(ids))
            == count(directory, orgUnitPath=unit["orgUnitId"], includeChildOrgunits=False)
        )
        for device_id in ids:
            assert device_id not in seen, (
                "an org unit listed without its children is disjoint from the others"
            )
            seen[device_id] = unit["orgUnitPath"]
        counted += len(ids)
    assert set(seen) == set(emulator.state.devices)
    assert counted == count(directory) == len(emulator.state.devices)
    assert all(emulator.state.devices[d].data["orgUnitPath"] == path for d, path in seen.items())


def test_a_subtree_by_path_or_id_counts_what_it_lists(emulator):
    directory = emulator.directory()
    parent = next(
        u for u in org_units(directory) if u["orgUnitPath"] != "/" and u["orgUnitPath"].count("/") == 1
    )
    subtree = set(
        list_ids(directory, orgUnitPath=parent["orgUnitPath"].lstrip("/"), includeChildOrgunits=True)
    )
    assert subtree == set(list_ids(directory, orgUnitPath=parent["orgUnitId"], includeChildOrgunits=True))
    assert len(subtree) == count(directory, orgUnitPath=parent["orgUnitId"], includeChildOrgunits=True)
    alone = set(list_ids(directory, orgUnitPath=parent["orgUnitId"], includeChildOrgunits=False))
    assert alone <= subtree
    assert count(directory, orgUnitPath=parent["orgUnitId"]) == len(
        alone
    )  # includeChildOrgunits defaults false


def test_count_takes_a_filter_within_an_org_unit(emulator):
    directory = emulator.directory()
    unit = next(u for u in org_units(directory) if u["orgUnitPath"] != "/")
    disabled = list_ids(directory, orgUnitPath=unit["orgUnitId"], query="status:disabled")
    assert count(directory, orgUnitPath=unit["orgUnitId"], filter="status:disabled") == len(disabled)
    expected = sum(
        1
        for d in emulator.state.devices.values()
        if d.data["orgUnitPath"] == unit["orgUnitPath"] and d.data["status"] == "DISABLED"
    )
    assert len(disabled) == expected


def test_count_with_children_but_no_org_unit_or_an_unknown_one_is_400(emulator):
    directory = emulator.directory()
    for kwargs in ({"includeChildOrgunits": True}, {"orgUnitPath": "id:nope"}, {"orgUnitPath": "Nowhere"}):
        with pytest.raises(HttpError) as raised:
            count(directory, **kwargs)
        assert json.loads(raised.value.content)["error"]["code"] == 400


def test_a_fault_aimed_at_one_org_units_listing_leaves_the_others_alone(emulator):
    directory = emulator.directory()
    units = [u for u in org_units(directory) if u["orgUnitPath"] != "/"]
    target, other = units[0], units[1]
    moved = next(
        d.device_id for d in emulator.state.devices.values() if d.data["orgUnitPath"] == target["orgUnitPath"]
    )
    emulator.add_fault(
        method=LIST,
        page=1,
        params={"orgUnitPath": target["orgUnitId"], "includeChildOrgunits": False},
        mutation={"op": "move_devices", "org_unit_path": other["orgUnitPath"], "device_ids": [moved]},
    )
    emulator.add_fault(method=COUNT, params={"orgUnitPath": other["orgUnitId"]}, status=503)
    before_other = list_ids(directory, orgUnitPath=other["orgUnitId"], includeChildOrgunits=False)
    assert moved not in before_other  # the other OU's listing did not take the fault
    with pytest.raises(HttpError):
        count(directory, orgUnitPath=other["orgUnitId"])
    count(directory, orgUnitPath=target["orgUnitId"])  # another OU's count is not affected
    listed = list_ids(directory, orgUnitPath=target["orgUnitId"], includeChildOrgunits=False)
    assert moved in listed  # the snapshot was taken before the move...
    assert (
        emulator.state.devices[moved].data["orgUnitPath"] == other["orgUnitPath"]
    )  # ...applied after page 1
    assert count(directory, orgUnitPath=target["orgUnitId"]) == len(listed) - 1
    assert emulator.control("GET", "/faults")["faults"] == []


def test_fault_params_must_be_an_object(emulator):
    response = emulator.http.post(
        f"{emulator.url}/_emulator/faults", json={"method": LIST, "params": ["orgUnitPath"]}, timeout=10
    )
    assert response.status_code == 400
