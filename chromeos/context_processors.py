"""The ChromeOS integration's part of every page's context: its alert in the shell (see ``base.html``)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from chromeos.selectors.integration import integration_alert
from mdm.models import User


def integration_status(request: HttpRequest) -> dict[str, Any]:
    """``integration_alert``: re-authorization required, removal in progress or failed (the hourly sync is
    suspended), on every page, not only on Gestion ChromeOS. Lazy: pages that do not render the shell (htmx
    partials, downloads) never run its query."""
    user = getattr(request, "user", None)
    if not isinstance(user, User) or not user.is_authenticated or user.tenant_id is None:
        return {}
    tenant_id = user.tenant_id
    return {"integration_alert": SimpleLazyObject(lambda: integration_alert(tenant_id))}
