"""Production headers (read from a real response under production settings), deployment checks on the encryption
keys, ``rotate_encryption_keys`` on a bad key, and templates the Content-Security-Policy can serve."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from mdm.settings import _DEV_ENCRYPTION_KEY, _DEV_SECRET_KEY
from tests.test_support_and_cli import ROOT
from tests.test_support_and_cli import production_env as base_production_env


def production_env(**overrides: str) -> dict[str, str]:
    env = base_production_env()
    env.update(overrides)
    return env


# Production settings as they are, except static files served from the sources (no collectstatic here; the
# production stack test, tests/ops/test_production_stack.py, checks the same headers through gunicorn).
HEADERS_SCRIPT = """
import json, django
import mdm.settings
mdm.settings.STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"
django.setup()
from django.test import Client
response = Client().get("/login/", secure=True, HTTP_HOST="mdm.example.com")
print(json.dumps({"status": response.status_code, "headers": dict(response.headers),
                  "cookies": {k: dict(v) for k, v in response.cookies.items()}}))
"""


def production_response(**env: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", HEADERS_SCRIPT],
        cwd=ROOT,
        env=production_env(**env),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def production() -> dict:
    return production_response()


def test_production_sends_a_strict_content_security_policy(production):
    assert production["status"] == 200
    csp = {
        part.split()[0]: part.split()[1:]
        for part in production["headers"]["Content-Security-Policy"].split(";")
        if part.strip()
    }
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert "https://accounts.google.com" in csp["form-action"]
    policy = production["headers"]["Content-Security-Policy"]
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_production_sends_permissions_and_referrer_policies(production):
    permissions = production["headers"]["Permissions-Policy"]
    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert f"{feature}=()" in permissions
    assert production["headers"]["Referrer-Policy"] == "same-origin"
    assert production["headers"]["X-Frame-Options"] == "DENY"
    assert production["headers"]["X-Content-Type-Options"] == "nosniff"
    assert production["cookies"]["csrftoken"]["httponly"] is True
    assert production["cookies"]["csrftoken"]["secure"] is True


def test_hsts_preload_is_off_unless_asked(production):
    assert production["headers"]["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    asked = production_response(DJANGO_HSTS_PRELOAD="1")
    assert asked["headers"]["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


def _check_deploy(keys: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(MDM_ENCRYPTION_KEYS=keys, **env),
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    ("keys", "check_id"),
    [
        (_DEV_ENCRYPTION_KEY, "mdm.E003"),
        (f"{Fernet.generate_key().decode()},{_DEV_ENCRYPTION_KEY}", "mdm.E003"),
        # The base64 decoder ignores extra padding and characters outside its alphabet: same key, other spelling.
        (_DEV_ENCRYPTION_KEY + "==", "mdm.E003"),
        (_DEV_ENCRYPTION_KEY[:20] + "*" + _DEV_ENCRYPTION_KEY[20:], "mdm.E003"),
        ("not-a-fernet-key", "mdm.E002"),
        (Fernet.generate_key().decode()[:-2], "mdm.E002"),
    ],
    ids=[
        "development key",
        "development key kept second",
        "development key re-padded",
        "development key with a stray character",
        "garbage",
        "truncated key",
    ],
)
def test_check_deploy_fails_on_a_development_or_malformed_key(keys, check_id):
    result = _check_deploy(keys)
    assert result.returncode != 0
    assert check_id in result.stderr
    assert keys not in result.stderr  # a key is never printed


@pytest.mark.parametrize(
    ("secret_key", "check_id"),
    [
        (_DEV_SECRET_KEY, "mdm.E004"),
        (_DEV_SECRET_KEY + "\n", "mdm.E004"),
        ("short-but-varied-0123456789", "mdm.E005"),
        ("ab" * 40, "mdm.E005"),
        ("django-insecure-" + Fernet.generate_key().decode(), "mdm.E005"),
    ],
    ids=[
        "development key",
        "development key with a newline",
        "short",
        "few distinct characters",
        "insecure prefix",
    ],
)
def test_check_deploy_fails_on_a_development_or_weak_secret_key(secret_key, check_id):
    result = _check_deploy(Fernet.generate_key().decode(), DJANGO_SECRET_KEY=secret_key)
    assert result.returncode != 0
    assert check_id in result.stderr
    assert f"ERRORS:\n?: ({check_id})" in result.stderr  # an error, not Django's W009 warning
    assert secret_key.strip() not in result.stderr


def test_rotate_reports_a_malformed_key_in_one_line():
    env = production_env(DJANGO_DEBUG="1", MDM_ENCRYPTION_KEYS=f"{Fernet.generate_key().decode()},garbage==")
    result = subprocess.run(
        [sys.executable, "manage.py", "rotate_encryption_keys"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "CommandError: MDM_ENCRYPTION_KEYS key #2 is not a Fernet key (32 bytes, url-safe base64, 44 characters)."
    ]


TEMPLATE_DIRS = [ROOT / "templates", *ROOT.glob("*/templates")]
INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "inline <script>"),
    (re.compile(r"<style\b", re.I), "<style> element"),
    (re.compile(r"\sstyle=", re.I), "style attribute"),
    (re.compile(r"\son[a-z]+=", re.I), "event handler attribute"),
    (re.compile(r"\shx-on", re.I), "hx-on attribute"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
]


def test_templates_hold_no_inline_script_or_style():
    found = []
    for directory in TEMPLATE_DIRS:
        for path in directory.rglob("*.html"):
            text = re.sub(r"\{#.*?#\}", "", path.read_text())
            found += [
                f"{path.relative_to(ROOT)}: {label}" for pattern, label in INLINE if pattern.search(text)
            ]
    assert not found
