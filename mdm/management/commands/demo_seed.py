from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from mdm.models import App, AppKind, Blueprint, Platform, Role, Tenant, User
from mdm.tenancy import tenant_context

DEMO_SLUG = "demo"
DEMO_USERS = [
    ("admin@demo.example", "demo-admin-2026", Role.ADMIN),
    ("operateur@demo.example", "demo-operateur-2026", Role.OPERATOR),
    ("lecteur@demo.example", "demo-lecteur-2026", Role.READ_ONLY),
]
# Each seeded Blueprint carries the ChromeOS settings its description promises: a newcomer following the README
# assigns them as they are (a Blueprint without a ChromeOS setting cannot be assigned).
DEMO_BLUEPRINTS = [
    ("Écoles primaires", "Chromebooks partagés des écoles : mode invité désactivé.", {"guest_mode": False}),
    (
        "Bornes d'accueil",
        "Appareils en libre-service des agences : mode invité autorisé, bouton de déconnexion affiché.",
        {"guest_mode": True, "logout_button": True},
    ),
]
DEMO_APPS = [
    ("Google Keep", AppKind.CHROME, "hmjkmjkepdijhoojdojkdfohbdgmmhki"),
    ("Calculatrice", AppKind.ANDROID, "com.google.android.calculator"),
]


class Command(BaseCommand):
    help = "Create (or refresh) the demo tenant: users of every role, Blueprints and apps."

    @transaction.atomic
    def handle(self, *args: Any, **opts: Any) -> None:
        tenant, _ = Tenant.objects.get_or_create(slug=DEMO_SLUG, defaults={"name": "Démo Éducation"})
        for username, password, role in DEMO_USERS:
            user, _ = User.objects.get_or_create(username=username, defaults={"email": username})
            user.tenant, user.role = tenant, role
            user.set_password(password)
            user.save()
        with tenant_context(tenant):
            for name, description, settings in DEMO_BLUEPRINTS:
                blueprint, created = Blueprint.objects.get_or_create(
                    name=name,
                    defaults={
                        "platform": Platform.CHROMEOS,
                        "description": description,
                        "settings": settings,
                    },
                )
                if not created and not blueprint.settings:
                    # A demo seeded before the Blueprints had their settings: give them, keep any edits.
                    blueprint.settings, blueprint.description = settings, description
                    blueprint.save(update_fields=["settings", "description", "updated_at"])
            for name, kind, identifier in DEMO_APPS:
                App.objects.get_or_create(kind=kind, identifier=identifier, defaults={"name": name})
        self.stdout.write(self.style.SUCCESS(f"Demo tenant '{tenant.slug}' ready."))
        for username, password, role in DEMO_USERS:
            self.stdout.write(f"  {role:<10} {username} / {password}")
