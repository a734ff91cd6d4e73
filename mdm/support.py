"""The support cockpit on a tenant's page in ``/support/``: what each integration says about the tenant.

Integrations register ``(template, context)`` panels (``register_support_panel``); the tenant's change page in
django-admin renders them with ``context(tenant)``. Reads are cross-tenant (``unscoped``): support has no
current tenant. Times are shown in the tenant's zone (``Tenant.time_zone``), as its users see them, and the page
says which zone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mdm.models import Tenant


@dataclass(frozen=True)
class SupportPanel:
    template: str
    context: Callable[[Tenant], dict[str, Any]]


SUPPORT_PANELS: list[SupportPanel] = []


def register_support_panel(template: str, context: Callable[[Tenant], dict[str, Any]]) -> None:
    if not any(p.template == template for p in SUPPORT_PANELS):
        SUPPORT_PANELS.append(SupportPanel(template, context))


def support_panels(tenant: Tenant) -> list[dict[str, Any]]:
    return [{"template": p.template, "context": p.context(tenant)} for p in SUPPORT_PANELS]
