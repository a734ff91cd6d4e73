"""The cross-tenant URL sweep's registry: how to make, in a given tenant, the object each URL pattern names.

Every URL pattern that takes arguments must have an entry here, or ``test_tenant_isolation`` fails: a new
tenant-owned page cannot be added without being swept. Each entry takes a tenant and returns the URL kwargs
of a fresh object owned by that tenant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

from chromeos.models import RemovalRun
from mdm.models import Tenant
from tests.factories import (
    AppFactory,
    BlueprintFactory,
    ChromeOSDeviceFactory,
    DeviceActionJobFactory,
    PackagedAppFactory,
    PolicyAssignmentFactory,
    SavedDeviceViewFactory,
)
from tests.ldap.factories import LdapSyncRunFactory

KwargsMaker = Callable[[Tenant], dict[str, Any]]

SWEEP: dict[str, KwargsMaker] = {
    "mdm:blueprint_edit": lambda t: {"pk": BlueprintFactory(tenant=t).pk},
    "mdm:blueprint_delete": lambda t: {"pk": BlueprintFactory(tenant=t).pk},
    "mdm:app_edit": lambda t: {"pk": AppFactory(tenant=t).pk},
    "mdm:app_delete": lambda t: {"pk": AppFactory(tenant=t).pk},
    "mdm:app_download": lambda t: {"pk": PackagedAppFactory(tenant=t).pk},
    "chromeos:device_detail": lambda t: {"pk": ChromeOSDeviceFactory(tenant=t).pk},
    "chromeos:device_action": lambda t: {"pk": ChromeOSDeviceFactory(tenant=t).pk},
    "chromeos:device_commands": lambda t: {"pk": ChromeOSDeviceFactory(tenant=t).pk},
    "chromeos:device_action_confirm": lambda t: {"pk": DeviceActionJobFactory(tenant=t).pk},
    "chromeos:device_action_cancel": lambda t: {"pk": DeviceActionJobFactory(tenant=t).pk},
    "chromeos:device_job": lambda t: {"pk": DeviceActionJobFactory(tenant=t, status="succeeded").pk},
    "chromeos:device_job_retry_failed": lambda t: {
        "pk": DeviceActionJobFactory(tenant=t, status="partial").pk
    },
    "chromeos:device_view": lambda t: {"pk": SavedDeviceViewFactory(tenant=t).pk},
    "chromeos:device_view_edit": lambda t: {"pk": SavedDeviceViewFactory(tenant=t).pk},
    "chromeos:device_view_delete": lambda t: {"pk": SavedDeviceViewFactory(tenant=t).pk},
    "ldap_sync:run": lambda t: {"pk": LdapSyncRunFactory(tenant=t).pk},
    "ldap_sync:confirm_removals": lambda t: {"pk": LdapSyncRunFactory(tenant=t, status="guarded").pk},
    "ldap_sync:cancel": lambda t: {"pk": LdapSyncRunFactory(tenant=t, status="queued").pk},
    "chromeos:removal_retry": lambda t: {"pk": RemovalRun.unscoped.create(tenant=t, status="failed").pk},
    "chromeos:removal_cancel": lambda t: {"pk": RemovalRun.unscoped.create(tenant=t, status="queued").pk},
    **{
        f"chromeos:{name}": lambda t: {"pk": PolicyAssignmentFactory(tenant=t).pk}
        for name in (
            "policy_assignment",
            "policy_state",
            "policy_preview",
            "policy_unassign_preview",
            "policy_apply",
            "policy_cancel",
            "policy_unassign",
            "policy_release",
            "policy_retarget",
        )
    },
    "chromeos:policy_blueprint_report": lambda t: {"pk": BlueprintFactory(tenant=t).pk},
    "chromeos:policy_app_report": lambda t: {"pk": AppFactory(tenant=t).pk},
    "chromeos:policy_blueprint_inventory_export": lambda t: {"pk": BlueprintFactory(tenant=t).pk},
    "chromeos:policy_app_inventory_export": lambda t: {"pk": AppFactory(tenant=t).pk},
}

# URL namespaces and names that are not tenant console pages.
NOT_CONSOLE_PAGES = {"admin", "set_language", "login", "logout"}


def console_url_patterns() -> Iterator[tuple[str, URLPattern]]:
    """Yield (qualified name, pattern) for every named console URL."""

    def walk(resolver: URLResolver, namespace: str) -> Iterator[tuple[str, URLPattern]]:
        for entry in resolver.url_patterns:
            if isinstance(entry, URLResolver):
                ns = entry.namespace or ""
                if ns in NOT_CONSOLE_PAGES:
                    continue
                yield from walk(entry, f"{namespace}{ns}:" if ns else namespace)
            elif entry.name and entry.name not in NOT_CONSOLE_PAGES:
                yield f"{namespace}{entry.name}", entry

    yield from walk(get_resolver(), "")
