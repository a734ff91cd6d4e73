from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from mdm.checks import key_problems
from mdm.fields import DecryptionError, encrypted_fields, primary_key_id


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted value with the first key of MDM_ENCRYPTION_KEYS. "
        "Run after putting a new key first; drop the old key once this reports nothing left."
    )

    def handle(self, *args: Any, **opts: Any) -> None:
        # The development key is refused by check --deploy, not here: rotating away from it is the cure.
        problems = [p for p in key_problems(list(settings.MDM_ENCRYPTION_KEYS)) if p[0] != "mdm.E003"]
        if problems:
            # One line per bad key, no traceback: this runs in the middle of a key rotation, under stress.
            raise CommandError(" ".join(message for _, message in problems))
        primary = primary_key_id()
        total = 0
        for model, field in encrypted_fields():
            stale = (
                model._base_manager.exclude(**{f"{field.attname}__isnull": True})
                .exclude(**{f"{field.attname}__exact": ""})
                .exclude(**{f"{field.attname}__startswith": f"{primary}$"})
            )
            count = 0
            for pk in stale.values_list("pk", flat=True).iterator():
                with transaction.atomic():
                    try:
                        obj = model._base_manager.select_for_update().get(pk=pk)
                    except DecryptionError as exc:
                        raise CommandError(f"{model._meta.label} pk={pk}: {exc}") from exc
                    model._base_manager.filter(pk=pk).update(**{field.attname: getattr(obj, field.attname)})
                count += 1
            total += count
            self.stdout.write(f"{model._meta.label}.{field.name}: {count} value(s) re-encrypted")
        self.stdout.write(self.style.SUCCESS(f"Done: {total} value(s) now use key {primary}."))
