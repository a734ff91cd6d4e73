"""Reads of the ChromeOS sync: the panel on the Gestion ChromeOS page (live progress, result, history) and
``manage.py chromeos_status``. Read-only: a run that looks dead is shown as such, the services reap it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext

from chromeos.models import ChromeOSDevice, GoogleIntegration, IntegrationStatus, OrgUnit, SyncRun, SyncStatus
from chromeos.services.sync import ACTIVE_STATUSES, SYNC_KIND, sync_run_is_alive
from mdm import jobs

HISTORY_LENGTH = 10


@dataclass
class LogLine:
    at: datetime | None
    level: str
    text: str


@dataclass
class SyncPanel:
    integration: GoogleIntegration
    can_sync: bool
    active: SyncRun | None = None
    latest: SyncRun | None = None
    guarded: SyncRun | None = None
    history: list[SyncRun] = field(default_factory=list)
    log: list[LogLine] = field(default_factory=list)
    notice: str = ""
    # The active run is queued and its message waits in the outbox: the broker is down.
    broker_unavailable: bool = False

    @property
    def shown(self) -> SyncRun | None:
        """The run the panel is about: the one under way, else the last one."""
        return self.active or self.latest

    @property
    def elapsed_seconds(self) -> int | None:
        run = self.shown
        if run is None or run.started_at is None:
            return None
        end = run.finished_at or timezone.now()
        return max(int((end - run.started_at).total_seconds()), 0)

    @property
    def waiting_for_worker_minutes(self) -> int | None:
        """Minutes a queued run has waited for a worker, once past ``CHROMEOS_SYNC_QUEUED_NOTICE_SECONDS``
        (None before, or when it is not queued, or when its message waits in the outbox for the broker: that
        is said by ``broker_unavailable``). The run is not failed for it: the reaper gives it up later."""
        run = self.active
        if run is None or run.status != SyncStatus.QUEUED or self.broker_unavailable:
            return None
        waited = timezone.now() - run.created_at
        if waited.total_seconds() < int(getattr(settings, "CHROMEOS_SYNC_QUEUED_NOTICE_SECONDS", 120)):
            return None
        return max(int(waited.total_seconds() // 60), 1)

    @property
    def gives_up_after_minutes(self) -> int:
        return int(getattr(settings, "CHROMEOS_SYNC_QUEUED_TIMEOUT_SECONDS", 1800)) // 60

    @property
    def percent(self) -> int | None:
        run = self.active
        if run is None or not run.expected_devices:
            return None
        return min(int(run.devices_seen * 100 / run.expected_devices), 100)


def run_log(run: SyncRun) -> list[LogLine]:
    """The run's log lines in the reader's language (stored as French message ids with parameters)."""
    lines = []
    for entry in run.log or []:
        if not isinstance(entry, dict):
            continue
        try:
            text = gettext(entry.get("msg", "")) % (entry.get("params") or {})
        except (KeyError, TypeError, ValueError):
            text = str(entry.get("msg", ""))
        at = parse_datetime(entry["at"]) if isinstance(entry.get("at"), str) else None
        lines.append(LogLine(at=at, level=str(entry.get("level", "info")), text=text))
    return lines


def tenant_integration() -> GoogleIntegration | None:
    return GoogleIntegration.objects.first()


def sync_panel(integration: GoogleIntegration | None = None, *, notice: str = "") -> SyncPanel | None:
    """The sync panel of the current tenant's integration (None when there is none)."""
    integration = integration or tenant_integration()
    if integration is None:
        return None
    runs = list(
        SyncRun.objects.filter(integration=integration).select_related("requested_by")[:HISTORY_LENGTH]
    )
    panel = SyncPanel(
        integration=integration,
        can_sync=integration.status == IntegrationStatus.ACTIVE,
        history=runs,
        notice=notice,
    )
    for run in runs:
        if run.status in ACTIVE_STATUSES and sync_run_is_alive(run):
            panel.active = run
            if run.status == SyncStatus.QUEUED:
                panel.broker_unavailable = jobs.publication_pending(SYNC_KIND, run.pk)
            break
    finished = [r for r in runs if r.status not in ACTIVE_STATUSES]
    panel.latest = finished[0] if finished else None
    if panel.latest is not None and panel.latest.status == SyncStatus.GUARDED:
        panel.guarded = panel.latest
    if panel.shown is not None:
        panel.log = run_log(panel.shown)
    return panel


@dataclass
class TenantSyncStatus:
    tenant: str
    domain: str
    status: str
    first_sync_at: datetime | None
    last_sync_at: datetime | None
    next_sync_at: datetime | None
    devices: int
    removed_devices: int
    org_units: int
    last_run: SyncRun | None
    active_run: SyncRun | None


def sync_counts(integration: GoogleIntegration) -> dict[str, int]:
    """The integration's devices (not removed) and OUs: the counts above the sync panel and in
    ``chromeos_status``."""
    devices = ChromeOSDevice.unscoped.filter(
        tenant_id=integration.tenant_id, integration=integration, removed_at__isnull=True
    )
    units = OrgUnit.unscoped.filter(tenant_id=integration.tenant_id, integration=integration)
    return {"device_count": devices.count(), "org_unit_count": units.count()}


def sync_status_rows(tenant_slug: str | None = None) -> list[TenantSyncStatus]:
    """Every tenant's integration state, schedule and counts (support's view: across tenants)."""
    integrations = GoogleIntegration.unscoped.select_related("tenant").order_by("tenant__slug")
    if tenant_slug:
        integrations = integrations.filter(tenant__slug=tenant_slug)
    rows = []
    for integration in integrations:
        runs = SyncRun.unscoped.filter(integration=integration)
        counts = sync_counts(integration)
        active = next((r for r in runs.filter(status__in=ACTIVE_STATUSES) if sync_run_is_alive(r)), None)
        rows.append(
            TenantSyncStatus(
                tenant=integration.tenant.slug,
                domain=integration.domain,
                status=integration.get_status_display(),
                first_sync_at=integration.first_sync_at,
                last_sync_at=integration.last_sync_at,
                next_sync_at=integration.next_sync_at,
                devices=counts["device_count"],
                removed_devices=ChromeOSDevice.unscoped.filter(
                    tenant_id=integration.tenant_id, integration=integration, removed_at__isnull=False
                ).count(),
                org_units=counts["org_unit_count"],
                last_run=runs.exclude(status__in=ACTIVE_STATUSES).first(),
                active_run=active,
            )
        )
    return rows


def run_summary(run: SyncRun) -> dict[str, Any]:
    return {
        "added": run.added,
        "updated": run.updated,
        "unchanged": run.unchanged,
        "removed": run.removed,
        "pending_removals": run.pending_removals,
        "org_units": run.org_units,
        "devices_seen": run.devices_seen,
        "pages": run.pages,
    }
