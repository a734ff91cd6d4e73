"""Saved views of the fleet table: create, change, delete. Who may touch a view is decided here.

| view           | sees it            | changes / deletes it      |
|----------------|--------------------|---------------------------|
| own, private   | its owner          | its owner                 |
| own, shared    | every tenant user  | its owner, any admin      |
| other's shared | every tenant user  | admins                    |
| other's private| nobody else (404)  | nobody else (404)         |

Sharing, unsharing, and changing or deleting a shared view are audited (what the whole tenant sees changed);
a private view is its owner's business and is not.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction

from chromeos.models import SavedDeviceView
from mdm.models import User
from mdm.permissions import can_administer
from mdm.services import audit_record


class DuplicateViewName(ValueError):
    """The owner already has a view of that name."""


def may_change(view: SavedDeviceView, user: User) -> bool:
    return view.owner_id == user.pk or (view.shared and can_administer(user))


def _audit(view: SavedDeviceView, actor: User, action: str, **details: Any) -> None:
    audit_record(
        tenant=view.tenant,
        actor=actor,
        action=f"device_view.{action}",
        target=view.name,
        details={"view_id": view.pk, "owner": view.owner.get_username(), **details},
    )


def device_view_create(
    *, owner: User, name: str, query: str, columns: list[str], shared: bool
) -> SavedDeviceView:
    if SavedDeviceView.objects.filter(owner=owner, name=name).exists():
        raise DuplicateViewName(name)  # checked first: a refused request writes nothing, not even a rollback
    view = SavedDeviceView(owner=owner, name=name, query=query, columns=columns, shared=shared)
    try:
        with transaction.atomic():
            view.save()
    except IntegrityError as exc:
        raise DuplicateViewName(name) from exc
    if shared:
        _audit(view, owner, "share", query=query)
    return view


def device_view_update(*, view: SavedDeviceView, actor: User, name: str, shared: bool) -> SavedDeviceView:
    if not may_change(view, actor):
        raise PermissionDenied("Only the owner or an admin changes a shared view.")
    if SavedDeviceView.objects.filter(owner_id=view.owner_id, name=name).exclude(pk=view.pk).exists():
        raise DuplicateViewName(name)
    was_shared, old_name = view.shared, view.name
    view.name, view.shared = name, shared
    try:
        with transaction.atomic():
            view.save(update_fields=["name", "shared", "updated_at"])
    except IntegrityError as exc:
        view.name, view.shared = old_name, was_shared
        raise DuplicateViewName(name) from exc
    if shared and not was_shared:
        _audit(view, actor, "share", query=view.query)
    elif was_shared and not shared:
        _audit(view, actor, "unshare")
    elif shared and old_name != name:
        _audit(view, actor, "rename", previous_name=old_name)
    return view


def device_view_delete(*, view: SavedDeviceView, actor: User) -> None:
    if not may_change(view, actor):
        raise PermissionDenied("Only the owner or an admin deletes a shared view.")
    if view.shared:
        _audit(view, actor, "delete")
    view.delete()
