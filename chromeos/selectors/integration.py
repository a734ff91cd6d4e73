"""Reads of "Gestion ChromeOS" (Admin > Google > Gestion ChromeOS): prerequisites, the integration, counts.

:func:`manage_page_context` builds the page's whole template context. Other areas add their own keys without
touching this module's logic: append the dotted path of a function ``(tenant, integration, user) -> dict`` to
:data:`MANAGE_PAGE_SECTIONS` (one line), and read those keys in your partial (``_sync_panel.html``,
``_removal_panel.html``). A section's keys must not collide with the base keys listed in ``BASE_KEYS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.urls import reverse
from django.utils.formats import date_format
from django.utils.module_loading import import_string
from django.utils.timezone import localtime
from django.utils.translation import gettext_lazy as _

from chromeos.google.client import SCOPE_PREFIX
from chromeos.models import GoogleIntegration, IntegrationStatus
from chromeos.selectors.sync import sync_counts
from chromeos.services.integration import authorization_blocker
from ldap_sync.selectors import LdapPrerequisites, ldap_prerequisites
from mdm.models import Tenant, User
from mdm.names import country_name, language_name
from mdm.permissions import can_administer

# Sections other areas contribute to the page: "module.function" taking (tenant, integration, user).
MANAGE_PAGE_SECTIONS: list[str] = []

BASE_KEYS = frozenset(
    {
        "integration",
        "prerequisites",
        "ldap",
        "authorize_blocker",
        "can_authorize",
        "device_count",
        "org_unit_count",
        "scope_rows",
        "customer_rows",
        "reauth_required",
    }
)

# What the admin reads on the page for each scope the console asks (Google's own descriptions, in French).
SCOPE_LABELS: dict[str, Any] = {
    "admin.directory.device.chromeos": _("Voir et gérer les périphériques ChromeOS"),
    "admin.directory.device.chromeos.readonly": _("Voir les périphériques ChromeOS"),
    "admin.directory.orgunit.readonly": _("Voir les unités organisationnelles"),
    "admin.directory.customer.readonly": _("Voir les informations du client (domaine)"),
    "admin.directory.user.readonly": _("Voir les utilisateurs du domaine"),
    "chrome.management.policy": _("Voir et modifier les règles Chrome (applis, configurations)"),
    "openid": _("Identifier le compte qui autorise"),
    "email": _("Voir l'adresse e-mail du compte qui autorise"),
    "userinfo.email": _("Voir l'adresse e-mail du compte qui autorise"),
}


@dataclass(frozen=True)
class Prerequisite:
    label: Any
    ok: bool | None  # None: checked by Google during the authorization, not knowable before
    detail: Any
    fix_url: str = ""
    fix_label: Any = ""


def integration_for(tenant: Tenant) -> GoogleIntegration | None:
    return GoogleIntegration.unscoped.select_related("authorized_by").filter(tenant=tenant).first()


def prerequisites(ldap: LdapPrerequisites) -> list[Prerequisite]:
    """The guide's prerequisites, with their state and where to fix them."""
    directory_url = reverse("ldap_sync:directory")
    last_sync: datetime | None = ldap.last_sync
    return [
        Prerequisite(
            label=_("Annuaire LDAP configuré"),
            ok=ldap.configured,
            detail=_("Serveur LDAP renseigné pour ce locataire.")
            if ldap.configured
            else _("Aucun serveur LDAP n'est configuré."),
            fix_url="" if ldap.configured else directory_url,
            fix_label=_("Configurer l'annuaire LDAP"),
        ),
        Prerequisite(
            label=_("Unités organisationnelles LDAP synchronisées et ajoutées"),
            ok=ldap.ous_synced,
            detail=(
                _("%(count)s unités organisationnelles ajoutées, dernière synchronisation le %(date)s.")
                % {
                    "count": ldap.ou_count,
                    "date": date_format(localtime(last_sync), "SHORT_DATETIME_FORMAT") if last_sync else "—",
                }
            )
            if ldap.ous_synced
            else _("Synchronisez l'annuaire et ajoutez ses unités organisationnelles."),
            fix_url="" if ldap.ous_synced else directory_url,
            fix_label=_("Synchroniser les unités organisationnelles"),
        ),
        Prerequisite(
            label=_("Compte Google Admin géré"),
            ok=None,
            detail=_(
                "Vérifié par Google lors de l'autorisation : choisissez un compte super-administrateur, dont "
                "les utilisateurs et unités organisationnelles sont importés depuis LDAP."
            ),
        ),
    ]


