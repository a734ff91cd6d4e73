"""Accueil: the panels integrations add to the home page.

An integration registers ``(template, context)`` in its ``AppConfig.ready``; the home page renders every panel
with ``context(tenant, user)``. The core knows no integration: a tenant without one sees the core's counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mdm.models import Tenant, User


@dataclass(frozen=True)
class HomePanel:
    template: str
    context: Callable[[Tenant, User], dict[str, Any]]


HOME_PANELS: list[HomePanel] = []


def register_home_panel(template: str, context: Callable[[Tenant, User], dict[str, Any]]) -> None:
    if not any(p.template == template for p in HOME_PANELS):
        HOME_PANELS.append(HomePanel(template, context))


def home_panels(tenant: Tenant, user: User) -> list[dict[str, Any]]:
    return [{"template": p.template, "context": p.context(tenant, user)} for p in HOME_PANELS]
