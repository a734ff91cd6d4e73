"""Accueil's ChromeOS cockpit: the guide's setup steps until they are done, then the fleet's health.

Every figure that links into Périphériques is counted with the device list's own filter
(``devices_filtered``), so the number on the home page is the number of rows the link shows.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.db.models import Count
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from chromeos.models import DeviceActionJob, GoogleIntegration, IntegrationStatus, JobStatus, SyncRun
from chromeos.selectors.devices import STATUSES, DeviceFilter, devices_filtered
from chromeos.selectors.integration import integration_for
from ldap_sync.selectors import ldap_prerequisites
from mdm.models import Tenant, User

STALE_DAYS = 30
FAILED_JOBS_DAYS = 7


def _devices_url(**query: Any) -> str:
    return reverse("chromeos:device_list") + ("?" + urlencode(query) if query else "")


def setup_steps(tenant: Tenant, integration: GoogleIntegration | None) -> list[dict[str, Any]]:
    """The guide's order: LDAP, its OUs, « Autoriser Google », « Synchro maintenant »."""
    ldap = ldap_prerequisites(tenant)
    authorized = integration is not None
    synced = integration is not None and integration.first_sync_at is not None
    ldap_url = reverse("ldap_sync:directory")
    google_url = reverse("chromeos:manage")
    return [
        {
            "key": "ldap",
            "label": _("Configurer l'annuaire LDAP"),
            "hint": _("Admin > LDAP : adresse du serveur, compte de liaison, DN de base."),
            "done": ldap.configured,
            "url": ldap_url,
        },
        {
            "key": "ous",
            "label": _("Synchroniser et ajouter les unités organisationnelles"),
            "hint": _("Admin > LDAP : « Synchroniser », puis choisir les unités à ajouter."),
            "done": ldap.ous_synced,
            "url": ldap_url,
        },
        {
            "key": "authorize",
            "label": _("Autoriser Google"),
            "hint": _(
                "Admin > Google > Gestion ChromeOS : « Autoriser Google » avec un compte Google Admin."
            ),
            "done": authorized,
            "url": google_url,
        },
        {
            "key": "sync",
            "label": _("Synchro maintenant"),
            "hint": _("Gestion ChromeOS : la première synchronisation importe les périphériques."),
            "done": synced,
            "url": google_url,
        },
    ]


def fleet_health(integration: GoogleIntegration) -> dict[str, Any]:
    devices = devices_filtered(DeviceFilter())
    by_status = dict(
        devices.order_by().values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    total = sum(by_status.values())
    statuses = [
        {
            "status": status,
            "label": STATUSES.get(status, status),
            "count": count,
            "url": _devices_url(status=status),
        }
        for status, count in sorted(by_status.items(), key=lambda item: -item[1])
    ]
    since = timezone.now() - timedelta(days=FAILED_JOBS_DAYS)
    failed_jobs = DeviceActionJob.objects.filter(
        status__in=(JobStatus.FAILED, JobStatus.PARTIAL), created_at__gte=since
    ).select_related("requested_by")
    last_run = (
        SyncRun.objects.filter(integration=integration, finished_at__isnull=False)
        .order_by("-finished_at")
        .first()
    )
    return {
        "total": total,
        "statuses": statuses,
        "stale": devices_filtered(DeviceFilter(sync_older_than_days=STALE_DAYS)).count(),
        "stale_url": _devices_url(sync_older_than_days=STALE_DAYS),
        "aue_passed": devices_filtered(DeviceFilter(aue="passed")).count(),
        "aue_passed_url": _devices_url(aue="passed"),
        "aue_soon": devices_filtered(DeviceFilter(aue="soon")).count(),
        "aue_soon_url": _devices_url(aue="soon"),
        "last_sync_at": integration.last_sync_at,
        "next_sync_at": integration.next_sync_at,
        "last_run": last_run,
        "integration": integration,
        "integration_ok": integration.status == IntegrationStatus.ACTIVE,
        "failed_jobs": list(failed_jobs.order_by("-created_at")[:5]),
        "failed_jobs_count": failed_jobs.count(),
        "jobs_url": reverse("chromeos:device_job_list"),
        "stale_days": STALE_DAYS,
        "failed_jobs_days": FAILED_JOBS_DAYS,
    }


def home_cockpit(tenant: Tenant, user: User) -> dict[str, Any]:
    integration = integration_for(tenant)
    steps = setup_steps(tenant, integration)
    context: dict[str, Any] = {
        "steps": steps,
        "setup_done": all(step["done"] for step in steps),
        "next_step": next((step for step in steps if not step["done"]), None),
        "health": None,
    }
    if integration is not None and integration.first_sync_at is not None:
        context["health"] = fleet_health(integration)
    return context
