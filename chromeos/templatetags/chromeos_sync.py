"""``{% sync_panel as sync %}``: the sync panel's state, so that the Gestion ChromeOS page can include
``chromeos/_sync_panel.html`` without its view knowing anything about syncs."""

from __future__ import annotations

from typing import Any

from django import template

from chromeos.selectors.sync import SyncPanel
from chromeos.selectors.sync import sync_panel as select_sync_panel
from mdm.models import User

register = template.Library()


@register.simple_tag(takes_context=True)
def sync_panel(context: Any) -> SyncPanel | None:
    request = context.get("request")
    user = getattr(request, "user", None)
    if not isinstance(user, User) or user.tenant is None:
        return None
    return select_sync_panel(context.get("integration"))


@register.filter
def duration(seconds: int | None) -> str:
    """< 1 s, 12 s, 3 min 05 s, 1 h 02 min (a run shorter than a second does not read "0 s")."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return "< 1 s"
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


@register.filter
def run_duration(run: Any) -> str:
    if run is None or run.started_at is None or run.finished_at is None:
        return "—"
    return duration(max(int((run.finished_at - run.started_at).total_seconds()), 0))