def scope_rows(scopes: list[str]) -> list[dict[str, Any]]:
    rows = []
    for scope in scopes:
        short = scope.removeprefix(SCOPE_PREFIX)
        rows.append({"scope": scope, "label": SCOPE_LABELS.get(short, short)})
    return rows


def customer_rows(integration: GoogleIntegration) -> list[tuple[Any, str]]:
    """The domain information Google gave (customers.get), as label/value rows."""
    info = integration.customer_info or {}
    address = info.get("postalAddress") or {}
    rows: list[tuple[Any, str]] = [
        (_("Domaine"), integration.domain),
        (_("ID client Google"), integration.customer_id),
        (_("Organisation"), address.get("organizationName", "")),
        (_("E-mail de secours"), info.get("alternateEmail", "")),
        (_("Langue"), language_name(info.get("language", ""))),
        (
            _("Adresse"),
            ", ".join(
                part
                for part in (
                    address.get("addressLine1", ""),
                    " ".join(p for p in (address.get("postalCode", ""), address.get("locality", "")) if p),
                    country_name(address.get("countryCode", "")),
                )
                if part
            ),
        ),
    ]
    return [(label, value) for label, value in rows if value]


def manage_page_context(tenant: Tenant, user: User) -> dict[str, Any]:
    """Everything "Gestion ChromeOS" shows, for ``tenant`` as seen by ``user``."""
    ldap = ldap_prerequisites(tenant)
    integration = integration_for(tenant)
    blocker = authorization_blocker(ldap_ready=ldap.ready, integration=integration)
    context: dict[str, Any] = {
        "integration": integration,
        "ldap": ldap,
        "prerequisites": prerequisites(ldap),
        "authorize_blocker": blocker.message if blocker else "",
        "can_authorize": can_administer(user) and blocker is None,
        "device_count": 0,
        "org_unit_count": 0,
        "scope_rows": [],
        "customer_rows": [],
        "reauth_required": False,
    }
    if integration is not None:
        context.update(
            **sync_counts(integration),
            scope_rows=scope_rows(integration.scopes),
            customer_rows=customer_rows(integration),
            reauth_required=integration.status == IntegrationStatus.REAUTH_REQUIRED,
        )
    for path in MANAGE_PAGE_SECTIONS:
        section = import_string(path)(tenant, integration, user)
        clash = BASE_KEYS & set(section)
        if clash:
            raise ValueError(f"{path} returned base keys {sorted(clash)}")
        context.update(section)
    return context


@dataclass(frozen=True)
class IntegrationAlert:
    """What the shell shows on every page while the Google integration is not syncing."""

    status: str
    label: Any
    detail: str


def integration_alert(tenant_id: int) -> IntegrationAlert | None:
    """The tenant's integration when it needs attention (hourly sync suspended), else None. One indexed
    query (one integration per tenant), only its status columns."""
    row = (
        GoogleIntegration.unscoped.filter(tenant_id=tenant_id)
        .exclude(status=IntegrationStatus.ACTIVE)
        .values("status", "status_detail")
        .first()
    )
    if row is None:
        return None
    return IntegrationAlert(
        status=row["status"], label=IntegrationStatus(row["status"]).label, detail=row["status_detail"]
    )
