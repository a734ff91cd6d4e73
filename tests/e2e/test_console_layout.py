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
from tests.e2e.stack import GOOGLE_DEVICES, SCREENSHOTS, Stack, web_without_debug

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
    "parametres": "/admin/parametres/",
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
    # Whole, inside the table's own scrolling box (which clips it before the window's edge), dates included.
    visible = page.locator(".table-scroll").bounding_box()
    assert box is not None and visible is not None
    assert box["x"] + box["width"] <= min(DESKTOP["width"], visible["x"] + visible["width"]), (
        f"« Dernière synchro » cut off: {box}, the table shows up to x={visible['x'] + visible['width']}"
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


def test_the_ou_tree_folds_filters_the_table_and_keeps_back_and_forward(
    browser: Browser, stack: Stack, ready: dict[str, object]
) -> None:
    page = _page(browser, stack, ready, DESKTOP, "fr")
    page.goto("/devices/")
    # At 1440 px the tree starts folded to a narrow column (every default column stays in view); unfolded, it
    # sits beside the table, and stays unfolded on the next page.
    panel = page.locator(".ou-panel")
    expect(panel).not_to_have_attribute("open", "")
    panel.locator("summary").click()
    page.reload()
    tree = page.locator(".ou-panel .ou-nav")
    expect(tree).to_be_visible()
    problems = axe_violations(page)
    # Beside the table at 1440 px: the tree's right edge is left of the table.
    tree_box, table_box = tree.bounding_box(), page.locator(".table-scroll").bounding_box()
    assert tree_box and table_box and tree_box["x"] + tree_box["width"] <= table_box["x"], (
        tree_box,
        table_box,
    )
    total = int(page.locator(".device-list-title p").inner_text().split()[0])
    # A first-level OU with sub-OUs: folded, its button says so; the keyboard unfolds it.
    toggle = page.locator(".ou-tree > li > ul > li > .ou-row > .ou-toggle").first
    expect(toggle).to_have_attribute("aria-expanded", "false")
    children = page.locator("#" + str(toggle.get_attribute("aria-controls")))
    expect(children).to_be_hidden()
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(children).to_be_visible()
    page.keyboard.press("Space")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    # A link filters the table (in the URL) with as many rows as its count says.
    link = children.locator("xpath=..").locator(".ou-row > a").first
    count = int(link.locator(".ou-count [aria-hidden]").inner_text().split()[0])
    link.click()
    expect(page).to_have_url(re.compile(r"org_unit=%2F"))
    shown = int(page.locator(".device-list-title p").inner_text().split()[0])
    assert shown == count <= total
    expect(page.locator('.ou-tree a[aria-current="true"]')).to_have_count(1)
    page.go_back()
    expect(page).to_have_url(re.compile(r"/devices/$"))
    page.go_forward()
    expect(page).to_have_url(re.compile(r"org_unit=%2F"))
    page.context.close()
    assert not problems, "\n".join(problems)

    # On a phone the tree starts folded, above the table.
    phone = _page(browser, stack, ready, PHONE, "fr")
    phone.goto("/devices/")
    panel = phone.locator(".ou-panel")
    expect(panel).not_to_have_attribute("open", "")
    panel_box, table_box = panel.bounding_box(), phone.locator(".table-scroll").bounding_box()
    assert panel_box and table_box and panel_box["y"] + panel_box["height"] <= table_box["y"]
    phone.context.close()


def test_a_saved_view_is_found_again_in_the_views_menu(
    browser: Browser, stack: Stack, ready: dict[str, object]
) -> None:
    page = _page(browser, stack, ready, DESKTOP, "fr")
    page.goto("/devices/?status=ACTIVE&sort=last_sync&dir=desc")
    menu = page.locator(".views-menu")
    menu.locator("summary").click()
    problems = axe_violations(page)  # the menu open: its form and lists are clean too
    page.get_by_label("Enregistrer la vue actuelle sous le nom").fill("Actifs récents")
    page.get_by_label("Partager avec toute l'organisation").check()
    page.get_by_role("button", name="Enregistrer la vue").click()
    expect(page).to_have_url(re.compile(r"status=ACTIVE&sort=last_sync&dir=desc$"))
    page.goto("/devices/")
    page.locator(".views-menu summary").click()
    page.locator(".views-panel").get_by_role("link", name="Actifs récents", exact=True).click()
    expect(page).to_have_url(re.compile(r"status=ACTIVE&sort=last_sync&dir=desc$"))
    page.context.close()
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def production_web(stack: Stack) -> Iterator[str]:
    with web_without_debug(stack) as url:
        yield url


@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize("size", ["1440", "390"])
def test_the_branded_404_page_is_clean_for_axe(
    browser: Browser, stack: Stack, ready: dict[str, object], production_web: str, size: str, lang: str
) -> None:
    """The stack's server runs with DEBUG on (Django's technical 404); the branded page is checked on a
    second server of the same stack with DEBUG off, signed in (same sessions) and anonymous."""
    page = _page(browser, stack, ready, SIZES[size], lang)
    context = page.context
    for signed_in in (True, False):
        if not signed_in:
            context.clear_cookies()
        response = page.goto(production_web + "/cette-page-n-existe-pas/")
        assert response is not None and response.status == 404
        expect(page.locator("#error-title")).to_have_text(
            "Page introuvable" if lang == "fr" else "Page not found"
        )
        assert (page.locator("html").get_attribute("lang") or "") == lang
        assert "URLconf" not in page.content()  # not Django's technical page
        overflow, culprits = _horizontal_overflow(page)
        problems = [f"404: the page scrolls sideways by {overflow}px ({culprits})"] if overflow > 1 else []
        problems += [f"404 ({'signed in' if signed_in else 'anonymous'}): {v}" for v in axe_violations(page)]
        page.screenshot(path=str(SCREENSHOTS / f"{lang}-{size}-404{'' if signed_in else '-anonyme'}.png"))
        assert not problems, "\n".join(problems)
    context.close()


@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize("size", ["1440", "390"])
def test_a_bulk_preview_is_clean_for_axe_and_never_scrolls_sideways(
    browser: Browser, stack: Stack, ready: dict[str, object], size: str, lang: str
) -> None:
    """A move of three devices prepared from the fleet table, then « Prévisualiser »: each device's current → new
    unit and the grouped summary, checked like every main page (the draft is left to expire, nothing is sent)."""
    page = _page(browser, stack, ready, SIZES[size], lang)
    page.goto("/devices/")
    boxes = page.locator(".device-table tbody input[type=checkbox]")
    for index in range(3):
        boxes.nth(index).check()
    page.locator("#bulk-action").select_option("move")
    page.locator("#device-actions button[name=scope][value=selection]").click()
    page.wait_for_url("**/devices/actions/*/")
    form = page.locator("form.confirm-form")
    if form.locator("select").count():
        form.locator("select").first.select_option(index=1)
    else:
        form.locator("input[type=text], input:not([type])").first.fill("/Paris")
    page.locator("#preview-button").click()
    expect(page.locator("#change-summary li").first).to_be_visible()
    overflow, culprits = _horizontal_overflow(page)
    problems = (
        [f"the preview scrolls sideways by {overflow}px ({', '.join(culprits)})"] if overflow > 1 else []
    )
    problems += axe_violations(page)
    page.screenshot(path=str(SCREENSHOTS / f"{lang}-{size}-apercu-deplacement.png"))
    page.context.close()
    assert not problems, "\n".join(problems)
