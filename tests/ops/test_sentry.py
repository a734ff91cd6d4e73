"""Sentry only with a DSN; what it would send has every secret scrubbed (the real SDK, a capturing transport)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import sentry_sdk
from sentry_sdk.transport import Transport

from ops import sentry

ROOT = Path(__file__).resolve().parents[2]


class Capture(Transport):
    events: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: Any) -> None:
        for item in envelope.items:
            if item.payload.json is not None:
                Capture.events.append(item.payload.json)


def _failing_sync(refresh_token: str, bind_password: str, client_secret: str) -> None:
    headers = {"Authorization": f"Bearer {refresh_token}"}
    raise RuntimeError(f"token endpoint said no for client_secret={client_secret} ({len(headers)} headers)")


def test_no_dsn_no_sentry() -> None:
    assert not sentry_sdk.get_client().is_active()


def test_events_are_scrubbed_of_every_secret(settings: Any) -> None:
    settings.GOOGLE_OAUTH_CLIENT_SECRET = "gocspx-client-secret-123456"
    secrets = ["1//0refresh-token-abcdef", "bind-pass-987654", settings.GOOGLE_OAUTH_CLIENT_SECRET]
    secrets += [*settings.MDM_ENCRYPTION_KEYS, settings.SECRET_KEY]
    Capture.events = []
    sentry.init("https://public@sentry.invalid/1", transport=Capture, default_integrations=False)
    try:
        try:
            _failing_sync(secrets[0], secrets[1], secrets[2])
        except RuntimeError as error:
            sentry_sdk.set_extra("settings_keys", list(settings.MDM_ENCRYPTION_KEYS))
            sentry_sdk.set_extra("note", f"secret key is {settings.SECRET_KEY}")
            sentry_sdk.capture_exception(error)
        sentry_sdk.flush(2)
    finally:
        sentry_sdk.init()  # back to no client
    assert Capture.events, "nothing captured"
    sent = json.dumps(Capture.events)
    assert "_failing_sync" in sent  # the event itself is there, with its frames
    leaked = [s for s in secrets if s in sent]
    assert not leaked, leaked


def test_settings_enable_sentry_with_a_dsn() -> None:
    # (Without one, this test process's own settings left it off: test_no_dsn_no_sentry.)
    code = "import django; django.setup(); import sentry_sdk; print(sentry_sdk.get_client().is_active())"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mdm.settings",
        "DJANGO_DEBUG": "1",
        "SENTRY_DSN": "https://public@sentry.invalid/1",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "True"
