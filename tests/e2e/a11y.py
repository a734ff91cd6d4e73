"""Accessibility basics of a console page, checked in the real browser.

The names and roles come from Chromium's own accessibility tree (the DevTools protocol's
``Accessibility.getFullAXTree``): what a screen reader would announce, not a guess from the HTML.

* ``page_problems(page, lang)``: every form control and link has an accessible name, images have text, the page
  has its landmarks (one ``main``, a ``banner`` header, every ``navigation`` named), exactly one ``h1``, a title
  and ``<html lang>``. Returns the problems found (an empty list is a pass) so a test reports them all at once.
* ``assert_page_accessible(page, lang)``: the same, failing with the list.
* ``assert_dialog_keyboard(page, opener)``: a dialog opens with Enter on its opener, takes the focus, and Esc
  closes it and gives the focus back.
* ``assert_skip_link(page)``: the first focusable element is a "skip to content" link that shows on focus.
"""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Locator, Page, expect

# Roles a user operates: each must have a name, or a screen reader announces "button" and nothing else.
NAMED_ROLES = {
    "button",
    "checkbox",
    "combobox",
    "link",
    "listbox",
    "menuitem",
    "radio",
    "searchbox",
    "slider",
    "spinbutton",
    "switch",
    "tab",
    "textbox",
    "image",
    "img",
}


def _ax_nodes(page: Page) -> list[dict[str, Any]]:
    session = page.context.new_cdp_session(page)
    try:
        session.send("Accessibility.enable")
        return list(session.send("Accessibility.getFullAXTree")["nodes"])
    finally:
        session.detach()


def _describe(page: Page, backend_node_id: int | None) -> str:
    if backend_node_id is None:
        return "?"
    session = page.context.new_cdp_session(page)
    try:
        html = session.send("DOM.getOuterHTML", {"backendNodeId": backend_node_id})["outerHTML"]
    except Exception:  # the node went away between the two calls
        return "?"
    finally:
        session.detach()
    return " ".join(html.split())[:160]


def _value(node: dict[str, Any], key: str) -> str:
    return str((node.get(key) or {}).get("value") or "").strip()


def page_problems(page: Page, lang: str | None = None) -> list[str]:
    problems: list[str] = []
    nodes = [node for node in _ax_nodes(page) if not node.get("ignored")]
    for node in nodes:
        role = _value(node, "role")
        if role in NAMED_ROLES and not _value(node, "name"):
            problems.append(
                f"{role} without an accessible name: {_describe(page, node.get('backendDOMNodeId'))}"
            )
    roles = [_value(node, "role") for node in nodes]
    if roles.count("main") != 1:
        problems.append(f"expected one main landmark, found {roles.count('main')}")
    if "banner" not in roles:
        problems.append("no banner landmark (a <header> outside <main>)")
    for node in nodes:
        if _value(node, "role") == "navigation" and not _value(node, "name"):
            problems.append(f"navigation without a name: {_describe(page, node.get('backendDOMNodeId'))}")
    h1_count = page.locator("h1:visible").count()
    if h1_count != 1:
        problems.append(f"expected exactly one visible h1, found {h1_count}")
    if not page.title().strip():
        problems.append("empty <title>")
    page_lang = page.locator("html").get_attribute("lang") or ""
    if not page_lang or (lang and page_lang != lang):
        problems.append(f"<html lang> is {page_lang!r}, expected {lang!r}")
    return problems


def assert_page_accessible(page: Page, lang: str | None = None) -> None:
    problems = page_problems(page, lang)
    assert not problems, f"accessibility problems on {page.url}:\n- " + "\n- ".join(problems)


def _focus_in(page: Page, selector: str) -> bool:
    return bool(
        page.evaluate("(s) => !!document.activeElement && !!document.activeElement.closest(s)", selector)
    )


def assert_dialog_keyboard(page: Page, opener: Locator, lang: str | None = None) -> Locator:
    """Open a dialog from the keyboard, check it, close it with Esc; returns the opener for reuse."""
    opener.focus()
    page.keyboard.press("Enter")
    dialog = page.locator("dialog[open]")
    expect(dialog).to_have_count(1)
    expect(dialog).to_be_visible()
    assert _focus_in(page, "dialog[open]"), "the focus did not move into the opened dialog"
    named = dialog.get_attribute("aria-labelledby") or dialog.get_attribute("aria-label")
    assert named, "the dialog has no accessible name (aria-labelledby or aria-label)"
    problems = [p for p in page_problems(page, lang) if "without" in p]
    assert not problems, "controls without a name in the dialog:\n- " + "\n- ".join(problems)
    page.keyboard.press("Escape")
    expect(page.locator("dialog[open]")).to_have_count(0)
    expect(opener).to_be_focused()
    return opener


def assert_skip_link(page: Page) -> None:
    """The skip link is the page's first focusable element, shows on focus and leads to ``main``."""
    first = page.evaluate(
        """() => {
            const el = document.querySelector('a[href], button, input:not([type=hidden]), select, textarea, [tabindex]');
            return el ? el.className : null;
        }"""
    )
    assert first == "skip-link", f"the first focusable element is not the skip link but {first!r}"
    link = page.locator(".skip-link")
    link.focus()
    expect(link).to_be_in_viewport()
    link.press("Enter")
    assert page.evaluate("() => location.hash") == "#main"
