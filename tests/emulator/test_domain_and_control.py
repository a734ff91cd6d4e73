"""The generated domain, the control API, state files and the command line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime

import requests

from google_emulator import EmulatorServer
from google_emulator.generator import generate_domain

REFERENCE = datetime(2025, 3, 1, tzinfo=UTC)
STATUSES = {"ACTIVE", "DELINQUENT", "PRE_PROVISIONED", "DEPROVISIONED", "DISABLED", "INACTIVE", "RETURN_ARRIVED",
            "RETURN_REQUESTED", "SHIPPED", "UNKNOWN"}  # fmt: skip


def test_same_seed_same_domain_other_seed_other_domain():
    def snapshot(seed: int) -> str:
        domain = generate_domain(seed=seed, devices=60, reference_time=REFERENCE)
        return json.dumps(
            [[d.data for d in domain.devices], [vars(u) for u in domain.org_units], domain.users]
        )

    assert snapshot(4) == snapshot(4)
    assert snapshot(4) != snapshot(5)


def test_devices_look_real():
    devices = [d.data for d in generate_domain(seed=2, devices=500, reference_time=REFERENCE).devices]
    assert {d["status"] for d in devices} <= STATUSES
    assert {"DISABLED", "DEPROVISIONED", "ACTIVE"} <= {d["status"] for d in devices}
    assert "HP Chromebook 14 G7" in {d["model"] for d in devices}
    macs = [d[k] for d in devices for k in ("macAddress", "ethernetMacAddress") if k in d]
    assert all(re.fullmatch(r"[0-9a-f]{12}", m) for m in macs)
    assert any(not d.get("annotatedUser", "").isascii() for d in devices)
    assert any("recentUsers" in d and "activeTimeRanges" in d for d in devices)
    assert len({d["deviceId"] for d in devices}) == len({d["serialNumber"] for d in devices}) == 500


def test_org_units_from_explicit_paths():
    paths = ["/Siège/Direction", "/Écoles/Collège Jean Moulin/Élèves"]
    units = {u.path for u in generate_domain(org_unit_paths=paths, devices=5).org_units}
    assert units == {
        "/",
        "/Siège",
        "/Siège/Direction",
        "/Écoles",
        "/Écoles/Collège Jean Moulin",
        "/Écoles/Collège Jean Moulin/Élèves",
    }


def test_control_reshapes_org_units_and_devices(emulator):
    result = emulator.control(
        "PUT", "/org-units", {"paths": ["/Paris/Ventes et Marketing", "/Nantes/Accueil"]}
    )
    assert result["org_units"] == ["/", "/Nantes", "/Nantes/Accueil", "/Paris", "/Paris/Ventes et Marketing"]
    assert {d.data["orgUnitPath"] for d in emulator.state.devices.values()} <= set(result["org_units"])
    added = emulator.control("POST", "/devices", {"count": 3, "org_unit_path": "/Nantes/Accueil"})[
        "device_ids"
    ]
    assert all(emulator.state.devices[d].data["orgUnitPath"] == "/Nantes/Accueil" for d in added)
    changed = emulator.control("POST", "/devices/change", {"count": 2, "seed": 1})["device_ids"]
    assert len(changed) == 2
    emulator.control("POST", "/devices/move", {"device_ids": added[:1], "org_unit_path": "/Paris"})
    assert emulator.state.devices[added[0]].data["orgUnitPath"] == "/Paris"
    before = len(emulator.state.devices)
    deleted = emulator.control("POST", "/devices/delete", {"count": 4})["device_ids"]
    assert len(emulator.state.devices) == before - 4
    # The delete picks devices at random: update one that it left (it may have taken some of ``added``).
    survivor = next(d for d in emulator.state.devices if d not in deleted)
    emulator.control("POST", "/devices/update", {"device_id": survivor, "changes": {"status": "DISABLED"}})
    assert emulator.state.devices[survivor].data["status"] == "DISABLED"


def test_reset_forgets_grants_and_faults(emulator):
    emulator.grant()
    emulator.add_fault(method="*", status=500, count=None)
    emulator.reset()
    summary = emulator.control("GET", "/state")
    assert summary["authorizations"] == []
    assert emulator.control("GET", "/faults")["faults"] == []


def test_bad_control_requests_are_400(emulator):
    response = requests.post(f"{emulator.url}/_emulator/faults", json={"method": "*", "bogus": 1}, timeout=5)
    assert response.status_code == 400
    assert requests.get(f"{emulator.url}/_emulator/nothing", timeout=5).status_code == 404


def test_state_file_survives_restart(tmp_path):
    state_file = tmp_path / "google.json"
    with EmulatorServer(devices=20, seed=9, state_file=state_file) as first:
        granted = requests.post(
            f"{first.url}/_emulator/oauth/grant", json={"scopes": ["openid"]}, timeout=5
        ).json()
        requests.post(f"{first.url}/_emulator/devices/delete", json={"count": 5}, timeout=5)
        customer = first.state.customer["id"]
    with EmulatorServer(devices=999, seed=1, state_file=state_file) as second:
        assert len(second.state.devices) == 15
        assert second.state.customer["id"] == customer
        refreshed = requests.post(
            f"{second.url}/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": granted["refresh_token"],
                "client_id": second.state.config.client_id,
                "client_secret": second.state.config.client_secret,
            },
            timeout=5,
        )
        assert refreshed.status_code == 200


def test_command_line_serves_until_terminated(tmp_path):
    paths = tmp_path / "ous.txt"
    paths.write_text("/Paris/Ventes et Marketing\n# a comment\n/Lyon/Équipe Réseau\n", encoding="utf-8")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "google_emulator",
            "--port",
            "0",
            "--devices",
            "7",
            "--org-unit-paths",
            str(paths),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stderr.readline()
        host = re.search(r"GOOGLE_EMULATOR_HOST=([\d.:]+)", line).group(1)
        summary = requests.get(f"http://{host}/_emulator/state", timeout=5).json()
        assert summary["devices"] == 7
        assert summary["org_units"] == [
            "/",
            "/Lyon",
            "/Lyon/Équipe Réseau",
            "/Paris",
            "/Paris/Ventes et Marketing",
        ]
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
