"""``{% google_error text %}``: a stored Google error in the admin's words, the raw detail behind a toggle
(``chromeos/google/explain.py``). A text no rule knows is shown as it is."""

from __future__ import annotations

from typing import Any

from django import template

from chromeos.google.explain import explain_google_error

register = template.Library()


@register.inclusion_tag("chromeos/_google_error.html")
def google_error(text: str | None, prefix: str = "") -> dict[str, Any]:
    return {"explained": explain_google_error(text or ""), "text": text or "", "prefix": prefix}
