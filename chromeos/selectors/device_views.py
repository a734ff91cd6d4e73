"""Reads of the fleet table's saved views: what the « Vues » menu lists for a user, and one view by id."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404

from chromeos.models import SavedDeviceView
from mdm.models import User


def visible_views(user: User) -> QuerySet[SavedDeviceView]:
    """The user's own views and the tenant's shared ones (the current tenant's only)."""
    return SavedDeviceView.objects.filter(Q(owner=user) | Q(shared=True)).select_related("owner")


def visible_view(user: User, pk: int) -> SavedDeviceView:
    """A view the user may see; another user's private view, or another tenant's view, is 404."""
    try:
        return visible_views(user).get(pk=pk)
    except SavedDeviceView.DoesNotExist as exc:
        raise Http404("No such view.") from exc
