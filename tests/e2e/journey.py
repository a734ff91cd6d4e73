"""Steps of an admin's journey. Labels are the French ones unless a step takes the page's language."""

from __future__ import annotations

import re
import time
from typing import Any, Protocol

from playwright.sync_api import FloatRect, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.e2e.a11y import assert_dialog_keyboard, assert_page_accessible
from tests.e2e.stack import SCREENSHOTS, SYNC_PAGE_SIZE, Stack

SUCCEEDED = {"fr": "Réussie", "en": "Succeeded"}


class GoogleSide(Protocol):
    """The Google emulator a journey authorizes and syncs against: the e2e ``Stack``'s, or a test's own."""

    emulator_url: str
    google_domain: str

    def emulator(self, path: str, body: dict[str, Any] | None = None) -> Any: ...


def shot(page: Page, name: str, *, start: str | None = None) -> None:
    """Save the page as ``test-artifacts/screenshots/<name>.png``: the 1280x800 viewport, or with ``start`` the
    1280x800 of the page beginning just above that element (a table below a tall form)."""
    path = str(SCREENSHOTS / f"{name}.png")
    if start is None:
        page.screenshot(path=path)
        return
    box = page.locator(start).first.bounding_box()
    assert box is not None, f"{start} is not on the page"
    top = max(0.0, box["y"] + page.evaluate("() => window.scrollY") - 24)
    viewport = page.viewport_size or {"width": 1280, "height": 800}
    clip: FloatRect = {"x": 0, "y": top, "width": viewport["width"], "height": viewport["height"]}
    page.screenshot(path=path, full_page=True, clip=clip)


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


def configure_ldap(page: Page, stack: Stack) -> None:
    """Admin > LDAP: server settings, "Tester la connexion", save, sync, add every OU."""
    directory = stack.directory
    page.goto("/admin/ldap/")

    def fill_form() -> None:
        page.get_by_label("Adresse du serveur").fill(stack.slapd.uri)
        page.get_by_label("DN de liaison").fill(directory.service_bind_dn)
        page.get_by_label("Mot de passe de liaison").fill(directory.service_password)
        # "DN de base" alone: the form also has "DN de base des groupes"; a required label ends with " *".
        page.get_by_role("textbox", name=re.compile(r"^DN de base( \*)?$")).fill(directory.base_dn)

    fill_form()
    page.get_by_role("button", name="Tester la connexion").click()
    expect(page.get_by_text("la connexion fonctionne")).to_be_visible()
    # The password is never sent back to the browser: type it again to save.
    fill_form()
    page.get_by_role("button", name="Enregistrer", exact=True).click()
    expect(page.locator(".messages")).to_contain_text("Configuration LDAP enregistrée.")

    page.get_by_role("button", name="Synchroniser").click()
    expect(page.locator("h1")).to_have_text("Synchronisation LDAP")
    # The run page refreshes itself (htmx) until the worker has finished.
    expect(page.locator("#run-body dd").first).to_have_text("Réussie", timeout=60_000)
    # Every OU of the directory (the demo's tree, plus its Groupes and Services OUs) read and added.
    ou_total = len(directory.ous) + 2
    expect(page.locator("#run-body")).to_contain_text(f"{ou_total} lues : {ou_total} ajoutées")
    assert_page_accessible(page, "fr")

    page.goto("/admin/ldap/")
    page.get_by_label("Toutes les unités organisationnelles").check()
    page.get_by_role("button", name="Enregistrer le choix").click()
    expect(page.locator(".messages")).to_contain_text("Unités organisationnelles ajoutées enregistrées.")
    expect(page.locator("section[aria-labelledby=state-title]")).to_contain_text(f"{ou_total} OU")


def authorize_google(
    page: Page, stack: GoogleSide, *, button: str = "Autoriser Google", success: str
) -> None:
    """ "Autoriser Google", then the consent page at Google (the emulator): the account, the scopes, Allow."""
    page.goto("/admin/google/chromeos/")
    page.get_by_role("button", name=button, exact=True).click()
    expect(page).to_have_url(re.compile("^" + re.escape(stack.emulator_url) + "/"))
    expect(page.locator("#account")).to_have_text(f"admin@{stack.google_domain}")
    expect(page.locator("#scopes")).to_contain_text("admin.directory.device.chromeos")
    page.locator("#submit_approve_access").click()
    expect(page).to_have_url(re.compile(r"/admin/google/chromeos/$"))
    expect(page.locator(".messages")).to_contain_text(success)
    expect(page.locator("#domain-info")).to_contain_text(stack.google_domain)


