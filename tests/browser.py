"""Chromium on pytest-django's live server, already signed in: for browser tests of a single page or flow
(the whole admin journey has its own stack in ``tests/e2e``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import connections
from django.test import Client

from tests.e2e.stack import CHROMIUM, CHROMIUM_ARGS


@contextlib.contextmanager
def signed_in_page(live_server_url: str, user: Any, *, javascript: bool = True) -> Iterator[Any]:
    """A French page of Chromium carrying ``user``'s session cookie.

    The caller sets ``DJANGO_ALLOW_ASYNC_UNSAFE``: Playwright's sync API keeps an asyncio loop on this thread, and
    the test's own ORM calls are still plain synchronous code, run while the browser waits.
    """
    from playwright.sync_api import sync_playwright

    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(
            base_url=live_server_url, locale="fr-FR", java_script_enabled=javascript
        )
        context.add_cookies(
            [{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": live_server_url}]
        )
        try:
            yield context.new_page()
        finally:
            browser.close()
            # Django keys connections by async context: those opened under Playwright's loop are not the test's
            # own and would outlive it (keeping the test database busy).
            connections.close_all()
