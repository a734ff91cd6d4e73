"""Fixtures of the end-to-end tests: the whole stack (``stack``, see stack.py) and Debian's Chromium.

``browser`` is Debian's Chromium (``/usr/bin/chromium``; Playwright's own browser download does not work here),
launched headless with a new empty profile; ``page`` is a fresh French context (1280x800, its own cookies)
whose relative URLs go to the stack's web server. A failing test gets the tail of every process's log and a
screenshot of its page (``test-artifacts/e2e/``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.e2e.stack import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, VIEWPORT, Stack, running_stack


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    with running_stack() as stack_:
        yield stack_


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On a failing end-to-end test, attach the tail of every process's log and a screenshot of the page."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    funcargs = getattr(item, "funcargs", {})
    stack_ = funcargs.get("stack")
    if isinstance(stack_, Stack):
        report.sections.append(("e2e process logs", stack_.logs()))
    page = funcargs.get("page")
    if isinstance(page, Page) and not page.is_closed():
        path = ARTIFACTS / f"failure-{item.name}.png"
        with contextlib.suppress(Exception):
            page.screenshot(path=str(path), full_page=True)
            report.sections.append(("e2e page", f"{page.url}\nscreenshot: {path}"))


@pytest.fixture(scope="session")
def playwright_() -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_: Playwright) -> Iterator[Browser]:
    browser = playwright_.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def context(browser: Browser, stack: Stack) -> Iterator[BrowserContext]:
    context = browser.new_context(
        base_url=stack.base_url, locale="fr-FR", viewport=VIEWPORT, timezone_id="Europe/Paris"
    )
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext, stack: Stack) -> Iterator[Page]:
    """A fresh page (its own cookies), with the stack's base URL: ``page.goto("/login/")``.

    Any Content-Security-Policy violation Chromium reports on the console fails the test: a blocked script or
    style is a feature silently broken (htmx's live progress, a dialog)."""
    page_ = context.new_page()
    violations: list[str] = []
    page_.on(
        "console",
        lambda message: (
            violations.append(f"{page_.url}: {message.text}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    yield page_
    assert not violations, "Content-Security-Policy violations:\n" + "\n".join(violations)
