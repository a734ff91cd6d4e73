"""The live sync panel on a phone (Debian's Chromium, 390 px): while a sync runs, its progress line wraps instead
of pushing the whole page sideways (Pico's ``[aria-busy=true]`` sets ``white-space: nowrap`` on the busy article;
the browser sweep only caught it when a sync happened to be running as it passed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import reverse

from chromeos.models import SyncRun, SyncStatus, SyncTrigger
from tests.browser import signed_in_page
from tests.e2e.test_console_layout import OVERFLOW_JS

pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def phone_page(live_server: Any, admin_user: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with signed_in_page(live_server.url, admin_user) as page:
        page.set_viewport_size({"width": 390, "height": 844})
        yield page


def test_a_running_sync_never_pushes_the_phone_page_sideways(google_integration, phone_page):
    SyncRun.unscoped.create(
        tenant=google_integration.tenant,
        integration=google_integration,
        # Queued: a RUNNING row whose tenant lock nobody holds is a dead run, shown as such.
        status=SyncStatus.QUEUED,
        trigger=SyncTrigger.MANUAL,
        pages=12,
        devices_seen=3456,
        expected_devices=12345,
        org_units=24,
    )
    phone_page.goto(reverse("chromeos:manage"))
    phone_page.locator("#sync-progress").wait_for()
    overflow, culprits = phone_page.evaluate(OVERFLOW_JS)
    assert overflow <= 1, f"the page scrolls sideways by {overflow}px ({', '.join(culprits)})"
