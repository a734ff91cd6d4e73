"""Reads of the core that pages share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from mdm.models import AuditEvent


@dataclass(frozen=True)
class AuditFilter:
    actor: str = ""
    action: str = ""
    date_from: date | None = None
    date_to: date | None = None


def audit_events(flt: AuditFilter) -> QuerySet[AuditEvent]:
    qs = AuditEvent.objects.all()
    if flt.actor:
        qs = qs.filter(actor_label__icontains=flt.actor)
    if flt.action:
        qs = qs.filter(action__startswith=flt.action)
    tz = timezone.get_current_timezone()
    if flt.date_from:
        qs = qs.filter(created_at__gte=datetime.combine(flt.date_from, time.min, tzinfo=tz))
    if flt.date_to:
        qs = qs.filter(created_at__lt=datetime.combine(flt.date_to + timedelta(days=1), time.min, tzinfo=tz))
    return qs


def audit_actions() -> list[str]:
    return list(AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct())
