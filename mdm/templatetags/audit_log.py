"""The audit journal's rows: the sentence, the category, the details in words (``mdm.audit``)."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString

from mdm import audit
from mdm.models import AuditEvent

register = template.Library()


@register.filter
def audit_sentence(event: AuditEvent) -> SafeString:
    return audit.sentence(event)


@register.filter
def audit_category(event: AuditEvent) -> str:
    return str(audit.CATEGORIES[audit.category_of(event.action)])


@register.filter
def audit_details(event: AuditEvent) -> list[tuple[str, str]]:
    return audit.detail_pairs(event)


@register.filter
def audit_actor(event: AuditEvent) -> str:
    return audit.actor_name(event)
