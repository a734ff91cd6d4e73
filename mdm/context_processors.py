from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from mdm.models import User
from mdm.permissions import can_administer, can_operate

# Sidebar entry → URL name of its page; every page under that page's path belongs to the entry.
NAV_SECTIONS = (
    ("devices", "chromeos:device_list"),
    ("blueprints", "mdm:blueprint_list"),
    ("apps", "mdm:app_list"),
    ("settings", "mdm:settings"),
    ("chromeos", "chromeos:manage"),
    ("policies", "chromeos:policies"),
    ("ldap", "ldap_sync:directory"),
    ("audit", "mdm:audit"),
    ("alerts", "ops:alerts"),
)


def nav_section(path: str) -> str:
    """The sidebar entry the page at ``path`` belongs to ("" if none): the one whose URL is its longest prefix."""
    if path == reverse("home"):
        return "home"
    best, best_len = "", 0
    for key, name in NAV_SECTIONS:
        try:
            prefix = reverse(name)
        except NoReverseMatch:
            continue
        if path.startswith(prefix) and len(prefix) > best_len:
            best, best_len = key, len(prefix)
    return best


def console(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if not isinstance(user, User) or not user.is_authenticated:
        return {}
    return {
        "current_tenant": user.tenant,
        "can_operate": can_operate(user),
        "can_administer": can_administer(user),
        "nav_section": nav_section(request.path),
    }
