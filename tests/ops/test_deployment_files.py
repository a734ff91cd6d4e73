"""What deploys the console runs production mode: docker-compose and the image run scripts/prod.sh (gunicorn),
never Django's development server; prod.sh refuses DEBUG."""

from __future__ import annotations

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
        if m := re.match(r"^  ([a-z]+):\s*$", line):
            name = m.group(1)
        elif m := re.match(r"^    command: (.+)$", line):
            commands[name] = m.group(1)
    return commands


def test_compose_runs_the_production_commands() -> None:
    commands = _compose_commands()
    assert commands["web"] == '["scripts/prod.sh", "web"]'
    assert commands["worker"] == '["scripts/prod.sh", "worker"]'
    assert commands["beat"] == '["scripts/prod.sh", "beat"]'
    assert "scripts/prod.sh release" in commands["release"]
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert "runserver" not in text
    assert 'DJANGO_DEBUG: "0"' in text


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
