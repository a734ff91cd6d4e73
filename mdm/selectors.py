"""Reads of the core that pages share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from mdm.audit import CATEGORY_PREFIXES, category_prefixes
from mdm.display import StripInvisible, strip_invisible
from mdm.models import AuditEvent


@dataclass(frozen=True)
class AuditFilter:
    actor: str = ""
    action: str = ""
    date_from: date | None = None
    date_to: date | None = None
    category: str = ""


def audit_events(flt: AuditFilter) -> QuerySet[AuditEvent]:
    qs = AuditEvent.objects.select_related("actor")
    if flt.category:
        qs = qs.filter(_category_q(flt.category))
    if flt.actor:
        # Invisible formatting characters in LDAP names never decide a match (mdm/display.py).
        qs = qs.alias(actor_visible=StripInvisible("actor_label")).filter(
            actor_visible__icontains=strip_invisible(flt.actor)
        )
    if flt.action:
        qs = qs.filter(action__startswith=flt.action)
    tz = timezone.get_current_timezone()
    # The first and last days a date field accepts bound nothing (and the day after the last one does not exist).
    if flt.date_from and flt.date_from > date.min:
        qs = qs.filter(created_at__gte=datetime.combine(flt.date_from, time.min, tzinfo=tz))
    if flt.date_to and flt.date_to < date.max:
        qs = qs.filter(created_at__lt=datetime.combine(flt.date_to + timedelta(days=1), time.min, tzinfo=tz))
    return qs


def _category_q(category: str) -> Q:
    """Events of a journal category: their code starts with one of its prefixes ("other": with none)."""
    if category == "other":
        known = Q(pk__in=[])
        for prefix in CATEGORY_PREFIXES:
            known |= Q(action__startswith=prefix)
        return ~known
    wanted = Q(pk__in=[])
    for prefix in category_prefixes(category):
        wanted |= Q(action__startswith=prefix)
    return wanted


def audit_actions() -> list[str]:
    return list(AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct())
