"""Writes of the core: tenants, audit, Blueprints and apps. Views and commands call these, never the ORM."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from mdm.models import App, AuditEvent, Blueprint, Role, Tenant, User

logger = logging.getLogger(__name__)

SYSTEM_ACTOR = "système"


def audit_record(
    *,
    tenant: Tenant,
    actor: User | None,
    action: str,
    target: str = "",
    details: dict[str, Any] | None = None,
    actor_label: str | None = None,
) -> AuditEvent:
    """Record one audit event. ``details`` must never contain a secret: callers pass counts, ids and names."""
    label = actor_label or (actor.get_username() if actor is not None else SYSTEM_ACTOR)
    event = AuditEvent.unscoped.create(
        tenant=tenant,
        actor=actor,
        actor_label=label,
        action=action,
        target=target[:300],
        details=details or {},
    )
    logger.info("audit tenant=%s actor=%s action=%s target=%s", tenant.slug, label, action, target)
    return event


def audit_purge(*, older_than_days: int) -> int:
    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted, _ = AuditEvent.unscoped.filter(created_at__lt=cutoff).delete()
    return deleted


@transaction.atomic
def tenant_create(*, slug: str, name: str, admin_email: str, admin_password: str) -> Tenant:
    tenant = Tenant.objects.create(slug=slug, name=name)
    admin = User.objects.create_user(
        username=admin_email, email=admin_email, password=admin_password, tenant=tenant, role=Role.ADMIN
    )
    audit_record(
        tenant=tenant, actor=None, action="tenant.create", target=slug, details={"admin": admin.email}
    )
    return tenant


def blueprint_save(*, blueprint: Blueprint, actor: User) -> Blueprint:
    created = blueprint.pk is None
    with transaction.atomic():
        blueprint.save()
        audit_record(
            tenant=blueprint.tenant,
            actor=actor,
            action="blueprint.create" if created else "blueprint.update",
            target=blueprint.name,
            details={"blueprint_id": blueprint.pk, "platform": blueprint.platform},
        )
    return blueprint


def app_save(*, app: App, actor: User) -> App:
    created = app.pk is None
    with transaction.atomic():
        app.save()
        audit_record(
            tenant=app.tenant,
            actor=actor,
            action="app.create" if created else "app.update",
            target=app.name,
            details={"app_id": app.pk, "kind": app.kind, "identifier": app.identifier},
        )
    return app
