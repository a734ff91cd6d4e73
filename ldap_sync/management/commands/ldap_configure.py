"""``manage.py ldap_configure TENANT``: point a tenant at a directory without the web form (demo, ops).

Every setting of the LDAP page has its option, and the values go through the page's own form (same checks,
same kind defaults). An option not given leaves its setting as it is: ``--uri X`` alone changes the URI and
nothing else. A tenant without a directory yet gets the demo directory's values for what is not given
(``python -m ldap_sync.slapd --seed demo``, or ``python -m ldap_sync.samba_ad`` with ``--kind
active-directory``). The bind password is read from ``--bind-password`` or, better (it stays out of shell
history), the ``LDAP_BIND_PASSWORD`` variable.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.forms.models import model_to_dict
from django.utils import translation

from ldap_sync import ad_directory, demo_directory
from ldap_sync.forms import LdapDirectoryForm
from ldap_sync.kinds import KIND_FIELDS, DirectoryKind, GroupType, defaults
from ldap_sync.models import LdapDirectory
from mdm.models import Tenant
from mdm.services import audit_record
from mdm.tenancy import tenant_context

# option dest -> LdapDirectory field
OPTION_FIELDS = {
    "kind": "kind",
    "uri": "uri",
    "base_dn": "base_dn",
    "bind_dn": "bind_dn",
    "admin_group": "admin_group_dn",
    "operator_group": "operator_group_dn",
    "readonly_group": "readonly_group_dn",
    "group_base_dn": "group_base_dn",
    "group_type": "group_type",
    "ou_filter": "ou_filter",
    "user_filter": "user_filter",
    "disabled_filter": "disabled_filter",
    "id_attribute": "id_attribute",
    "uid_attribute": "uid_attribute",
    "login_attributes": "login_attributes",
    "email_attribute": "email_attribute",
    "email_fallback_attribute": "email_fallback_attribute",
    "name_attribute": "name_attribute",
    "network_timeout": "network_timeout",
    "operation_timeout": "operation_timeout",
    "removal_guard_percent": "removal_guard_percent",
    "removal_guard_minimum": "removal_guard_minimum",
    "missing_grace_days": "missing_grace_days",
}


def demo_values(kind: str) -> dict[str, Any]:
    """What a new directory gets for the options not given: the matching demo directory."""
    if kind == DirectoryKind.ACTIVE_DIRECTORY:
        ad = ad_directory.AdDirectory()
        return {
            "base_dn": ad.base_dn,
            "bind_dn": ad.service_bind_dn,
            "admin_group_dn": ad.group_dn("admin"),
            "operator_group_dn": ad.group_dn("operator"),
            "readonly_group_dn": ad.group_dn("read_only"),
        }
    demo = demo_directory.skeleton()
    return {
        "base_dn": demo.base_dn,
        "bind_dn": demo.service_bind_dn,
        "admin_group_dn": demo.group_dn("admin"),
        "operator_group_dn": demo.group_dn("operator"),
        "readonly_group_dn": demo.group_dn("read_only"),
    }


class Command(BaseCommand):
    help = "Create or update a tenant's LDAP directory settings; options not given are left unchanged."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant", help="tenant slug")
        parser.add_argument(
            "--kind",
            choices=[choice.value for choice in DirectoryKind],
            default=None,
            help="openldap or active-directory: fills that kind's defaults for the attributes and filters",
        )
        parser.add_argument("--uri", default=None, help="ldap://host:port or ldaps://host:port")
        parser.add_argument("--base-dn", default=None)
        parser.add_argument("--bind-dn", default=None, help="a DN, a UPN (svc@example.com) or DOMAIN\\user")
        parser.add_argument("--bind-password", default=None, help="default: $LDAP_BIND_PASSWORD")
        parser.add_argument("--start-tls", action="store_true", default=None)
        parser.add_argument("--no-start-tls", dest="start_tls", action="store_false")
        parser.add_argument(
            "--ca-file", default=None, help="PEM file of the CA that signed the server's certificate"
        )
        parser.add_argument("--no-ca", action="store_true", help="remove the stored CA certificate")
        parser.add_argument("--admin-group", default=None)
        parser.add_argument("--operator-group", default=None)
        parser.add_argument("--readonly-group", default=None)
        parser.add_argument("--group-base-dn", default=None, help="where role groups are searched")
        parser.add_argument("--group-type", choices=[choice.value for choice in GroupType], default=None)
        for option in (
            "ou_filter",
            "user_filter",
            "disabled_filter",
            "id_attribute",
            "uid_attribute",
            "login_attributes",
            "email_attribute",
            "email_fallback_attribute",
            "name_attribute",
        ):
            parser.add_argument(f"--{option.replace('_', '-')}", default=None)
        parser.add_argument("--network-timeout", type=int, default=None)
        parser.add_argument("--operation-timeout", type=int, default=None)
        parser.add_argument(
            "--removal-guard-percent",
            type=int,
            default=None,
            help="a sync removing more than this share of the OUs or users stops 'à confirmer' (default 10)",
        )
        parser.add_argument(
            "--removal-guard-minimum", type=int, default=None, help="...and at least this many (default 5)"
        )
        parser.add_argument(
            "--missing-grace-days",
            type=int,
            default=None,
            help="days an OU or user gone from the directory is kept, hidden, before being purged (default 30)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"Unknown tenant: {options['tenant']}")
        directory = LdapDirectory.unscoped.filter(tenant=tenant).first()
        created = directory is None
        if directory is None:
            if options["uri"] is None:
                raise CommandError("A new directory needs --uri.")
            kind = options["kind"] or DirectoryKind.OPENLDAP
            directory = LdapDirectory(tenant=tenant, kind=kind, **defaults(kind))
            for name, value in demo_values(kind).items():
                setattr(directory, name, value)
        elif options["kind"] is not None and options["kind"] != directory.kind:
            # The new kind's defaults replace the old kind's, except where an option says otherwise.
            old, new = defaults(directory.kind), defaults(options["kind"])
            for name in KIND_FIELDS:
                if options[name] is None and getattr(directory, name) in ("", old[name]):
                    setattr(directory, name, new[name])
            directory.kind = options["kind"]
        form_fields = list(LdapDirectoryForm.Meta.fields)
        data = {
            name: value
            for name, value in model_to_dict(directory, fields=form_fields).items()
            if value is not None
        }
        data.pop("bind_password", None)
        given = [field for option, field in OPTION_FIELDS.items() if options[option] is not None]
        for option, field in OPTION_FIELDS.items():
            if options[option] is not None:
                data[field] = options[option]
        if options["start_tls"] is not None:
            data["start_tls"] = options["start_tls"]
            given.append("start_tls")
        if not data.get("start_tls"):
            data.pop("start_tls", None)  # an unchecked box is an absent field
        if options["ca_file"]:
            try:
                with open(options["ca_file"], encoding="ascii") as handle:
                    data["ca_certificate"] = handle.read()
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"--ca-file: cannot read {options['ca_file']}: {exc}") from exc
            given.append("ca_certificate")
        elif options["no_ca"]:
            data["ca_certificate"] = ""
            given.append("ca_certificate")
        password = options["bind_password"] or os.environ.get("LDAP_BIND_PASSWORD", "")
        if password:
            data["bind_password"] = password
            given.append("bind_password")
        with translation.override("en"), tenant_context(tenant):
            form = LdapDirectoryForm(data=data, instance=directory, tenant=tenant, keep_stored_password=True)
            if not form.is_valid():
                problems = "; ".join(
                    f"{name}: {' '.join(str(error) for error in errors)}"
                    for name, errors in form.errors.items()
                )
                raise CommandError(f"Invalid settings: {problems}")
        with transaction.atomic(), tenant_context(tenant):
            directory = form.save()
            audit_record(
                tenant=tenant,
                actor=None,
                actor_label="manage.py ldap_configure",
                action="ldap.directory.create" if created else "ldap.directory.update",
                target=directory.uri,
                details={"changed": sorted(set(given))},
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"{tenant.slug}: {directory.get_kind_display()} directory {directory.uri} ({directory.base_dn})"
            )
        )
