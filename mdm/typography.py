"""French typography on French pages: a non-breaking space inside « » and in « Synchro maintenant ».

The catalogs are written with ordinary spaces (the guide's words, easy to type); a line must still never
break between « and its word, nor inside the button's name. One pass over the HTML's text (tags, attribute
values, ``<textarea>``, ``<script>`` and ``<style>`` are left alone, so nothing a form posts back changes).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.translation import get_language

NBSP = "\u00a0"
# A tag (with its attribute values), or a raw-text element kept whole; anything else is text.
_SKIP = re.compile(r"<(textarea|script|style|pre)\b.*?</\1\s*>|<[^>]*>", re.S | re.I)
_FIXES = (
    (re.compile(r"« +"), "«" + NBSP),
    (re.compile(r" +»"), NBSP + "»"),
    # Quoted, the button's name stays whole too (the button itself does not wrap: console.css).
    (re.compile("«" + NBSP + "Synchro maintenant"), "«" + NBSP + "Synchro" + NBSP + "maintenant"),
)


def french_text(text: str) -> str:
    for pattern, replacement in _FIXES:
        text = pattern.sub(replacement, text)
    return text


def french_html(html: str) -> str:
    out, last = [], 0
    for match in _SKIP.finditer(html):
        out.append(french_text(html[last : match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(french_text(html[last:]))
    return "".join(out)


class FrenchTypographyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            (get_language() or "").startswith("fr")
            and not response.streaming
            and response.get("Content-Type", "").startswith("text/html")
            and "«" in response.content.decode(response.charset or "utf-8", errors="ignore")
        ):
            response.content = french_html(response.content.decode(response.charset or "utf-8"))
            if response.has_header("Content-Length"):
                response["Content-Length"] = str(len(response.content))
        return response
