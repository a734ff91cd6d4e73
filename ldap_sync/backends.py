"""Console login through the tenant's own directory (django-auth-ldap), next to local accounts.

The login form passes the organisation's slug as ``tenant``; this backend reads that tenant's ``LdapDirectory``
and builds django-auth-ldap's settings from it for this one authentication (Django instantiates backends per
call, so nothing leaks between tenants). The user is found with the directory's user filter and uid attribute
(django-auth-ldap escapes the typed name), bound as themselves, and must belong to one of the role groups:

==================  =======================
group (DN on the    console role
LdapDirectory)
==================  =======================
admin_group_dn      ``Role.ADMIN``
operator_group_dn   ``Role.OPERATOR``
readonly_group_dn   ``Role.READ_ONLY``
==================  =======================

The highest role wins; no group, no login. The role is re-read at every login. Django users are named
``<tenant slug>:<uid>``: globally unique, and unreachable by local sign-up (usernames cannot contain ``:``).
"""

from __future__ import annotations

from typing import Any

import ldap
from django.http import HttpRequest
from django_auth_ldap.backend import LDAPBackend, _LDAPUser
from django_auth_ldap.config import GroupOfNamesType, LDAPGroupQuery, LDAPSearch, LDAPSettings

from ldap_sync.client import ca_cert_file, normalize_dn
from ldap_sync.models import LdapDirectory
from mdm.models import Role, Tenant, User

ROLE_ORDER = (Role.ADMIN, Role.OPERATOR, Role.READ_ONLY)


def role_groups(directory: LdapDirectory) -> dict[str, str]:
    groups = {
        Role.ADMIN: directory.admin_group_dn,
        Role.OPERATOR: directory.operator_group_dn,
        Role.READ_ONLY: directory.readonly_group_dn,
    }
    return {role: dn for role, dn in groups.items() if dn}


def auth_settings(directory: LdapDirectory) -> LDAPSettings:
    """django-auth-ldap settings for one tenant's directory (never read from django.conf.settings)."""
    options: dict[Any, Any] = {
        ldap.OPT_REFERRALS: 0,
        ldap.OPT_NETWORK_TIMEOUT: float(directory.network_timeout),
        ldap.OPT_TIMEOUT: float(directory.operation_timeout),
    }
    connection = directory.connection_settings()
    if connection.uses_tls:
        options[ldap.OPT_X_TLS_REQUIRE_CERT] = ldap.OPT_X_TLS_DEMAND
        if directory.ca_certificate.strip():
            options[ldap.OPT_X_TLS_CACERTFILE] = ca_cert_file(directory.ca_certificate)
        options[ldap.OPT_X_TLS_NEWCTX] = 0  # last: builds the TLS context from the options above
    groups = role_groups(directory)
    settings = LDAPSettings(prefix="MDM_TENANT_LDAP_UNUSED_")
    settings.SERVER_URI = directory.uri
    settings.START_TLS = directory.start_tls
    settings.BIND_DN = directory.bind_dn
    settings.BIND_PASSWORD = directory.bind_password or ""
    settings.CONNECTION_OPTIONS = options
    settings.USER_SEARCH = LDAPSearch(
        directory.base_dn,
        ldap.SCOPE_SUBTREE,
        # The filter is %-formatted by django-auth-ldap (which escapes the typed user name): double the admin's %.
        f"(&{directory.user_filter.replace('%', '%%')}({directory.uid_attribute}=%(user)s))",
    )
    settings.GROUP_TYPE = GroupOfNamesType()
    settings.GROUP_SEARCH = LDAPSearch(directory.base_dn, ldap.SCOPE_SUBTREE, "(objectClass=groupOfNames)")
    query: LDAPGroupQuery | None = None
    for dn in groups.values():
        query = LDAPGroupQuery(dn) if query is None else query | LDAPGroupQuery(dn)
    # Without any role group configured nobody may sign in through LDAP: an impossible requirement.
    settings.REQUIRE_GROUP = query or LDAPGroupQuery("cn=no-role-group-configured")
    # Given name and surname: people are shown by name, not by ``<tenant>:<uid>``.
    settings.USER_ATTR_MAP = {
        "email": directory.email_attribute,
        "first_name": "givenName",
        "last_name": "sn",
    }
    settings.ALWAYS_UPDATE_USER = True
    settings.PERMIT_EMPTY_PASSWORD = False
    settings.CACHE_TIMEOUT = 0
    return settings


class TenantLDAPBackend(LDAPBackend):
    """Authenticates ``username`` against the directory of the tenant named by ``tenant`` (a slug)."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        tenant: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        if not tenant or not username or not password:
            return None
        found = Tenant.objects.filter(slug=tenant).first()
        if found is None:
            return None
        directory = LdapDirectory.unscoped.filter(tenant=found).first()
        if directory is None or not directory.is_configured or not role_groups(directory):
            return None
        self.tenant = found
        self.directory = directory
        self.settings = auth_settings(directory)
        return super().authenticate(request, username=username, password=password)

    def get_or_build_user(self, username: str, ldap_user: _LDAPUser) -> tuple[User, bool]:
        uid = ldap_user.attrs.get(self.directory.uid_attribute.lower(), [username])[0]
        django_username = f"{self.tenant.slug}:{uid.lower()}"[:150]
        user = User.objects.filter(username=django_username).first()
        built = user is None
        if user is None:
            user = User(username=django_username, tenant=self.tenant)
        user.role = self._role(ldap_user)
        return user, built

    def _role(self, ldap_user: _LDAPUser) -> str:
        member_of = {normalize_dn(dn).casefold() for dn in ldap_user.group_dns}
        groups = role_groups(self.directory)
        for role in ROLE_ORDER:
            if role in groups and normalize_dn(groups[role]).casefold() in member_of:
                return role
        return Role.READ_ONLY  # unreachable: REQUIRE_GROUP already demanded one of the groups

    def get_user(self, user_id: int) -> User | None:
        # The session only needs the Django user; rebuilding the tenant's LDAP settings is not needed here.
        return User.objects.filter(pk=user_id).first()
