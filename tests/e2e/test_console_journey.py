"""The console as an admin uses it, in Chromium, against the whole stack (see conftest.py).

The module runs in one xdist worker (``xdist_group`` with ``--dist loadgroup``): its tests share one stack.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.a11y import assert_page_accessible, assert_skip_link
from tests.e2e.journey import (
    authorize_google,
    configure_ldap,
    log_in,
    shot,
    sidebar_links,
    switch_language,
    visit_checked,
)
from tests.e2e.stack import Stack

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("e2e")]


def _slug(href: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", href.strip("/").lower()) or "accueil"


def test_login_page_is_french_and_accessible(page: Page, stack: Stack) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/"))
    expect(page.locator("h1")).to_have_text("Connexion")
    assert_page_accessible(page, "fr")
    assert_skip_link(page)
    shot(page, "fr-connexion")

    page.locator("input[name=username]").fill(stack.admin_email)
    page.locator("input[name=password]").fill("not-the-password")
    page.locator("form:has(input[name=password]) button[type=submit]").click()
    expect(page.locator("[role=alert]")).to_contain_text("mot de passe")
    expect(page).to_have_url(re.compile(r"/login/"))


def test_every_sidebar_page_in_french_then_english(page: Page, stack: Stack) -> None:
    log_in(page, stack)
    assert_page_accessible(page, "fr")
    expect(page.locator("h1")).to_have_text("Accueil")
    links = sidebar_links(page)
    labels = [label for label, _ in links]
    for expected in ("Accueil", "Configurations (Blueprints)", "Applis", "Journal d'audit"):
        assert expected in labels, f"{expected!r} missing from the sidebar: {labels}"
    for _label, href in links:
        visit_checked(page, href, "fr", screenshot=f"fr-{_slug(href)}")
        assert_skip_link(page)

    switch_language(page, "en")
    expect(page.locator("aside nav")).to_contain_text("Devices")
    english = sidebar_links(page)
    assert [href for _, href in english] == [href for _, href in links]
    assert "Audit log" in [label for label, _ in english], english
    for _label, href in english:
        visit_checked(page, href, "en", screenshot=f"en-{_slug(href)}")

    switch_language(page, "fr")
    expect(page.locator("aside nav")).to_contain_text("Périphériques")


def test_french_journey(page: Page, stack: Stack) -> None:
    """The issue's journey, in French, step by step as an admin does it."""
    log_in(page, stack)

    # Before LDAP: Gestion ChromeOS says what is missing and "Autoriser Google" is disabled with the reason.
    page.goto("/admin/google/chromeos/")
    expect(page.locator("#authorize-button")).to_be_disabled()
    expect(page.locator("#authorize-blocker")).to_be_visible()

    configure_ldap(page, stack)
    visit_checked(page, "/admin/ldap/", "fr", screenshot="fr-journey-ldap")

    # Prerequisites met: every LDAP prerequisite OK, the button enabled.
    visit_checked(page, "/admin/google/chromeos/", "fr")
    prerequisites = page.locator("#prerequisites")
    expect(prerequisites.locator(".status.ko")).to_have_count(0)
    expect(prerequisites.locator(".status.ok")).to_have_count(2)
    expect(page.locator("#authorize-button")).to_be_enabled()
    shot(page, "fr-journey-prerequis")

    authorize_google(page, stack, success="Configuration réussie de ChromeOS")
    assert_page_accessible(page, "fr")
    shot(page, "fr-gestion-chromeos-autorisee")
