"""``manage.py ldap_configure TENANT``: point a tenant at a directory without the web form (demo, ops).

Defaults match the demo directory served by ``python -m ldap_sync.slapd --seed demo``; the bind password is
read from ``--bind-password`` or, better (it stays out of shell history), the ``LDAP_BIND_PASSWORD`` variable.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from ldap_sync import demo_directory
from ldap_sync.client import is_valid_dn, validate_uri
from ldap_sync.models import LdapDirectory
from mdm.models import Tenant
from mdm.services import audit_record


class Command(BaseCommand):
    help = "Create or update a tenant's LDAP directory settings (defaults: the demo directory)."

    def add_arguments(self, parser: CommandParser) -> None:
        demo = demo_directory.skeleton()
        parser.add_argument("tenant", help="tenant slug")
        parser.add_argument("--uri", required=True, help="ldap://host:port or ldaps://host:port")
        parser.add_argument("--base-dn", default=demo.base_dn)
        parser.add_argument("--bind-dn", default=demo.service_bind_dn)
        parser.add_argument("--bind-password", default=None, help="default: $LDAP_BIND_PASSWORD")
        parser.add_argument("--start-tls", action="store_true")
        parser.add_argument(
            "--ca-file", default=None, help="PEM file of the CA that signed the server's certificate"
        )
        parser.add_argument("--admin-group", default=demo.group_dn("admin"))
        parser.add_argument("--operator-group", default=demo.group_dn("operator"))
        parser.add_argument("--readonly-group", default=demo.group_dn("read_only"))

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"Unknown tenant: {options['tenant']}")
        if validate_uri(options["uri"]):
            raise CommandError(f"Not an ldap:// or ldaps:// URL: {options['uri']}")
        for name in ("base_dn", "bind_dn", "admin_group", "operator_group", "readonly_group"):
            if options[name] and not is_valid_dn(options[name]):
                raise CommandError(f"--{name.replace('_', '-')} is not a valid DN: {options[name]}")
        password = options["bind_password"] or os.environ.get("LDAP_BIND_PASSWORD", "")
        if options["bind_dn"] and not password:
            raise CommandError("A bind DN needs a password: --bind-password or $LDAP_BIND_PASSWORD.")
        ca_certificate = ""
        if options["ca_file"]:
            with open(options["ca_file"], encoding="ascii") as handle:
                ca_certificate = handle.read()
        with transaction.atomic():
            directory = LdapDirectory.unscoped.filter(tenant=tenant).first() or LdapDirectory(tenant=tenant)
            directory.uri = options["uri"]
            directory.base_dn = options["base_dn"]
            directory.bind_dn = options["bind_dn"]
            directory.bind_password = password
            directory.start_tls = options["start_tls"]
            directory.ca_certificate = ca_certificate
            directory.admin_group_dn = options["admin_group"]
            directory.operator_group_dn = options["operator_group"]
            directory.readonly_group_dn = options["readonly_group"]
            directory.save()
            audit_record(
                tenant=tenant,
                actor=None,
                actor_label="manage.py ldap_configure",
                action="ldap.directory.update",
                target=directory.uri,
                details={"changed": ["uri", "base_dn", "bind_dn", "bind_password", "groups"]},
            )
        self.stdout.write(
            self.style.SUCCESS(f"{tenant.slug}: LDAP directory {directory.uri} ({directory.base_dn})")
        )
