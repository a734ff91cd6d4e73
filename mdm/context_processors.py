from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from mdm.models import User
from mdm.permissions import can_administer, can_operate


def console(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if not isinstance(user, User) or not user.is_authenticated:
        return {}
    return {
        "current_tenant": user.tenant,
        "can_operate": can_operate(user),
        "can_administer": can_administer(user),
    }
