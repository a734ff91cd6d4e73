from __future__ import annotations

import getpass
import os
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser, no_translations
from django.core.validators import validate_email, validate_slug

from mdm import services
from mdm.models import Tenant, User
from mdm.outbound import has_control_characters


class Command(BaseCommand):
    help = "Create a tenant and its first admin. The password comes from --password-env VAR or a prompt."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="Short identifier, e.g. acme (letters, digits, - and _).")
        parser.add_argument("--name", required=True, help="Display name, e.g. 'ACME SAS'.")
        parser.add_argument("--admin-email", required=True, help="E-mail (and user name) of the first admin.")
        parser.add_argument(
            "--password-env", metavar="VAR", help="Read the admin password from this variable."
        )

    @no_translations
    def handle(
        self, *args: Any, slug: str, name: str, admin_email: str, password_env: str | None, **opts: Any
    ) -> None:
        try:
            validate_slug(slug)
            validate_email(admin_email)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        # What the database would refuse with a traceback: say it in one line instead.
        name = name.strip()
        slug_max, name_max = (
            Tenant._meta.get_field("slug").max_length,
            Tenant._meta.get_field("name").max_length,
        )
        username_max = User._meta.get_field("username").max_length
        if slug_max and len(slug) > slug_max:
            raise CommandError(f"The slug is longer than {slug_max} characters.")
        if not name or (name_max and len(name) > name_max) or has_control_characters(name):
            raise CommandError(f"--name must be 1 to {name_max} characters, without control characters.")
        if username_max and len(admin_email) > username_max:
            raise CommandError("--admin-email is too long for a user name.")
        if Tenant.objects.filter(slug=slug).exists():
            raise CommandError(f"Tenant '{slug}' already exists.")
        if User.objects.filter(username=admin_email).exists():
            raise CommandError(f"A user '{admin_email}' already exists.")
        password = self._password(password_env)
        try:
            validate_password(password)
        except ValidationError as exc:
            raise CommandError("Password rejected: " + " ".join(exc.messages)) from exc
        tenant = services.tenant_create(
            slug=slug, name=name, admin_email=admin_email, admin_password=password
        )
        self.stdout.write(self.style.SUCCESS(f"Created tenant '{tenant.slug}' with admin {admin_email}."))

    def _password(self, password_env: str | None) -> str:
        if password_env:
            value = os.environ.get(password_env)
            if not value:
                raise CommandError(f"Environment variable {password_env} is unset or empty.")
            return value
        if not os.isatty(0):
            raise CommandError("No terminal to prompt for the password: use --password-env VAR.")
        first = getpass.getpass("Admin password: ")
        if first != getpass.getpass("Again: "):
            raise CommandError("The passwords differ.")
        return first
