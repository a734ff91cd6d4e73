"""The admin's journey in Chromium, once with Active Directory (the Samba AD DC of ``samba_ad``).

An AD admin signs in by UPN (through the nested admin group), syncs the directory from the LDAP page, adds every
OU, authorizes Google on the emulator's consent page (its OU tree mirrors the AD's, as Google Cloud Directory Sync
leaves it) and syncs the devices, whose OUs are then supported (linked to the AD's OUs). The steps are the e2e
journey's (``tests/e2e/journey.py``); the web server is pytest's live server (tasks run eagerly), the emulator is
the in-process one of ``google_emulator.pytest_plugin``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import reverse
from playwright.sync_api import Browser, Page, expect, sync_playwright

from google_emulator.pytest_plugin import google_emulator, google_emulator_server  # noqa: F401 - fixtures
from google_emulator.testing import EmulatorHandle
from tests.e2e.journey import authorize_google, sync_now
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


GOOGLE_DOMAIN = "academie.example"
GOOGLE_DEVICES = 60


@dataclass
class EmulatorSide:
    """The in-process emulator as the journey's steps see a stack's (``tests.e2e.journey.GoogleSide``)."""

    handle: EmulatorHandle
    google_domain: str = GOOGLE_DOMAIN

    @property
    def emulator_url(self) -> str:
        return self.handle.url

    def emulator(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.handle.control("POST" if body is not None else "GET", path, json=body)


@pytest.fixture
def ad_google(settings, google_emulator: EmulatorHandle, ad_dir) -> EmulatorSide:  # type: ignore[no-untyped-def]  # noqa: F811
    """The emulator seeded with the AD's OU tree (Google paths: names as they are, slashes between them)."""
    google_emulator.reset(
        domain=GOOGLE_DOMAIN, devices=GOOGLE_DEVICES, org_unit_paths=ad_dir.ou_paths(), seed=16
    )
    settings.GOOGLE_EMULATOR_HOST = google_emulator.host
    settings.GOOGLE_OAUTH_CLIENT_ID = google_emulator.client_id
    settings.GOOGLE_OAUTH_CLIENT_SECRET = google_emulator.client_secret
    # "Autoriser Google" posts to the console, which redirects to the consent page: form-action must allow it.
    policy = settings.CONTENT_SECURITY_POLICY
    directives = {
        **policy["DIRECTIVES"],
        "form-action": [*policy["DIRECTIVES"]["form-action"], google_emulator.url],
    }
    settings.CONTENT_SECURITY_POLICY = {**policy, "DIRECTIVES": directives}
    return EmulatorSide(google_emulator)


def test_ad_admin_signs_in_by_upn_syncs_adds_every_ou_and_syncs_devices_in_ad_ous(  # type: ignore[no-untyped-def]
    ad_page, tenant, make_ad_directory, ad_dir, ad_google
) -> None:
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

    # Gestion ChromeOS: the LDAP prerequisites met, Google authorized on the emulator's consent page.
    page.goto("/admin/google/chromeos/")
    prerequisites = page.locator("#prerequisites")
    expect(prerequisites.locator(".status.ko")).to_have_count(0)
    expect(prerequisites.locator(".status.ok")).to_have_count(2)
    expect(page.locator("#authorize-button")).to_be_enabled()
    authorize_google(page, ad_google, success="Configuration réussie de ChromeOS")

    # A Chromebook in the AD OU whose name needs the most escaping (the console's path differs from Google's).
    escaped_ou = next(path for path in ad_dir.ou_paths() if "\\" in path)
    moved = ad_google.emulator("/devices/move", {"org_unit_path": escaped_ou, "count": 1, "seed": 3})[
        "device_ids"
    ]
    serial = next(
        d["serialNumber"] for d in ad_google.emulator("/devices")["devices"] if d["deviceId"] in moved
    )

    sync_now(page, ad_google, expected_devices=GOOGLE_DEVICES, live=False)
    expect(page.locator("#sync-counts")).to_contain_text(f"{GOOGLE_DEVICES} ajoutés")
    expect(page.locator("#device-count")).to_have_text(str(GOOGLE_DEVICES))

    # Every Google OU mirroring an AD OU is linked to it: supported, names with , # + " ; <> = a backslash and a
    # leading space included. Google's root is the only OU without an AD counterpart.
    google_paths = set(ad_google.emulator("/state")["org_units"])
    assert set(ad_dir.ou_paths()) <= google_paths
    page.goto(reverse("chromeos:policies"))
    rows = page.locator("#org-units .ou-row")
    expect(rows).to_have_count(len(google_paths))
    expect(rows.filter(has=page.locator(".status.ok"))).to_have_count(len(ad_dir.ou_paths()))
    expect(page.locator("#org-units .ou-row[data-path='/'] .status.ko")).to_have_count(1)

    page.goto("/devices/")
    page.get_by_label("Rechercher").fill(serial)
    page.get_by_role("button", name="Filtrer", exact=True).click()
    page.get_by_role("link", name=serial, exact=True).click()
    expect(page.locator("h1")).to_contain_text(serial)
    org_unit = page.locator("dd", has_text=escaped_ou)
    expect(org_unit.locator(".status")).to_have_text("prise en charge")
