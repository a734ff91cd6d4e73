"""The LDAP part of the journey in Chromium, once with Active Directory (the Samba AD DC of ``samba_ad``).

An AD admin signs in by UPN (through the nested admin group), syncs the directory from the LDAP page and adds
every OU. The Google part of the journey runs on OpenLDAP in ``tests/e2e`` (its stack serves slapd).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e.stack import CHROMIUM, CHROMIUM_ARGS, VIEWPORT

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def ad_browser() -> Iterator[Browser]:
    # Playwright's sync API keeps an event loop in this thread while it runs; the test's ORM calls (and the
    # database flush after it) are still synchronous.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def ad_page(ad_browser: Browser, live_server) -> Iterator[Page]:  # type: ignore[no-untyped-def]
    context = ad_browser.new_context(
        base_url=live_server.url, locale="fr-FR", viewport=VIEWPORT, timezone_id="Europe/Paris"
    )
    context.set_default_timeout(30_000)
    yield context.new_page()
    context.close()


def test_ad_admin_signs_in_by_upn_syncs_and_adds_every_ou(ad_page, tenant, make_ad_directory, ad_dir) -> None:  # type: ignore[no-untyped-def]
    make_ad_directory(tenant)
    page = ad_page
    admin = ad_dir.user("cdurand")
    page.goto("/login/")
    page.locator("input[name=tenant]").fill(tenant.slug)
    page.locator("input[name=username]").fill(admin.upn)
    page.locator("input[name=password]").fill(ad_dir.user_password)
    page.locator("form:has(input[name=password]) button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/$"))
    # Named by the directory (given name and surname), with the role of the nested admin group.
    expect(page.locator("header .user")).to_contain_text(admin.display_name)
    expect(page.locator("header .user")).to_contain_text("Administrat")

    page.goto("/admin/ldap/")
    page.get_by_role("button", name="Synchroniser").click()
    expect(page.locator("h1")).to_have_text("Synchronisation LDAP")
    expect(page.locator("#run-body dd").first).to_have_text("Réussie", timeout=120_000)
    ou_total = len(ad_dir.all_ous())
    expect(page.locator("#run-body")).to_contain_text(f"{ou_total} lues : {ou_total} ajoutées")

    page.goto("/admin/ldap/")
    page.get_by_label("Toutes les unités organisationnelles").check()
    page.get_by_role("button", name="Enregistrer le choix").click()
    expect(page.locator(".messages")).to_contain_text("Unités organisationnelles ajoutées enregistrées.")
    expect(page.locator("section[aria-labelledby=state-title]")).to_contain_text(f"{ou_total} OU")
