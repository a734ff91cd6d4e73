"""Writes of the core: tenants, audit, Blueprints and apps. Views and commands call these, never the ORM."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.files.storage import Storage
from django.db import transaction
from django.utils import timezone

from mdm.models import App, AuditEvent, Blueprint, Role, Tenant, User

logger = logging.getLogger(__name__)

SYSTEM_ACTOR = "système"


def audit_record(
    *,
    tenant: Tenant | None,
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
    logger.info(
        "audit tenant=%s actor=%s action=%s target=%s", tenant.slug if tenant else "-", label, action, target
    )
    return event


def signin_record(
    *,
    succeeded: bool,
    username: str,
    organisation: str = "",
    user: User | None = None,
    address: str | None = None,
    site: str = "console",
    blocked: bool = False,
    locked_out: bool = False,
) -> AuditEvent:
    """Audit one sign-in attempt. Only what was typed as a user name and organisation is kept, never the
    password. A failed attempt is filed under the tenant it aimed at (the organisation typed, or the local
    account's tenant) so the tenant's admins see attacks on their accounts; attempts at nothing known are
    filed under no tenant, for support."""
    username = username.strip()[:150]
    organisation = organisation.strip()[:63]
    tenant: Tenant | None = None
    if user is not None:
        tenant = user.tenant
    elif organisation:
        tenant = Tenant.objects.filter(slug=organisation).first()
    elif username:
        user = User.objects.filter(username=username).select_related("tenant").first()
        tenant = user.tenant if user is not None else None
    if succeeded:
        action = "auth.login"
    elif blocked:
        action = "auth.login_blocked"
    else:
        action = "auth.login_failed"
    details: dict[str, Any] = {"site": site, "address": address or ""}
    if organisation:
        details["organisation"] = organisation
    if locked_out:
        details["locked_out"] = True
    label = (user.get_username() if user is not None and succeeded else username) or "?"
    return audit_record(
        tenant=tenant,
        actor=user if succeeded else None,
        action=action,
        target=label,
        details=details,
        actor_label=label,
    )


def audit_purge(*, older_than_days: int) -> int:
    from axes.models import AccessFailureLog, AccessLog

    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted, _ = AuditEvent.unscoped.filter(created_at__lt=cutoff).delete()
    # django-axes keeps its own sign-in logs for support (/support/): same retention as the audit trail.
    AccessLog.objects.filter(attempt_time__lt=cutoff).delete()
    AccessFailureLog.objects.filter(attempt_time__lt=cutoff).delete()
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
    """Save an app; a package replaced or cleared leaves the disk once the new state is committed."""
    created = app.pk is None
    with transaction.atomic():
        previous = "" if created else App.unscoped.filter(pk=app.pk).values_list("file", flat=True).first()
        app.save()
        details: dict[str, Any] = {"app_id": app.pk, "kind": app.kind, "identifier": app.identifier}
        if (app.file.name or "") != (previous or ""):
            details["file"] = {"name": app.file_name, "size": app.file_size, "sha256": app.file_sha256}
        audit_record(
            tenant=app.tenant,
            actor=actor,
            action="app.create" if created else "app.update",
            target=app.name,
            details=details,
        )
        if previous and previous != app.file.name:
            _delete_file_on_commit(app.file.storage, previous)
    return app


def app_package_release(app: App) -> None:
    """The app row is gone: its package leaves the disk once that is committed."""
    if app.file.name:
        _delete_file_on_commit(app.file.storage, app.file.name)


def _delete_file_on_commit(storage: Storage, name: str) -> None:
    def delete() -> None:
        try:
            storage.delete(name)
        except OSError:
            # The row no longer points at it: a leftover file is harmless, a failed request would not be.
            logger.warning("could not delete the replaced app package %s", name, exc_info=True)

    transaction.on_commit(delete)


# -- deleting Blueprints and apps ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Usage:
    """Something that uses a Blueprint or an app (an OU assignment...): ``label`` for people, ``url`` to fix it."""

    label: str
    url: str = ""


# Integrations register what uses a Blueprint or an app, from their AppConfig.ready(), so mdm imports none of
# them. A provider takes the Blueprint or the app and returns its usages.
USAGE_PROVIDERS: list[Callable[[Blueprint | App], list[Usage]]] = []


def register_usage_provider(provider: Callable[[Blueprint | App], list[Usage]]) -> None:
    if provider not in USAGE_PROVIDERS:
        USAGE_PROVIDERS.append(provider)


def subject_usages(subject: Blueprint | App) -> list[Usage]:
    return [usage for provider in USAGE_PROVIDERS for usage in provider(subject)]


class SubjectInUse(Exception):
    """A Blueprint or an app still assigned somewhere is not deleted: its assignments are undone first, each
    with its own preview, so deleting never changes devices' policies behind the admin's back."""

    def __init__(self, usages: list[Usage]) -> None:
        super().__init__(f"{len(usages)} usage(s)")
        self.usages = usages


def blueprint_delete(*, blueprint: Blueprint, actor: User) -> None:
    with transaction.atomic():
        # The row lock orders this with a concurrent save; an assignment created in between is still undone at
        # Google by the integration's pre_delete hook.
        Blueprint.unscoped.select_for_update().filter(pk=blueprint.pk).first()
        usages = subject_usages(blueprint)
        if usages:
            raise SubjectInUse(usages)
        audit_record(
            tenant=blueprint.tenant,
            actor=actor,
            action="blueprint.delete",
            target=blueprint.name,
            details={
                "blueprint_id": blueprint.pk,
                "platform": blueprint.platform,
                "settings": blueprint.settings,
            },
        )
        blueprint.delete()


def app_delete(*, app: App, actor: User) -> None:
    """Delete an app that nothing uses, and its package once that is committed."""
    with transaction.atomic():
        App.unscoped.select_for_update().filter(pk=app.pk).first()
        usages = subject_usages(app)
        if usages:
            raise SubjectInUse(usages)
        details: dict[str, Any] = {"app_id": app.pk, "kind": app.kind, "identifier": app.identifier}
        if app.file:
            # The package itself leaves the disk on commit (app_package_release, on post_delete).
            details["file"] = {"name": app.file_name, "size": app.file_size, "sha256": app.file_sha256}
        audit_record(tenant=app.tenant, actor=actor, action="app.delete", target=app.name, details=details)
        app.delete()


def tenant_settings_update(*, tenant: Tenant, actor: User, time_zone: str) -> bool:
    """Changes the tenant's settings; audited when something changed. Returns whether anything changed."""
    from mdm.models import validate_time_zone

    validate_time_zone(time_zone)
    if tenant.time_zone == time_zone:
        return False
    before = tenant.time_zone
    tenant.time_zone = time_zone
    tenant.save(update_fields=["time_zone"])
    audit_record(
        tenant=tenant,
        actor=actor,
        action="tenant.settings.update",
        target=str(tenant.name),
        details={"time_zone": time_zone, "previous_time_zone": before},
    )
    return True
