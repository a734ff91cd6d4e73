"""Who may do what in the console.

| role       | reads | syncs, device actions | authorize / remove integrations, configure LDAP |
|------------|-------|-----------------------|--------------------------------------------------|
| admin      | yes   | yes                   | yes                                              |
| operator   | yes   | yes                   | no                                               |
| read_only  | yes   | no                    | no                                               |

Support staff (``is_staff`` without a tenant) use django-admin, not the console pages.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.mixins import AccessMixin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase

from mdm.models import Role, Tenant, User

ALL_ROLES = (Role.ADMIN, Role.OPERATOR, Role.READ_ONLY)
OPERATE_ROLES = (Role.ADMIN, Role.OPERATOR)
ADMIN_ROLES = (Role.ADMIN,)


def can_operate(user: User) -> bool:
    return user.has_role(*OPERATE_ROLES)


def can_administer(user: User) -> bool:
    return user.has_role(*ADMIN_ROLES)


class TenantRoleRequiredMixin(AccessMixin):
    """Console views: a signed-in tenant user with one of ``allowed_roles`` (reads: every role).

    ``write_roles`` restricts unsafe methods (POST...) further, so one view can show a page to every role
    and accept its form only from some.
    """

    allowed_roles: tuple[str, ...] = ALL_ROLES
    write_roles: tuple[str, ...] | None = None
    request: HttpRequest

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        user = request.user
        if not user.is_authenticated:
            return self.handle_no_permission()
        assert isinstance(user, User)
        if user.tenant_id is None:
            # Support staff have no tenant: their tool is django-admin.
            raise PermissionDenied("Support accounts use the administration site.")
        roles = self.allowed_roles
        if request.method not in ("GET", "HEAD", "OPTIONS") and self.write_roles is not None:
            roles = self.write_roles
        if user.role not in roles:
            raise PermissionDenied("Your role does not allow this.")
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]

    @property
    def actor(self) -> User:
        """The signed-in tenant user (``dispatch`` has checked who it is)."""
        user = self.request.user
        assert isinstance(user, User)
        return user

    @property
    def tenant(self) -> Tenant:
        user = self.request.user
        assert isinstance(user, User) and user.tenant is not None
        return user.tenant
