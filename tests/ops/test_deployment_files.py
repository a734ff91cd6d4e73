"""What deploys the console runs production mode: docker-compose and the image run scripts/prod.sh (gunicorn),
never Django's development server; prod.sh refuses DEBUG. Compose opens the outbound policy to its demo slapd only."""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _compose_commands() -> dict[str, str]:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    services = text.split("\nservices:\n", 1)[1]
    commands: dict[str, str] = {}
    name = ""
    for line in services.splitlines():
        if m := re.match(r"^  ([a-z-]+):\s*$", line):
            name = m.group(1)
        elif m := re.match(r"^    command: (.+)$", line):
            commands[name] = m.group(1)
    return commands


def test_compose_runs_the_production_commands() -> None:
    commands = _compose_commands()
    assert commands["web"] == '["scripts/prod.sh", "web"]'
    assert commands["worker"] == '["scripts/prod.sh", "worker"]'
    assert commands["beat"] == '["scripts/prod.sh", "beat"]'
    assert commands["sync-worker"] == '["scripts/prod.sh", "sync-worker"]'
    assert "scripts/prod.sh release" in commands["release"]
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert "runserver" not in text
    assert 'DJANGO_DEBUG: "0"' in text


def test_compose_allows_tenants_only_the_demo_slapd() -> None:
    """Compose may serve as a deployment template: tenants' LDAP must not reach every private range (nor RDP on
    3389 inside them), only the demo slapd's own address and port."""
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    networks = re.findall(r"^\s+MDM_OUTBOUND_ALLOWED_NETWORKS: (.+)$", text, re.M)
    ports = re.findall(r"^\s+MDM_OUTBOUND_ALLOWED_PORTS: \"?([^\"\n]+)\"?$", text, re.M)
    assert len(networks) == 1 and len(ports) == 1  # a repeated key: which one wins depends on the YAML reader
    slapd = text.split("\n  slapd:\n", 1)[1].split("\n  emulator:\n", 1)[0]
    slapd_address = ipaddress.ip_address(re.search(r"ipv4_address: ([0-9.]+)", slapd).group(1))  # type: ignore[union-attr]
    slapd_port = re.search(r'"--port", "(\d+)"', slapd).group(1)  # type: ignore[union-attr]
    assert [ipaddress.ip_network(cidr.strip()) for cidr in networks[0].split(",")] == [
        ipaddress.ip_network(f"{slapd_address}/32")
    ]
    assert ports[0].strip() == slapd_port
    subnet, ip_range = re.search(r"subnet: ([0-9./]+), ip_range: ([0-9./]+)", text).groups()  # type: ignore[union-attr]
    # The fixed address is in the network and outside the range other containers are given addresses from.
    assert slapd_address in ipaddress.ip_network(subnet) and slapd_address not in ipaddress.ip_network(
        ip_range
    )


def test_image_runs_gunicorn_through_prod_sh() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert 'CMD ["scripts/prod.sh", "web"]' in dockerfile
    assert "DJANGO_DEBUG=1 python manage.py collectstatic" not in dockerfile


def test_prod_sh_refuses_debug() -> None:
    result = subprocess.run(
        ["scripts/prod.sh", "web"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_DEBUG": "1"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "DJANGO_DEBUG" in result.stderr
