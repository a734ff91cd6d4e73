"""``{% removal_panel as removal %}``: the removal panel's state, so that the Gestion ChromeOS page can include
``chromeos/_removal_panel.html`` without its view knowing anything about removals."""

from __future__ import annotations

from typing import Any

from django import template

from chromeos.selectors.removal import RemovalPanel
from chromeos.selectors.removal import removal_panel as select_removal_panel
from mdm.models import User

register = template.Library()


@register.simple_tag(takes_context=True)
def removal_panel(context: dict[str, Any]) -> RemovalPanel | None:
    request = context.get("request")
    user = getattr(request, "user", None)
    if not isinstance(user, User) or user.tenant is None:
        return None
    return select_removal_panel(user.tenant, with_preview=user.is_tenant_admin)
