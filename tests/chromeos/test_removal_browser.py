"""The "Supprimer" confirmation in a real browser (Debian's Chromium): a labelled modal dialog that takes the focus,
keeps it inside, closes on Esc (focus back on the button) and removes the integration on OK; and without
JavaScript, the same button leads to the confirmation page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import reverse

from chromeos.models import ChromeOSDevice, RemovalRun, RemovalStatus
from tests.browser import signed_in_page
from tests.chromeos.removal_data import populate_integration_data
from tests.e2e.a11y import assert_dialog_keyboard

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(params=[True], ids=["js"])
def browser_page(
    live_server: Any, admin_user: Any, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    # Playwright's sync API keeps an asyncio loop on this thread; the test's own ORM calls are still plain
    # synchronous code, run while the browser waits.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with signed_in_page(live_server.url, admin_user, javascript=request.param) as page:
        yield page


def test_dialog_is_labelled_keeps_the_focus_closes_on_esc_and_ok_removes(google_integration, browser_page):
    populate_integration_data(google_integration, devices=8)
    page = browser_page
    page.goto(reverse("chromeos:manage"))
    opener = page.get_by_role("button", name="Supprimer")

    assert_dialog_keyboard(page, opener, "fr")

    opener.click()
    dialog = page.locator("dialog[open]")
    device_row = dialog.get_by_role("row", name="Périphériques ChromeOS")
    playwright_api.expect(device_row.get_by_role("cell")).to_have_text("8")
    playwright_api.expect(dialog.get_by_role("button", name="Annuler")).to_be_focused()
    for _ in range(6):  # Tab cycles through the dialog's controls, never back into the page behind it
        page.keyboard.press("Tab")
        assert page.evaluate("() => !!document.activeElement.closest('dialog[open]')")
    dialog.get_by_role("button", name="Annuler").click()
    playwright_api.expect(page.locator("dialog[open]")).to_have_count(0)
    assert not RemovalRun.unscoped.exists()

    opener.click()
    page.locator("dialog[open]").get_by_role("button", name="OK").click()
    page.wait_for_url(f"**{reverse('chromeos:manage')}")
    playwright_api.expect(page.get_by_role("button", name="Autoriser Google")).to_be_visible()
    assert RemovalRun.unscoped.get().status == RemovalStatus.SUCCEEDED
    assert ChromeOSDevice.unscoped.count() == 0


@pytest.mark.parametrize("browser_page", [False], ids=["no-js"], indirect=True)
def test_without_javascript_supprimer_opens_the_confirmation_page(google_integration, browser_page):
    page = browser_page
    page.goto(reverse("chromeos:manage"))
    page.get_by_role("button", name="Supprimer").click()
    page.wait_for_url(f"**{reverse('chromeos:remove')}")
    playwright_api.expect(page.get_by_role("heading", level=1)).to_have_text(
        "Supprimer l'intégration Google ?"
    )
    page.get_by_role("button", name="OK").click()
    page.wait_for_url(f"**{reverse('chromeos:manage')}")
    assert RemovalRun.unscoped.get().status == RemovalStatus.SUCCEEDED
