"""``manage.py ldap_sync TENANT``: sync a tenant's directory in the foreground and print what changed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext

from ldap_sync import services
from ldap_sync.models import LdapDirectory, LdapSyncRun, SyncStatus, SyncTrigger
from mdm.models import Tenant


class Command(BaseCommand):
    help = "Synchronise the LDAP directory of a tenant now, in the foreground (exit status 1 on failure)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant", help="tenant slug")

    def handle(self, *args: Any, tenant: str, **options: Any) -> None:
        found = Tenant.objects.filter(slug=tenant).first()
        if found is None:
            raise CommandError(f"Unknown tenant: {tenant}")
        directory = LdapDirectory.unscoped.filter(tenant=found).first()
        if directory is None or not directory.is_configured:
            raise CommandError(f"Tenant {tenant} has no configured LDAP directory.")
        run = LdapSyncRun.unscoped.create(
            tenant=found, directory=directory, trigger=SyncTrigger.CLI, requested_by="manage.py"
        )
        outcome = services.ldap_sync_run(run=run)
        changes = outcome.changes
        for path in changes.ous_added:
            self.stdout.write(f"+ OU   {path}")
        for old, new in changes.ous_changed:
            self.stdout.write(f"~ OU   {old} -> {new}" if old != new else f"~ OU   {new}")
        for path in changes.ous_removed:
            self.stdout.write(f"- OU   {path}")
        for email in changes.users_added:
            self.stdout.write(f"+ user {email}")
        for email in changes.users_changed:
            self.stdout.write(f"~ user {email}")
        for email in changes.users_removed:
            self.stdout.write(f"- user {email}")
        for line in run.log:
            if line.get("level") in ("warning", "error"):
                message = (
                    gettext(line["msgid"]) % line["params"] if line.get("params") else gettext(line["msgid"])
                )
                self.stderr.write(f"{line['level']}: {message}")
        summary = (
            f"run {run.pk} {run.status}: OUs +{run.ous_added} ~{run.ous_changed} -{run.ous_removed}, "
            f"users +{run.users_added} ~{run.users_changed} -{run.users_removed}, skipped {run.entries_skipped}"
        )
        if run.status in (SyncStatus.FAILED, SyncStatus.SKIPPED):
            raise CommandError(f"{summary}: {gettext(run.error_message) or run.status}")
        self.stdout.write(self.style.SUCCESS(summary))
