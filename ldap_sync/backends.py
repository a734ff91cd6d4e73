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

The highest role wins; no group, no login (never a silent read-only). The role is re-read at every login.
Membership is resolved by the group type of the directory: AD groups through LDAP_MATCHING_RULE_IN_CHAIN
(nested groups count, as in AD itself), groupOfNames/groupOfUniqueNames with nesting, posixGroup by memberUid.
Each role group is checked by its own DN, so a group outside the base DN (or the group base) works too.

A user signs in with any of the directory's login attributes (AD: sAMAccountName or userPrincipalName) or,
on Active Directory, as ``DOMAIN\\user``. Accounts the disabled filter selects are refused. When the directory
refuses the bind, its reason (AD's 52e, 533, 775...) becomes the message of the login form
(``request.ldap_login_error``). Django users are named ``<tenant slug>:<uid>``: globally unique, and
unreachable by local sign-up (usernames cannot contain ``:``).
"""

from __future__ import annotations

from typing import Any

import ldap
import ldap.filter
from django.http import HttpRequest
from django_auth_ldap.backend import LDAPBackend, _LDAPUser
from django_auth_ldap.config import (
    ALLOWED_LDAP_MEMBERSHIP_EXCEPTIONS,
    LDAPGroupType,
    LDAPSearch,
    LDAPSettings,
    NestedGroupOfNamesType,
    NestedGroupOfUniqueNamesType,
    PosixGroupType,
)

from ldap_sync.client import (
    AD_BIND_MESSAGES,
    LdapError,
    PeerRefused,
    ad_bind_reason,
    ca_cert_file,
    escape_filter_value,
    guarded_initialize,
    normalize_dn,
)
from ldap_sync.kinds import DirectoryKind, GroupType
from ldap_sync.models import DirectoryRevocation, LdapDirectory, LdapUser
from mdm import auth as throttle
from mdm import outbound
from mdm.models import Role, Tenant, User

ROLE_ORDER = (Role.ADMIN, Role.OPERATOR, Role.READ_ONLY)
IN_CHAIN = "1.2.840.113556.1.4.1941"  # LDAP_MATCHING_RULE_IN_CHAIN: AD's transitive membership test
DISABLED_MESSAGE = AD_BIND_MESSAGES["533"]


class ActiveDirectoryNestedGroupType(LDAPGroupType):
    """AD security groups, nested ones included, resolved by the server in one search each."""

    def _chain_filter(self, ldap_user: _LDAPUser) -> str:
        return f"(member:{IN_CHAIN}:={escape_filter_value(ldap_user.dn)})"

    def user_groups(self, ldap_user: _LDAPUser, group_search: LDAPSearch) -> Any:
        search = group_search.search_with_additional_term_string(self._chain_filter(ldap_user))
        return search.execute(ldap_user.connection)

    def is_member(self, ldap_user: _LDAPUser, group_dn: str) -> bool:
        try:
            found = ldap_user.connection.search_s(
                group_dn, ldap.SCOPE_BASE, self._chain_filter(ldap_user), ["1.1"]
            )
        except ALLOWED_LDAP_MEMBERSHIP_EXCEPTIONS:
            return False
        return any(dn for dn, _attrs in found)


GROUP_TYPES: dict[str, tuple[Any, str]] = {
    GroupType.AD_NESTED: (ActiveDirectoryNestedGroupType, "(objectClass=group)"),
    GroupType.GROUP_OF_NAMES: (NestedGroupOfNamesType, "(objectClass=groupOfNames)"),
    GroupType.GROUP_OF_UNIQUE_NAMES: (NestedGroupOfUniqueNamesType, "(objectClass=groupOfUniqueNames)"),
    GroupType.POSIX_GROUP: (PosixGroupType, "(objectClass=posixGroup)"),
}


def login_name(directory: LdapDirectory, typed: str) -> str:
    """``EXAMPLE\\jdoe`` -> ``jdoe`` on Active Directory (the down-level logon name AD users type)."""
    typed = typed.strip()
    if directory.kind == DirectoryKind.ACTIVE_DIRECTORY and "\\" in typed:
        return typed.split("\\", 1)[1]
    return typed


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
    settings = LDAPSettings(prefix="MDM_TENANT_LDAP_UNUSED_")
    settings.SERVER_URI = directory.uri
    settings.START_TLS = directory.start_tls
    settings.BIND_DN = directory.bind_dn
    settings.BIND_PASSWORD = directory.bind_password or ""
    settings.CONNECTION_OPTIONS = options
    logins = "".join(f"({attribute}=%(user)s)" for attribute in directory.login_attribute_list)
    settings.USER_SEARCH = LDAPSearch(
        directory.base_dn,
        ldap.SCOPE_SUBTREE,
        # The filter is %-formatted by django-auth-ldap (which escapes the typed user name): double the admin's %.
        f"(&{directory.user_filter.replace('%', '%%')}(|{logins}))",
    )
    group_type, group_filter = GROUP_TYPES.get(directory.group_type, GROUP_TYPES[GroupType.GROUP_OF_NAMES])
    settings.GROUP_TYPE = group_type()
    settings.GROUP_SEARCH = LDAPSearch(directory.groups_search_base, ldap.SCOPE_SUBTREE, group_filter)
    # Role membership (none, no login) is decided in get_or_build_user, by each group type's own test.
    settings.REQUIRE_GROUP = None
    # Given name and surname: people are shown by name, not by ``<tenant>:<uid>``. The address (with its
    # fallback) is set in get_or_build_user.
    settings.USER_ATTR_MAP = {"first_name": "givenName", "last_name": "sn"}
    settings.ALWAYS_UPDATE_USER = True
    settings.PERMIT_EMPTY_PASSWORD = False
    settings.CACHE_TIMEOUT = 0
    return settings


class GuardedLdap:
    """python-ldap as django-auth-ldap sees it, except that connections go through the outbound guard."""

    def __init__(self, network_timeout: float) -> None:
        self.network_timeout = network_timeout

    def initialize(self, uri: str, **_kwargs: Any) -> Any:
        try:
            return guarded_initialize(uri, timeout=self.network_timeout)
        except outbound.OutboundRefused as exc:
            raise PeerRefused(exc) from exc  # an LDAPError: django-auth-ldap reports a failed login
        except OSError as exc:  # unreachable: what libldap itself would have said
            raise ldap.SERVER_DOWN({"desc": "Can't contact LDAP server", "info": str(exc)}) from exc

    def __getattr__(self, name: str) -> Any:
        return getattr(ldap, name)


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
        if outbound.has_control_characters(username) or outbound.has_control_characters(password):
            return None  # never sent to the directory (mdm/outbound.py)
        found = Tenant.objects.filter(slug=tenant).first()
        if found is None:
            return None
        directory = LdapDirectory.unscoped.filter(tenant=found).first()
        if directory is None or not directory.is_configured or not role_groups(directory):
            return None
        stored = (directory.uri, directory.bind_dn, directory.bind_password or "", directory.base_dn)
        if any(outbound.has_control_characters(value) for value in (*stored, directory.user_filter)):
            return None  # saved before the form refused them: still never sent (mdm/outbound.py)
        self.tenant = found
        self.directory = directory
        try:
            self.settings = auth_settings(directory)
        except LdapError:  # e.g. a stored CA certificate that no longer parses: a refused login, not a 500
            return None
        self._ldap = GuardedLdap(float(directory.network_timeout))
        self.request = request
        return super().authenticate(request, username=login_name(directory, username), password=password)

    def authenticate_ldap_user(self, ldap_user: _LDAPUser, password: str) -> User | None:
        # django-auth-ldap turns a refused bind into a bare failure: keep the server's reason for the form.
        bind_as = ldap_user._bind_as

        def bind_keeping_reason(bind_dn: str, bind_password: str, sticky: bool = False) -> None:
            if bind_dn != self.settings.BIND_DN and not throttle.directory_account_allowed(
                self.request, self.tenant.slug, normalize_dn(bind_dn)
            ):
                raise ldap_user.AuthenticationFailed("directory account locked out: no bind sent")
            try:
                bind_as(bind_dn, bind_password, sticky=sticky)
            except ldap.INVALID_CREDENTIALS as exc:
                if bind_dn != self.settings.BIND_DN:
                    reason = ad_bind_reason(exc)
                    if reason:
                        self._report(AD_BIND_MESSAGES[reason])
                raise

        ldap_user._bind_as = bind_keeping_reason
        self.entry: LdapUser | None = None
        user = super().authenticate_ldap_user(ldap_user, password)
        if user is not None and self.entry is not None and self.entry.console_user_id != user.pk:
            LdapUser.unscoped.filter(console_user=user).update(console_user=None)
            LdapUser.unscoped.filter(pk=self.entry.pk).update(console_user=user)
        return user

    def _report(self, message: str) -> None:
        if self.request is not None:
            self.request.ldap_login_error = message  # type: ignore[attr-defined]

    def get_or_build_user(self, username: str, ldap_user: _LDAPUser) -> tuple[User, bool]:
        if self._is_disabled(ldap_user):
            self._report(DISABLED_MESSAGE)
            raise ldap_user.AuthenticationFailed("account disabled in the directory")
        role = self._role(ldap_user)
        if role is None:
            raise ldap_user.AuthenticationFailed("in no role group")
        uid = ldap_user.attrs.get(self.directory.uid_attribute.lower(), [username])[0]
        django_username = f"{self.tenant.slug}:{uid.lower()}"[:150]
        # Keyed to the directory id: the imported entry's account, even if its login was renamed since.
        self.entry = (
            LdapUser.unscoped.filter(tenant=self.tenant, dn__iexact=ldap_user.dn, missing_since__isnull=True)
            .select_related("console_user")
            .first()
        )
        user = self.entry.console_user if self.entry is not None else None
        if (
            user is not None
            and user.username != django_username
            and not User.objects.filter(username=django_username).exists()
        ):
            user.username = django_username  # the login was renamed in the directory: same account
        if user is None:
            user = User.objects.filter(username=django_username).first()
        built = user is None
        if user is None:
            user = User(username=django_username, tenant=self.tenant)
        elif not user.is_active and DirectoryRevocation.unscoped.filter(user=user).exists():
            # The sync had withdrawn access; the directory grants it again (this bind and group check passed).
            DirectoryRevocation.unscoped.filter(user=user).delete()
            user.is_active = True
        user.role = role
        user.email = self._email(ldap_user)
        if not (ldap_user.attrs.get("givenname") or ldap_user.attrs.get("sn")):
            # No given name nor surname (USER_ATTR_MAP's source): the directory's display name names them.
            names = ldap_user.attrs.get(self.directory.name_attribute.lower()) or [""]
            user.first_name, user.last_name = str(names[0]).strip()[:150], ""
        return user, built

    def _email(self, ldap_user: _LDAPUser) -> str:
        for attribute in (self.directory.email_attribute, self.directory.email_fallback_attribute):
            values = ldap_user.attrs.get(attribute.lower(), []) if attribute else []
            if values and values[0].strip():
                return str(values[0]).strip().lower()[:254]
        return ""

    def _is_disabled(self, ldap_user: _LDAPUser) -> bool:
        """The disabled filter, evaluated by the server on this one entry (AD refuses such binds itself)."""
        if not self.directory.disabled_filter:
            return False
        try:
            found = ldap_user.connection.search_s(
                ldap_user.dn, ldap.SCOPE_BASE, self.directory.disabled_filter, ["1.1"]
            )
        except ldap.NO_SUCH_OBJECT:
            return True
        return any(dn for dn, _attrs in found)

    def _role(self, ldap_user: _LDAPUser) -> str | None:
        """The highest role whose group holds the user (directly or through nested groups), else None."""
        groups = role_groups(self.directory)
        group_type = self.settings.GROUP_TYPE
        member_of: set[str] | None = None
        for role in ROLE_ORDER:
            if role not in groups:
                continue
            member = group_type.is_member(ldap_user, groups[role])
            if member is None:  # nested types answer with the user's whole group list
                if member_of is None:
                    member_of = {normalize_dn(dn).casefold() for dn in ldap_user.group_dns}
                member = normalize_dn(groups[role]).casefold() in member_of
            if member:
                return role
        return None

    def get_user(self, user_id: int) -> User | None:
        # The session only needs the Django user; rebuilding the tenant's LDAP settings is not needed here. Its
        # stored state is re-read at every request: a deactivated account (by the sync or by support) is signed out.
        user = User.objects.filter(pk=user_id).first()
        return user if user is not None and user.is_active else None
