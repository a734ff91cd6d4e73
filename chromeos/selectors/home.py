"""Accueil's ChromeOS cockpit: the guide's setup steps until they are done, then the fleet's health.

Every figure that links into Périphériques is counted with the device list's own filter
(``devices_filtered``), so the number on the home page is the number of rows the link shows.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from chromeos.models import (
    DeviceActionJob,
    GoogleIntegration,
    IntegrationStatus,
    JobStatus,
    SyncRun,
    SyncStatus,
)
from chromeos.selectors.devices import STATUSES, DeviceFilter, devices_filtered
from chromeos.selectors.integration import integration_for
from ldap_sync.selectors import ldap_prerequisites
from mdm.models import Tenant, User

STALE_DAYS = 30
FAILED_JOBS_DAYS = 7
# Accueil's charts: syncs of the last days, and the most common OS versions (the rest summed as « autres »).
SYNC_CHART_DAYS = 14
OS_CHART_VERSIONS = 8


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
    statuses: list[dict[str, Any]] = [
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
    offset = 0.0
    for item in statuses:
        # Each status's segment of the stacked bar, in percent of the fleet (SVG attributes, not inline styles).
        share = round(100 * int(item["count"]) / total, 2) if total else 0.0
        item["percent"], item["offset"] = share, round(offset, 2)
        offset += share
    return {
        "total": total,
        "statuses": statuses,
        "os_versions": os_version_chart(devices, total),
        "syncs": sync_chart(integration),
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


def os_version_chart(devices: QuerySet[Any], total: int) -> list[dict[str, Any]]:
    """The most common OS versions, each with its share of the fleet and its link (the list's exact filter)."""
    rows = list(
        devices.exclude(os_version="")
        .order_by()
        .values_list("os_version")
        .annotate(n=Count("id"))
        .order_by("-n", "-os_version")
        .values_list("os_version", "n")
    )
    top = rows[:OS_CHART_VERSIONS]
    biggest = max((n for _v, n in top), default=0)
    chart = [
        {
            "label": version,
            "count": n,
            "percent": round(100 * n / total, 1) if total else 0,
            "bar": round(100 * n / biggest, 2) if biggest else 0,
            "url": _devices_url(os_version=version),
        }
        for version, n in top
    ]
    rest = total - sum(n for _v, n in top)
    if rest > 0:
        chart.append(
            {
                "label": _("Autres versions ou inconnue"),
                "count": rest,
                "percent": round(100 * rest / total, 1),
                "bar": round(100 * rest / biggest, 2) if biggest else 0,
                "url": "",
            }
        )
    return chart


def sync_chart(integration: GoogleIntegration, days: int = SYNC_CHART_DAYS) -> dict[str, Any]:
    """Finished syncs per day (in the tenant's zone) over the last ``days`` days: succeeded and not."""
    today = timezone.localdate()
    first = today - timedelta(days=days - 1)
    since = timezone.make_aware(datetime.combine(first, time.min))
    counted = (
        SyncRun.objects.filter(integration=integration, finished_at__gte=since)
        .annotate(day=TruncDate("finished_at", tzinfo=timezone.get_current_timezone()))
        .values("day", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    ok_statuses = {SyncStatus.SUCCEEDED, SyncStatus.PARTIAL, SyncStatus.GUARDED}
    per_day = {first + timedelta(days=i): {"ok": 0, "ko": 0} for i in range(days)}
    for row in counted:
        if row["day"] in per_day and row["status"] != SyncStatus.SKIPPED:
            per_day[row["day"]]["ok" if row["status"] in ok_statuses else "ko"] += row["n"]
    peak = max((d["ok"] + d["ko"] for d in per_day.values()), default=0)
    scale = max(peak, 1)
    chart_height = 60
    bars = []
    for i, (day, n) in enumerate(per_day.items()):
        ok_h = round(chart_height * n["ok"] / scale, 2)
        ko_h = round(chart_height * n["ko"] / scale, 2)
        bars.append(
            {
                "day": day,
                "ok": n["ok"],
                "ko": n["ko"],
                "x": i * 10 + 1,
                "ok_y": chart_height - ok_h,
                "ok_h": ok_h,
                "ko_y": chart_height - ok_h - ko_h,
                "ko_h": ko_h,
            }
        )
    return {
        "days": days,
        "bars": bars,
        "peak": peak,
        "width": days * 10,
        "height": chart_height,
        "total_ok": sum(b["ok"] for b in bars),
        "total_ko": sum(b["ko"] for b in bars),
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
