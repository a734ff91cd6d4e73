"""Every main page in a real browser, in French and English, at 1440x900 and on a 390x844 phone: axe-core
finds no serious or critical violation, the page never scrolls sideways, the fleet table shows 15+ rows above
the fold with « Dernière synchro » in view, the phone menu folds and opens. Screenshots of each page at each
size go to ``test-artifacts/screenshots/`` (the README's pictures come from there).

Runs after the journey (same stack, ``xdist_group``); alone, it sets the tenant up itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.e2e.axe import axe_violations
from tests.e2e.journey import authorize_google, configure_ldap, log_in, switch_language, sync_now
from tests.e2e.stack import GOOGLE_DEVICES, SCREENSHOTS, Stack

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("e2e")]

DESKTOP: ViewportSize = {"width": 1440, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
SIZES = {"1440": DESKTOP, "390": PHONE}
PAGES = {
    "accueil": "/",
    "peripheriques": "/devices/",
    "peripherique": "DEVICE",
    "journal": "/audit/",
    "configurations": "/configurations/",
    "applis": "/applis/",
    "gestion-chromeos": "/admin/google/chromeos/",
    "affectations": "/politiques/",
    "inventaire": "REPORT",  # a Blueprint's assignments and inventory, when the tenant has one
    "ldap": "/admin/ldap/",
}


# How far the page scrolls sideways, and the elements that stick out (not clipped by a scrolling ancestor).
OVERFLOW_JS = """() => { const w = window.innerWidth; const out = [];
  for (const el of document.querySelectorAll('body *')) { const r = el.getBoundingClientRect();
    if (r.right <= w + 1 || r.width === 0) continue;
    let p = el.parentElement, clipped = false;
    while (p) { const s = getComputedStyle(p);
      if (['auto', 'scroll', 'hidden'].includes(s.overflowX) && p.getBoundingClientRect().right <= w + 1) {
        clipped = true; break; }
      p = p.parentElement; }
    if (!clipped) out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + '.' + [...el.classList].join('.'));
  }
  return [document.documentElement.scrollWidth - w, out.slice(0, 6)]; }"""


def _horizontal_overflow(page: Page) -> tuple[int, list[str]]:
    overflow, culprits = page.evaluate(OVERFLOW_JS)
    return int(overflow), list(culprits)


@pytest.fixture(scope="module")
def ready(browser: Browser, stack: Stack) -> Iterator[dict[str, object]]:
    """A signed-in storage state with the tenant synced (as the journey leaves it, or prepared here)."""
    context = browser.new_context(base_url=stack.base_url, locale="fr-FR", timezone_id="Europe/Paris")
    context.set_default_timeout(20_000)
    page = context.new_page()
    log_in(page, stack)
    page.goto("/admin/google/chromeos/")
    if page.locator("#authorize-button").count() and page.locator("#authorize-button").is_disabled():
        configure_ldap(page, stack)
        page.goto("/admin/google/chromeos/")
    if not page.locator("#domain-info").count():
        authorize_google(page, stack, success="Configuration réussie de ChromeOS")
    page.goto("/admin/google/chromeos/")
    if page.locator("#device-count").inner_text().strip() in ("", "0"):
        sync_now(page, stack, expected_devices=GOOGLE_DEVICES)
    switch_language(page, "fr")
    page.goto("/devices/")
    device = page.locator(".device-table tbody tr a").first.get_attribute("href")
    page.goto("/politiques/")
    reports = page.locator("#reports a")
    report = f"{reports.first.get_attribute('href')}?ou=/" if reports.count() else None
    yield {"storage": context.storage_state(), "device": device, "report": report}
    context.close()


def _page(
    browser: Browser, stack: Stack, ready: dict[str, object], viewport: ViewportSize, lang: str
) -> Page:
    context = browser.new_context(
        base_url=stack.base_url,
        locale="fr-FR" if lang == "fr" else "en-GB",
        viewport=viewport,
        timezone_id="Europe/Paris",
        storage_state=ready["storage"],  # type: ignore[arg-type]
        bypass_csp=True,  # axe's script is injected by the test, not served by the console
    )
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto("/")
    if (page.locator("html").get_attribute("lang") or "fr") != lang:
        switch_language(page, lang)
    return page


@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize("size", ["1440", "390"])
def test_every_main_page_is_clean_for_axe_and_never_scrolls_sideways(
    browser: Browser, stack: Stack, ready: dict[str, object], size: str, lang: str
) -> None:
    page = _page(browser, stack, ready, SIZES[size], lang)
    problems: list[str] = []
    for name, url in PAGES.items():
        href = str(ready["device"]) if url == "DEVICE" else str(ready["report"]) if url == "REPORT" else url
        if href == "None":
            continue  # no Blueprint or app in this tenant: no report page to check
        page.goto(href)
        page.wait_for_load_state("networkidle")
        overflow, culprits = _horizontal_overflow(page)
        if overflow > 1:
            problems.append(f"{href}: the page scrolls sideways by {overflow}px ({', '.join(culprits)})")
        problems += [f"{href}: {v}" for v in axe_violations(page)]
        page.screenshot(path=str(SCREENSHOTS / f"{lang}-{size}-{name}.png"))
    page.context.close()
    assert not problems, "\n".join(problems)


def test_the_fleet_table_shows_15_rows_and_the_last_sync_above_the_fold(
    browser: Browser, stack: Stack, ready: dict[str, object]
) -> None:
    page = _page(browser, stack, ready, DESKTOP, "fr")
    page.goto("/devices/")
    rows = page.evaluate(
        """() => [...document.querySelectorAll('.device-table tbody tr')]
                 .filter(r => r.getBoundingClientRect().bottom <= window.innerHeight).length"""
    )
    assert rows >= 15, f"only {rows} device rows above the fold at 1440x900"
    header = page.locator(".device-table thead th", has_text="Dernière synchro")
    box = header.bounding_box()
    assert box is not None and box["x"] + box["width"] <= DESKTOP["width"], (
        f"« Dernière synchro » off-screen: {box}"
    )
    # The header stays while the table scrolls.
    page.locator(".table-scroll").evaluate("el => el.scrollTop = 400")
    after = header.bounding_box()
    assert after is not None and abs(after["y"] - box["y"]) < 2, "the header scrolled away"
    page.context.close()


def test_the_phone_layout_folds_the_menu_and_keeps_sign_out_on_screen(
    browser: Browser, stack: Stack, ready: dict[str, object]
) -> None:
    page = _page(browser, stack, ready, PHONE, "fr")
    page.goto("/audit/")
    sidebar = page.locator("#sidebar")
    expect(sidebar).to_be_hidden()
    logout = page.get_by_role("button", name="Se déconnecter")
    box = logout.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    toggle = page.get_by_role("button", name="Menu")
    toggle.click()
    expect(sidebar).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(sidebar.get_by_role("link", name="Journal d'audit")).to_have_attribute("aria-current", "page")
    sidebar.get_by_role("link", name="Périphériques").click()
    expect(page).to_have_url(re.compile(r"/devices/$"))
    expect(page.locator("#sidebar")).to_be_hidden()
    page.context.close()
