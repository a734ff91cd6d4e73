"""``manage.py ldap_sync TENANT [--json]``: sync a tenant's directory in the foreground and print what changed.

``--json`` prints one JSON object instead (for scripts and monitoring)::

    {"status", "run", "org_units", "users", "disabled_users",   # totals after the run
     "added": {"org_units", "users"}, "changed": {...}, "removed": {...},  # this run's counts
     "skipped": [{"dn", "reason"}], "pending_removals": {"org_units", "users"}, "error": {"code", "message"}}

The exit status is non-zero unless the run succeeded (a partial run exits 0 in text mode, as before).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext

from ldap_sync import selectors, services
from ldap_sync.models import LdapDirectory, LdapSyncRun, SyncStatus, SyncTrigger
from mdm.models import Tenant


class Command(BaseCommand):
    help = "Synchronise the LDAP directory of a tenant now, in the foreground (exit status 1 on failure)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant", help="tenant slug")
        parser.add_argument(
            "--json", action="store_true", help="print one JSON object (exit 0 only on success)"
        )

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
        if options.get("json"):
            self.stdout.write(json.dumps(self.as_json(run), ensure_ascii=False))
            if run.status != SyncStatus.SUCCEEDED:
                raise CommandError(f"run {run.pk} {run.status}: {gettext(run.error) or run.status}")
            return
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
        if run.status in (SyncStatus.FAILED, SyncStatus.SKIPPED, SyncStatus.GUARDED):
            raise CommandError(f"{summary}: {gettext(run.error) or run.status}")
        self.stdout.write(self.style.SUCCESS(summary))

    @staticmethod
    def as_json(run: LdapSyncRun) -> dict[str, Any]:
        totals = selectors.ldap_totals(run.tenant)
        pending = run.pending_removals or {}
        return {
            "status": run.status,
            "run": run.pk,
            "org_units": totals.org_units,
            "users": totals.users,
            "disabled_users": totals.disabled_users,
            "added": {"org_units": run.ous_added, "users": run.users_added},
            "changed": {"org_units": run.ous_changed, "users": run.users_changed},
            "removed": {"org_units": run.ous_removed, "users": run.users_removed},
            "skipped": [{"dn": item["dn"], "reason": item["reason"]} for item in run.skipped],
            "pending_removals": {
                "org_units": [item["dn"] for item in pending.get("org_units", [])],
                "users": [item["dn"] for item in pending.get("users", [])],
            },
            "error": {"code": run.error_code, "message": gettext(run.error)} if run.error_code else None,
        }
