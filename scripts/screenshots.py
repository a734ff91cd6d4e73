"""Screenshots of the console's main pages at 1440x900 and 390x844, in French, from a whole running stack.

    .venv/bin/python scripts/screenshots.py OUTPUT_DIR

Starts the end-to-end stack (``tests/e2e/stack.py``: its own database, slapd, Google emulator, web server,
worker, beat), walks an admin through LDAP, « Autoriser Google » and « Synchro maintenant » in Chromium, creates
a support superuser, then saves ``<page>-<width>.png`` (what fits in the window) for the device list, a device
page, Accueil, the audit log and the support tenant page. Used for the before/after pictures of the UI work and
for ``docs/screenshots``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm.settings")

from playwright.sync_api import Page, ViewportSize, sync_playwright  # noqa: E402

from tests.e2e.journey import authorize_google, configure_ldap, log_in, sync_now  # noqa: E402
from tests.e2e.stack import CHROMIUM, CHROMIUM_ARGS, GOOGLE_DEVICES, Stack, running_stack  # noqa: E402

SIZES: dict[str, ViewportSize] = {
    "1440": {"width": 1440, "height": 900},
    "390": {"width": 390, "height": 844},
}
SUPPORT_USER, SUPPORT_PASSWORD = "support", "support-Pass-2026"


def _prepare(page: Page, stack: Stack) -> dict[str, str]:
    """The tenant set up as after the README's walk-through; the URLs to photograph."""
    log_in(page, stack)
    configure_ldap(page, stack)
    authorize_google(page, stack, success="Configuration réussie de ChromeOS")
    sync_now(page, stack, expected_devices=GOOGLE_DEVICES)
    page.goto("/devices/")
    device_href = page.locator(".device-table tbody tr a").first.get_attribute("href") or "/devices/"
    stack.manage(
        "createsuperuser", "--noinput", "--username", SUPPORT_USER, "--email", "support@example.com",
        env={"DJANGO_SUPERUSER_PASSWORD": SUPPORT_PASSWORD},
    )  # fmt: skip
    return {
        "peripheriques": "/devices/",
        "peripherique": device_href,
        "accueil": "/",
        "journal": "/audit/",
    }


def _support_login(page: Page) -> str:
    page.goto("/support/login/")
    page.locator("input[name=username]").fill(SUPPORT_USER)
    page.locator("input[name=password]").fill(SUPPORT_PASSWORD)
    page.locator("input[type=submit], button[type=submit]").first.click()
    page.goto("/support/mdm/tenant/")
    return page.locator("#result_list tbody tr a, .results tbody tr a").first.get_attribute("href") or ""


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with running_stack() as stack, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        setup = browser.new_context(base_url=stack.base_url, locale="fr-FR", timezone_id="Europe/Paris")
        setup.set_default_timeout(20_000)
        urls = _prepare(setup.new_page(), stack)
        storage = setup.storage_state()
        for width, viewport in SIZES.items():
            context = browser.new_context(
                base_url=stack.base_url, locale="fr-FR", viewport=viewport, timezone_id="Europe/Paris",
                storage_state=storage,
            )  # fmt: skip
            page = context.new_page()
            for name, url in urls.items():
                page.goto(url)
                page.screenshot(path=str(out / f"{name}-{width}.png"))
            support = browser.new_context(
                base_url=stack.base_url, locale="fr-FR", viewport=viewport, timezone_id="Europe/Paris"
            )
            support_page = support.new_page()
            tenant_href = _support_login(support_page)
            support_page.goto(tenant_href)
            support_page.screenshot(path=str(out / f"support-tenant-{width}.png"))
            support.close()
            context.close()
        browser.close()
    print(f"screenshots in {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "test-artifacts/screenshots/pages"))
