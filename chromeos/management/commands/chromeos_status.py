"""``manage.py chromeos_status [TENANT]``: each tenant's integration state, last and next sync, and counts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from chromeos.selectors.sync import sync_status_rows


def _when(value: datetime | None) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


class Command(BaseCommand):
    help = "Print each tenant's ChromeOS integration state, last/next sync and counts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant", nargs="?", help="tenant slug (default: every tenant)")

    def handle(self, *args: Any, **options: Any) -> None:
        rows = sync_status_rows(options.get("tenant"))
        if options.get("tenant") and not rows:
            raise CommandError(f"tenant {options['tenant']!r} has no Google integration")
        if not rows:
            self.stdout.write("no Google integration")
            return
        for row in rows:
            self.stdout.write(f"{row.tenant} ({row.domain}): {row.status}")
            self.stdout.write(
                f"  first sync {_when(row.first_sync_at)}, last sync {_when(row.last_sync_at)}, "
                f"next sync {_when(row.next_sync_at)}"
            )
            self.stdout.write(
                f"  devices {row.devices} (+{row.removed_devices} removed), org units {row.org_units}"
            )
            if row.active_run is not None:
                run = row.active_run
                self.stdout.write(
                    f"  running: #{run.pk} {run.trigger} {run.status}, {run.devices_seen} devices, {run.pages} pages"
                )
            if row.last_run is not None:
                run = row.last_run
                self.stdout.write(
                    f"  last run: #{run.pk} {run.trigger} {run.status} at {_when(run.finished_at)}: "
                    f"added {run.added}, updated {run.updated}, unchanged {run.unchanged}, removed {run.removed}"
                    + (f", pending removals {run.pending_removals}" if run.pending_removals else "")
                    + (f", error: {run.error}" if run.error else "")
                )