def sync_now(page: Page, stack: GoogleSide, *, expected_devices: int, live: bool = True) -> list[int]:
    """ "Synchro maintenant" and its live progress until the result; the device counts seen while it ran.

    Google answers each listing page slowly here (an emulator latency, as over a real network), so the run
    lasts a few seconds and the page must show it moving, not only its end. ``live=False`` for a web server
    that runs tasks eagerly (pytest's live server): the run ends within the click, only its result is shown.
    """
    if not live:
        page.goto("/admin/google/chromeos/")
        page.locator("#sync-now").click()
        expect(page.locator("#sync-result-status")).to_have_text(SUCCEEDED[page_lang(page)], timeout=60_000)
        return []
    pages = -(-expected_devices // SYNC_PAGE_SIZE)
    stack.emulator("/faults", {"method": "directory.chromeosdevices.list", "delay_ms": 1200, "count": pages})
    page.goto("/admin/google/chromeos/")
    page.locator("#sync-now").click()
    progress = page.locator("#sync-progress")
    expect(progress).to_be_visible()
    seen: list[int] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            text = page.locator("#sync-devices").inner_text(timeout=500)
        except PlaywrightTimeoutError:
            break  # the progress block was replaced by the result
        if not seen or seen[-1] != int(text):
            seen.append(int(text))
        time.sleep(0.2)
    expect(page.locator("#sync-result-status")).to_have_text(SUCCEEDED[page_lang(page)], timeout=30_000)
    return seen


def page_lang(page: Page) -> str:
    return page.locator("html").get_attribute("lang") or "fr"


def device_action(page: Page, label: str, confirm: str) -> None:
    """From a device's page: an action button, its confirmation page, then the job page until it succeeded."""
    page.get_by_role("button", name=label, exact=True).click()
    expect(page.locator("h1")).to_contain_text(label)
    assert_page_accessible(page, page_lang(page))
    page.get_by_role("button", name=confirm).click()
    expect(page.locator("[data-job-status]")).to_have_attribute(
        "data-job-status", "succeeded", timeout=30_000
    )
    assert_page_accessible(page, page_lang(page))


def emulator_device(stack: Stack, device_id: str) -> dict[str, object]:
    devices = stack.emulator("/devices")["devices"]
    return next(d for d in devices if d["deviceId"] == device_id)


def create_blueprint(page: Page, name: str, settings: dict[str, str] | None = None) -> None:
    """A new Blueprint; ``settings``: typed ChromeOS settings, {field label: option label}."""
    page.goto("/configurations/nouvelle/")
    assert_page_accessible(page, "fr")
    page.get_by_label("Nom").fill(name)
    for label, option in (settings or {}).items():
        page.get_by_label(label, exact=True).select_option(label=option)
    page.get_by_role("button", name="Enregistrer", exact=True).click()
    expect(page.locator("main table")).to_contain_text(name)


def create_app(page: Page, name: str, identifier: str) -> None:
    page.goto("/applis/nouvelle/")
    assert_page_accessible(page, "fr")
    page.get_by_label("Nom").fill(name)
    page.get_by_label("Type").select_option("chrome")
    page.get_by_label("Identifiant").fill(identifier)
    page.get_by_role("button", name="Enregistrer", exact=True).click()
    expect(page.locator("main table")).to_contain_text(name)


def wait_for_scheduled_sync(page: Page, *, devices: int, trigger: str, timeout: float = 90) -> None:
    """Reload Gestion ChromeOS until beat's sync (not a manual one) has brought the device count to ``devices``."""
    deadline = time.monotonic() + timeout
    page.goto("/admin/google/chromeos/")
    while True:
        count = page.locator("#device-count").inner_text()
        history = page.locator("#sync-history tbody").inner_text()
        if count == str(devices) and trigger in history:
            return
        assert time.monotonic() < deadline, f"no scheduled sync within {timeout}s: {count} devices\n{history}"
        time.sleep(2)
        page.reload()


def remove_integration(page: Page, stack: Stack) -> None:
    """ "Supprimer": the dialog (checked from the keyboard, then Esc), again, OK; the removal's result."""
    page.goto("/admin/google/chromeos/")
    opener = page.locator("[data-removal-open]")
    expect(opener).to_have_text("Supprimer")
    assert_dialog_keyboard(page, opener, "fr")
    opener.click()
    dialog = page.locator("dialog[open]")
    expect(dialog).to_be_visible()
    shot(page, "fr-suppression-confirmation")
    dialog.get_by_role("button", name="OK", exact=True).click()
    result = page.locator("#removal-panel .message.success")
    expect(result).to_contain_text(stack.google_domain, timeout=60_000)
    assert stack.emulator("/state")["authorizations"] == [], "the token was not revoked at Google"


def assign_to_org_unit(page: Page, ou_path: str, subject: str) -> None:
    """Affectations ChromeOS: assign a Blueprint or an app to a supported OU, then apply it at Google."""
    page.goto("/politiques/")
    assert_page_accessible(page, "fr")
    page.get_by_label("Unité organisationnelle").select_option(label=ou_path)
    page.get_by_label("Configuration ou appli").select_option(label=subject)
    page.locator("#assign-button").click()
    expect(page.locator("#assignment-ou")).to_have_text(ou_path)
    assert_page_accessible(page, "fr")
    page.locator("#apply-button").click()
    expect(page.locator("#assignment-state-label")).to_have_text("Appliquée", timeout=30_000)
