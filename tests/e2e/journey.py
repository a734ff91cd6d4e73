"""Steps of an admin's journey, shared by the French and the English passes."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.a11y import assert_page_accessible
from tests.e2e.stack import SCREENSHOTS, Stack


def shot(page: Page, name: str) -> None:
    """Save the page as ``test-artifacts/screenshots/<name>.png`` (the visible 1280x800 viewport)."""
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def log_in(page: Page, stack: Stack) -> None:
    page.goto("/login/")
    page.locator("input[name=username]").fill(stack.admin_email)
    page.locator("input[name=password]").fill(stack.admin_password)
    page.locator("form:has(input[name=password]) button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator("header .tenant-name")).to_be_visible()


def switch_language(page: Page, code: str) -> None:
    """Use the language selector of the top bar, as an admin would."""
    with page.expect_navigation():
        page.locator("#lang-select").select_option(code)
    expect(page.locator("html")).to_have_attribute("lang", code)


def sidebar_links(page: Page) -> list[tuple[str, str]]:
    """(label, href) of every page the sidebar offers, in order."""
    links = page.locator("aside nav a")
    result = []
    for index in range(links.count()):
        link = links.nth(index)
        href = link.get_attribute("href") or ""
        if href and href != "#":
            result.append((link.inner_text().strip(), href))
    return result


def visit_checked(page: Page, href: str, lang: str, screenshot: str | None = None) -> None:
    """Open a page, check it answered and is accessible, screenshot it."""
    response = page.goto(href)
    assert response is not None and response.ok, f"{href} answered {response and response.status}"
    assert_page_accessible(page, lang)
    if screenshot:
        shot(page, screenshot)
