"""The schedule: each tenant's fixed slot in the hour, beat's dispatcher, and the next slot after a run."""

from __future__ import annotations

import logging
import math
import zlib
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from chromeos.models import GoogleIntegration, IntegrationStatus, SyncRun, SyncTrigger
from chromeos.services.sync.runs import _enqueue, _reap_lost_runs, sync_active_run

# The package's name, as before the split: log filters and dashboards keep matching.
logger = logging.getLogger("chromeos.services.sync")


def sync_interval() -> int:
    return int(getattr(settings, "CHROMEOS_SYNC_INTERVAL_SECONDS", 3600))


def sync_offset_for(tenant_id: int, interval: int | None = None) -> int:
    """A tenant's fixed second in the hour: a hash spreads tenants evenly without any coordination."""
    return zlib.crc32(f"chromeos-sync:{tenant_id}".encode()) % (interval or 3600)


def next_slot(offset: int, after: datetime, interval: int | None = None) -> datetime:
    """The first time strictly after ``after`` that falls on this tenant's offset in the cycle."""
    interval = interval or sync_interval()
    offset %= interval
    k = math.floor((after.timestamp() - offset) / interval) + 1
    return datetime.fromtimestamp(k * interval + offset, UTC)


def sync_dispatch(now: datetime | None = None, *, enqueue: bool = True) -> list[SyncRun]:
    """Beat's tick: a scheduled run for each tenant that is due. Safe to run twice at once (two beats).

    Due rows are locked with SKIP LOCKED and moved to their next slot in the same transaction, so a second
    dispatcher either skips them (locked) or sees them not due any more (committed): each dispatched once.
    """
    now = now or timezone.now()
    interval = sync_interval()
    created: list[SyncRun] = []
    _reap_lost_runs()
    with transaction.atomic():
        due = list(
            GoogleIntegration.unscoped.select_for_update(skip_locked=True, of=("self",))
            .select_related("tenant")
            .filter(status=IntegrationStatus.ACTIVE, first_sync_at__isnull=False)
            .filter(next_sync_at__lte=now)
            .order_by("next_sync_at")[:500]
        )
        for integration in due:
            integration.next_sync_at = next_slot(integration.sync_offset_seconds, now, interval)
            integration.save(update_fields=["next_sync_at", "updated_at"])
            if sync_active_run(integration) is not None:
                continue  # the running one is this hour's sync
            run = SyncRun.unscoped.create(
                tenant_id=integration.tenant_id, integration=integration, trigger=SyncTrigger.SCHEDULED
            )
            created.append(run)
            if enqueue:
                _enqueue(run.pk)
    if created:
        logger.info("sync dispatch: %d scheduled runs", len(created))
    return created


def _schedule_after(integration: GoogleIntegration, run: SyncRun, finished: datetime) -> None:
    """After a completed run: last sync time, the first-sync mark, and the next hourly slot."""
    interval = sync_interval()
    fields = ["last_sync_at", "updated_at"]
    integration.last_sync_at = finished
    if integration.first_sync_at is None:
        integration.first_sync_at = finished
        integration.sync_offset_seconds = sync_offset_for(integration.tenant_id)
        fields += ["first_sync_at", "sync_offset_seconds"]
    if run.trigger == SyncTrigger.MANUAL or integration.next_sync_at is None:
        # A manual sync pushes the next scheduled one to the tenant's first slot at least an interval away.
        integration.next_sync_at = next_slot(
            integration.sync_offset_seconds, finished + timedelta(seconds=interval - 1), interval
        )
        fields.append("next_sync_at")
    integration.save(update_fields=fields)
