"""The console as an admin uses it, in Chromium, against the whole stack (see conftest.py).

The module runs in one xdist worker (``xdist_group`` with ``--dist loadgroup``): its tests share one stack.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.a11y import assert_page_accessible, assert_skip_link
from tests.e2e.journey import (
    assign_to_org_unit,
    authorize_google,
    configure_ldap,
    create_app,
    create_blueprint,
    device_action,
    emulator_device,
    log_in,
    remove_integration,
    shot,
    sidebar_links,
    switch_language,
    sync_now,
    visit_checked,
    wait_for_scheduled_sync,
)
from tests.e2e.stack import GOOGLE_DEVICES, Stack

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("e2e")]

ENROLLED_LATER = 3
BLUEPRINT = "Écoles primaires"
APP_NAME = "Google Keep"
APP_ID = "hmjkmjkepdijhoojdojkdfohbdgmmhki"
ASSIGNED_OU = "/Paris/Ventes"


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

    # Synchro maintenant: the progress moves while the worker pages through Google, then the result.
    seen = sync_now(page, stack, expected_devices=GOOGLE_DEVICES)
    assert len(seen) >= 2 and seen == sorted(seen), f"the progress did not move: {seen}"
    expect(page.locator("#sync-counts")).to_contain_text(f"{GOOGLE_DEVICES} ajoutés")
    expect(page.locator("#device-count")).to_have_text(str(GOOGLE_DEVICES))  # refreshed without a reload
    assert_page_accessible(page, "fr")
    shot(page, "fr-gestion-chromeos-synchro")
    page.reload()
    expect(page.locator("#device-count")).to_have_text(str(GOOGLE_DEVICES))
    expect(page.locator("#sync-history")).to_contain_text("Manuelle")
    shot(page, "fr-gestion-chromeos")

    # Devices: listed, searched, one disabled and re-enabled, a remote command followed to its end.
    visit_checked(page, "/devices/", "fr", screenshot="fr-peripheriques")
    expect(page.locator("hgroup")).to_contain_text(f"{GOOGLE_DEVICES} périphériques ChromeOS")
    shot(page, "fr-peripheriques-tableau", start="#device-actions")
    target = next(d for d in stack.emulator("/devices")["devices"] if d["status"] == "ACTIVE")
    serial, device_id = target["serialNumber"], target["deviceId"]
    # New Chromebooks enrolled at Google meanwhile: only beat's hourly sync can bring them in.
    stack.emulator("/devices", {"count": ENROLLED_LATER, "org_unit_path": "/Paris/Ventes"})

    page.get_by_label("Rechercher").fill(serial)
    page.get_by_role("button", name="Filtrer", exact=True).click()
    expect(page.locator("hgroup")).to_contain_text("1 périphérique ChromeOS")
    expect(page.locator(".device-table tbody tr")).to_have_count(1)
    page.get_by_role("link", name=serial, exact=True).click()
    expect(page.locator("h1")).to_contain_text(serial)
    assert_page_accessible(page, "fr")
    shot(page, "fr-peripherique-detail")
    device_url = page.url

    device_action(page, "Désactiver", "Confirmer pour 1 périphérique")
    assert emulator_device(stack, device_id)["status"] == "DISABLED"
    page.goto(device_url)
    expect(page.locator(".page-title .status").first).to_have_text("Désactivé")
    device_action(page, "Réactiver", "Confirmer pour 1 périphérique")
    assert emulator_device(stack, device_id)["status"] == "ACTIVE"
    page.goto(device_url)
    expect(page.locator(".page-title .status").first).to_have_text("Actif")

    device_action(page, "Redémarrer", "Confirmer pour 1 périphérique")
    # The worker polls Google's commands.get until a final state; the job page follows it live.
    expect(page.locator(".job-results tbody")).to_contain_text("Exécutée", timeout=45_000)
    shot(page, "fr-commande-executee")
    page.goto(device_url)
    expect(page.locator("#device-commands")).to_contain_text("Exécutée")
    expect(page.locator("#device-commands")).to_contain_text("REBOOT")

    # A Blueprint and an app, assigned to an LDAP-backed OU and applied through the Chrome Policy API.
    create_blueprint(page, BLUEPRINT, settings={"Mode invité": "Désactiver le mode invité"})
    create_app(page, APP_NAME, APP_ID)
    assign_to_org_unit(page, ASSIGNED_OU, BLUEPRINT)
    shot(page, "fr-affectation-appliquee")
    assign_to_org_unit(page, ASSIGNED_OU, f"{APP_NAME} (Extension ou appli web Chrome)")
    at_google = [p for p in stack.emulator("/policies")["policies"] if p["org_unit_path"] == ASSIGNED_OU]
    guest = [p for p in at_google if p["schema"] == "chrome.devices.GuestMode"]
    assert guest and guest[0]["value"].get("guestModeEnabled") is False, at_google
    assert any(p["target_keys"].get("app_id", "").endswith(APP_ID) for p in at_google), at_google
    visit_checked(page, "/politiques/", "fr", screenshot="fr-affectations")
    expect(page.locator(f".ou-row[data-path='{ASSIGNED_OU}'] .assignment")).to_have_count(2)

    # Beat's hourly sync (every few seconds here, through CHROMEOS_SYNC_INTERVAL_SECONDS) brings the new ones.
    wait_for_scheduled_sync(page, devices=GOOGLE_DEVICES + ENROLLED_LATER, trigger="Planifiée")
    shot(page, "fr-gestion-chromeos-synchro-planifiee")

    # Supprimer: the confirmation popup, usable from the keyboard, then OK.
    remove_integration(page, stack)
    shot(page, "fr-gestion-chromeos-supprimee")
    page.goto("/devices/")
    expect(page.locator("hgroup")).to_contain_text(re.compile(r"\b0 périphériques? ChromeOS"))
    expect(page.locator(".device-table tbody")).to_contain_text("Aucun périphérique")
    page.goto("/configurations/")
    expect(page.locator("main table")).to_contain_text(BLUEPRINT)
    page.goto("/applis/")
    expect(page.locator("main table")).to_contain_text(APP_NAME)


def test_english_pass(page: Page, stack: Stack) -> None:
    """Sign in → ChromeOS management → authorize → sync → devices, with the console switched to English."""
    log_in(page, stack)
    page.goto("/admin/google/chromeos/")
    # Runs after the French journey, which leaves LDAP ready and no integration; alone, it prepares that itself.
    if page.locator("#domain-info").count():
        remove_integration(page, stack)
        page.goto("/admin/google/chromeos/")
    if page.locator("#authorize-button").is_disabled():
        configure_ldap(page, stack)
        page.goto("/admin/google/chromeos/")

    switch_language(page, "en")
    expect(page.locator("h1")).to_have_text("ChromeOS management")
    assert_page_accessible(page, "en")
    authorize_google(page, stack, button="Authorize Google", success="ChromeOS setup successful")
    expect(page.locator("#domain-info h2")).to_have_text("Domain information")
    assert_page_accessible(page, "en")
    shot(page, "en-chromeos-management-authorized")

    devices = len(stack.emulator("/devices")["devices"])
    sync_now(page, stack, expected_devices=devices)
    expect(page.locator("#sync-counts")).to_contain_text(f"{devices} added")
    assert_page_accessible(page, "en")

    visit_checked(page, "/devices/", "en", screenshot="en-devices-synced")
    expect(page.locator("hgroup")).to_contain_text(f"{devices} ChromeOS devices")
    page.get_by_label("Search").fill(page.locator(".device-table tbody tr a").first.inner_text())
    page.get_by_role("button", name="Filter", exact=True).click()
    expect(page.locator(".device-table tbody tr")).to_have_count(1)
    page.locator(".device-table tbody tr a").first.click()
    expect(page.get_by_role("heading", name="Remote commands")).to_be_visible()
    assert_page_accessible(page, "en")
    shot(page, "en-device-detail")
