from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db.models import Count

from mdm.models import Tenant


class Command(BaseCommand):
    help = "List tenants with their user counts."

    def handle(self, *args: Any, **opts: Any) -> None:
        tenants = Tenant.objects.annotate(user_count=Count("users")).order_by("slug")
        self.stdout.write(f"{'SLUG':<24} {'USERS':>5}  {'CREATED':<16}  NAME")
        for t in tenants:
            self.stdout.write(f"{t.slug:<24} {t.user_count:>5}  {t.created_at:%Y-%m-%d %H:%M}  {t.name}")
        self.stdout.write(f"{tenants.count()} tenant(s)")
