"""Reads of the LDAP integration that other pages and apps share.

``ldap_prerequisites`` is what "Gestion ChromeOS" asks before allowing "Autoriser Google";
``ldap_org_units_by_path`` is what the ChromeOS sync matches Google OU paths against.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from ldap_sync.diagnostics import ConnectionReport
from ldap_sync.models import LdapDirectory, LdapOrgUnit, LdapSyncRun, LdapUser, SyncStatus
from mdm.models import Tenant

SUCCESSFUL = (SyncStatus.SUCCEEDED, SyncStatus.PARTIAL)


@dataclass(frozen=True)
class LdapPrerequisites:
    """The guide's prerequisites 2 and 3: an LDAP server configured, and its OUs synced and added."""

    configured: bool
    ous_synced: bool
    ou_count: int  # OUs added (supported by the console)
    user_count: int
    last_sync: datetime | None  # end of the last successful sync
    last_sync_status: str | None  # status of the most recent finished run, whatever it was
    disabled_user_count: int = 0  # imported users the directory reports disabled (they cannot sign in)

    @property
    def ready(self) -> bool:
        return self.configured and self.ous_synced


def ldap_prerequisites(tenant: Tenant) -> LdapPrerequisites:
    """Is LDAP configured for ``tenant`` and are its OUs synced? Works with or without a current tenant."""
    directory = LdapDirectory.unscoped.filter(tenant=tenant).first()
    if directory is None:
        return LdapPrerequisites(False, False, 0, 0, None, None)
    last_success = (
        LdapSyncRun.unscoped.filter(tenant=tenant, status__in=SUCCESSFUL).order_by("-finished_at").first()
    )
    last_finished = (
        LdapSyncRun.unscoped.filter(tenant=tenant, finished_at__isnull=False).order_by("-finished_at").first()
    )
    ou_count = LdapOrgUnit.unscoped.filter(tenant=tenant, added=True).count()
    return LdapPrerequisites(
        configured=directory.is_configured,
        ous_synced=last_success is not None and ou_count > 0,
        ou_count=ou_count,
        user_count=LdapUser.unscoped.filter(tenant=tenant, missing_since__isnull=True).count(),
        disabled_user_count=LdapUser.unscoped.filter(
            tenant=tenant, missing_since__isnull=True, disabled=True
        ).count(),
        last_sync=last_success.finished_at if last_success else None,
        last_sync_status=last_finished.status if last_finished else None,
    )


def ldap_org_units(tenant: Tenant, *, added_only: bool = True) -> QuerySet[LdapOrgUnit]:
    """The tenant's LDAP OUs ordered by path (parents first); OUs gone from the directory are not listed."""
    units = LdapOrgUnit.unscoped.filter(tenant=tenant, missing_since__isnull=True)
    return units.filter(added=True) if added_only else units


def ldap_org_units_by_path(tenant: Tenant) -> dict[str, LdapOrgUnit]:
    """Added OUs by Google-style path (``/Paris/Ventes``), exact case and accents as in the directory."""
    return {unit.path: unit for unit in ldap_org_units(tenant)}


def ldap_directory(tenant: Tenant) -> LdapDirectory | None:
    return LdapDirectory.unscoped.filter(tenant=tenant).first()


def ldap_sync_runs(tenant: Tenant, limit: int = 20) -> QuerySet[LdapSyncRun]:
    return LdapSyncRun.unscoped.filter(tenant=tenant).order_by("-created_at", "-id")[:limit]


@dataclass(frozen=True)
class ImportComparison:
    """ "Tester la connexion": what the tested settings would import against what is imported now."""

    ou_count: int
    user_count: int
    current_ou_count: int
    current_user_count: int


def import_comparison(tenant: Tenant, report: ConnectionReport) -> ImportComparison | None:
    if report.ou_count is None or report.user_count is None:
        return None
    return ImportComparison(
        ou_count=report.ou_count,
        user_count=report.user_count,
        current_ou_count=LdapOrgUnit.unscoped.filter(tenant=tenant, missing_since__isnull=True).count(),
        current_user_count=LdapUser.unscoped.filter(tenant=tenant, missing_since__isnull=True).count(),
    )


@dataclass(frozen=True)
class LdapTotals:
    org_units: int
    users: int
    disabled_users: int


def ldap_totals(tenant: Tenant) -> LdapTotals:
    """What is imported now (entries gone from the directory, kept for their grace period, not counted)."""
    users = LdapUser.unscoped.filter(tenant=tenant, missing_since__isnull=True)
    return LdapTotals(
        org_units=LdapOrgUnit.unscoped.filter(tenant=tenant, missing_since__isnull=True).count(),
        users=users.count(),
        disabled_users=users.filter(disabled=True).count(),
    )


@dataclass(frozen=True)
class OrgUnitTreeItem:
    """One step of the OU tree in document order: ``open`` an OU with sub-units, ``leaf``, or ``close``."""

    kind: str
    unit: LdapOrgUnit | None = None
    depth: int = 0


def ldap_org_unit_tree(tenant: Tenant) -> list[OrgUnitTreeItem]:
    """The OUs as a tree built from each OU's parent (never from path prefixes: "Seconde 1 bis" is not a child
    of "Seconde 1", and an OU below a non-OU container hangs from its nearest OU), siblings by name."""
    units = list(
        ldap_org_units(tenant, added_only=False).only("id", "name", "dn", "parent_id", "selected", "added")
    )
    ids = {unit.pk for unit in units}
    children: dict[int | None, list[LdapOrgUnit]] = {}
    for unit in units:
        parent = unit.parent_id if unit.parent_id in ids else None
        children.setdefault(parent, []).append(unit)
    for siblings in children.values():
        siblings.sort(key=lambda unit: (unit.name.casefold(), unit.pk))
    items: list[OrgUnitTreeItem] = []
    # Iterative depth-first walk: a directory 35 levels deep must not hit Python's recursion limit.
    stack: list[tuple[LdapOrgUnit | None, int]] = [(root, 0) for root in reversed(children.get(None, []))]
    while stack:
        node, depth = stack.pop()
        if node is None:
            items.append(OrgUnitTreeItem("close", depth=depth))
            continue
        below = children.get(node.pk, [])
        if not below:
            items.append(OrgUnitTreeItem("leaf", node, depth))
            continue
        items.append(OrgUnitTreeItem("open", node, depth))
        stack.append((None, depth))
        stack.extend((child, depth + 1) for child in reversed(below))
    return items
