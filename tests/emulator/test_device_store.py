"""Devices generated from seeds on demand, stored only once changed; the state file keeps every customer."""

from __future__ import annotations

import json

import requests

from google_emulator import mutations
from google_emulator.server import EmulatorServer
from google_emulator.state import EmulatorConfig, EmulatorState
from google_emulator.testing import EmulatorHandle


def fleet(devices: int = 400, customers: int = 1, device_cache: int = 0) -> EmulatorState:
    return EmulatorState(
        EmulatorConfig(devices=devices, customers=customers, org_units=20, seed=3, device_cache=device_cache)
    )


def test_an_untouched_device_is_regenerated_identically_and_not_stored():
    state = fleet()
    device_ids = list(state.devices)
    assert len(device_ids) == len(set(device_ids)) == 400
    first = [state.devices[d].json("FULL") for d in device_ids]
    again = [state.devices[d].json("FULL") for d in device_ids]
    assert first == again
    assert state.devices.changed == {} and state.devices.deleted == set()
    # The same seed gives the same customer, however many times it is built.
    assert [fleet().devices[d].data for d in device_ids[:20]] == [
        state.devices[d].data for d in device_ids[:20]
    ]


def test_changes_moves_deletions_and_additions_are_the_only_devices_stored():
    state = fleet()
    device_ids = list(state.devices)
    changed = mutations.change_devices(state, count=7, seed=1)
    moved = mutations.move_devices(state, "/Paris", device_ids=device_ids[:3])
    deleted = mutations.delete_devices(state, device_ids=device_ids[10:15])
    added = mutations.add_devices(state, count=2, org_unit_path="/Lyon")
    store = state.devices
    assert store.seeded is not None
    assert {store.seeded.device_id(i) for i in store.changed} == set(changed) | set(moved)
    assert {store.seeded.device_id(i) for i in store.deleted} == set(deleted)
    assert list(store.added) == added
    assert len(store) == 400 - 5 + 2
    assert all(state.devices[d].data["orgUnitPath"] == "/Paris" for d in moved)
    assert not any(d in state.devices for d in deleted)
    assert state.devices.get(deleted[0]) is None
    # The order stays the order of the dict it replaced: seeded devices by index, then added ones.
    assert list(state.devices)[-2:] == added
    assert [r.device_id for r in state.devices.values()] == list(state.devices)


def test_the_org_unit_filter_reads_the_seed_as_a_scan_of_every_device_would():
    state = fleet(devices=1500)
    mutations.move_devices(state, "/Lyon", device_ids=list(state.devices)[:40])
    for unit in state.org_units:
        paths = state.org_units.subtree_paths(unit)
        expected = [r.device_id for r in state.devices.values() if r.data["orgUnitPath"] in paths]
        assert [r.device_id for r in state.devices.in_org_units(paths)] == expected


def test_unknown_or_foreign_device_ids_are_not_found():
    state = fleet(customers=2, devices=30)
    first, second = state.customers
    some = next(iter(first.devices))
    assert some not in second.devices and second.devices.get(some) is None
    assert "not-a-device" not in first.devices


def test_listing_every_device_over_http_keeps_memory_bounded_by_the_cache():
    with EmulatorServer(devices=2000, customers=3, org_units=10, device_cache=500) as server:
        handle = EmulatorHandle(server)
        directory = handle.directory(
            handle.credentials(refresh_token=handle.grant(customer="3")["refresh_token"])
        )
        listed, token = [], None
        while True:
            page = (
                directory.chromeosdevices()
                .list(customerId="my_customer", maxResults=300, pageToken=token, projection="FULL")
                .execute()
            )
            listed += [d["deviceId"] for d in page["chromeosdevices"]]
            token = page.get("nextPageToken")
            if not token:
                break
        third = server.state.customers[2]
        assert listed == list(third.devices)
        assert len(server.state.device_cache) <= 500
        assert third.devices.changed == {} and not third.devices.added
        count = (
            directory.customer().devices().chromeos().countChromeOsDevices(customerId="my_customer").execute()
        )
        assert count["count"] == "2000"


def test_the_state_file_keeps_every_customer(tmp_path):
    state_file = tmp_path / "google.json"
    with EmulatorServer(devices=40, customers=3, seed=9, state_file=state_file) as first:
        second_customer = first.state.customers[1]
        third_customer = first.state.customers[2]
        gone = mutations.delete_devices(second_customer, count=4, seed=2)
        moved = mutations.move_devices(third_customer, "/Paris", count=3, seed=2)
        added = requests.post(
            f"{first.url}/_emulator/customers", json={"domain": "ajout.example.org", "devices": 7}, timeout=5
        ).json()
        expected = {
            c.customer["id"]: {d: r.json("FULL") for d, r in zip(c.devices, c.devices.values(), strict=True)}
            for c in first.state.customers
        }
    saved = json.loads(state_file.read_text())
    assert len(saved["customers"]) == 4
    # Only the changes are written, not the devices generated from the seed.
    assert len(saved["customers"][1]["devices"]["deleted"]) == 4
    assert len(saved["customers"][2]["devices"]["changed"]) == 3
    with EmulatorServer(devices=5, seed=1, state_file=state_file) as second:
        customers = second.state.customers
        assert [c.customer["customerDomain"] for c in customers] == [
            "example.com",
            "tenant2.example.com",
            "tenant3.example.com",
            "ajout.example.org",
        ]
        assert {
            c.customer["id"]: {d: r.json("FULL") for d, r in zip(c.devices, c.devices.values(), strict=True)}
            for c in customers
        } == expected
        assert not any(d in customers[1].devices for d in gone)
        assert all(customers[2].devices[d].data["orgUnitPath"] == "/Paris" for d in moved)
        assert customers[3].admin_email == added["admin"]
        assert second.state.customer_for_user(customers[2].admin_email) is customers[2]
