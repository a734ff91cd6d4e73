"""``manage.py chromeos_sync TENANT``: one ChromeOS sync in the foreground, for operations.

Same service as the worker (same lock: if the tenant's sync is already running elsewhere, this one is skipped
and says so), with a progress bar; prints the counts; exits non-zero unless the sync succeeded.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from chromeos.models import GoogleIntegration, SyncRun, SyncStatus, SyncTrigger
from chromeos.selectors.sync import run_log
from chromeos.services.sync import SyncNotAllowed, devices_sync, sync_request
from mdm.models import Tenant
from mdm.tenancy import tenant_context


class Command(BaseCommand):
    help = "Run one ChromeOS sync of a tenant in the foreground and print its counts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant", help="tenant slug")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs, cron)")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"unknown tenant {options['tenant']!r}")
        with tenant_context(tenant):
            integration = GoogleIntegration.objects.first()
            if integration is None:
                raise CommandError(f"tenant {tenant.slug} has no Google integration")
            try:
                run, created = sync_request(
                    integration=integration, trigger=SyncTrigger.MANUAL, enqueue=False
                )
            except SyncNotAllowed as refused:
                raise CommandError(refused.message) from None
            if not created:
                raise CommandError(
                    f"sync #{run.pk} of {tenant.slug} is already {run.status}; not starting another"
                )
            bar = tqdm(
                total=None,
                unit=" devices",
                disable=options["no_progress"],
                file=self.stderr._out,
                dynamic_ncols=True,
            )

            def progress(current: SyncRun) -> None:
                if current.expected_devices is not None and bar.total != current.expected_devices:
                    bar.total = current.expected_devices
                bar.update(current.devices_seen - bar.n)
                bar.set_postfix(pages=current.pages, ous=current.org_units, refresh=False)

            try:
                run = devices_sync(run, progress=progress)
            finally:
                bar.close()
        self.print_run(run)
        if run.status != SyncStatus.SUCCEEDED:
            raise CommandError(f"sync #{run.pk} {run.status}: {run.error or run.get_status_display()}")

    def print_run(self, run: SyncRun) -> None:
        duration = (
            (run.finished_at - run.started_at).total_seconds() if run.finished_at and run.started_at else 0
        )
        self.stdout.write(f"sync #{run.pk} {run.status} in {duration:.1f}s")
        self.stdout.write(
            f"  devices: {run.devices_seen} listed in {run.pages} pages (Google count {run.expected_devices}), "
            f"{run.devices_skipped} skipped"
        )
        self.stdout.write(
            f"  added {run.added}, updated {run.updated}, unchanged {run.unchanged}, removed {run.removed}, "
            f"pending removals {run.pending_removals}, org units {run.org_units}"
        )
        for line in run_log(run):
            if line.level != "info":
                self.stdout.write(f"  {line.level}: {line.text}")
