"""The two kinds of directory the console reads, and the settings each fills in by default.

A kind only chooses defaults: every value stays overridable on the LDAP page and by ``ldap_configure``. The
Active Directory defaults are what a domain needs out of the box: OUs without the domain's built-in system
OU (``OU=Domain Controllers`` is a critical system object; the built-in ``CN=`` containers are not OUs), people
that are user objects (computers are users too, but not persons), the built-in Administrator/Guest/krbtgt
accounts left out the same way, ``objectGUID`` as the identity, ``sAMAccountName`` and the UPN as logins,
``displayName`` as the name, the UPN when ``mail`` is empty, ACCOUNTDISABLE as "disabled", and role groups
resolved through nesting (LDAP_MATCHING_RULE_IN_CHAIN).
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

OBJECT_GUID = "objectGUID"
ENTRY_UUID = "entryUUID"
# userAccountControl & ACCOUNTDISABLE (2), through LDAP_MATCHING_RULE_BIT_AND.
AD_DISABLED_FILTER = "(userAccountControl:1.2.840.113556.1.4.803:=2)"
# ppolicy's lock (slapd with the ppolicy overlay); an admin with another convention sets their own filter.
OPENLDAP_DISABLED_FILTER = "(pwdAccountLockedTime=*)"


class DirectoryKind(models.TextChoices):
    OPENLDAP = "openldap", _("OpenLDAP (ou autre annuaire LDAP)")
    ACTIVE_DIRECTORY = "active-directory", _("Active Directory")


class GroupType(models.TextChoices):
    AD_NESTED = "ad-nested", _("Groupes Active Directory, imbrication comprise")
    GROUP_OF_NAMES = "groupOfNames", _("groupOfNames (member), imbrication comprise")
    GROUP_OF_UNIQUE_NAMES = "groupOfUniqueNames", _("groupOfUniqueNames (uniqueMember), imbrication comprise")
    POSIX_GROUP = "posixGroup", _("posixGroup (memberUid)")


DEFAULTS: dict[str, dict[str, str]] = {
    DirectoryKind.OPENLDAP: {
        "ou_filter": "(objectClass=organizationalUnit)",
        "user_filter": "(objectClass=inetOrgPerson)",
        "id_attribute": ENTRY_UUID,
        "uid_attribute": "uid",
        "login_attributes": "uid",
        "name_attribute": "cn",
        "email_attribute": "mail",
        "email_fallback_attribute": "",
        "disabled_filter": OPENLDAP_DISABLED_FILTER,
        "group_type": GroupType.GROUP_OF_NAMES,
    },
    DirectoryKind.ACTIVE_DIRECTORY: {
        "ou_filter": "(&(objectClass=organizationalUnit)(!(isCriticalSystemObject=TRUE)))",
        "user_filter": "(&(objectCategory=person)(objectClass=user)(!(isCriticalSystemObject=TRUE)))",
        "id_attribute": OBJECT_GUID,
        "uid_attribute": "sAMAccountName",
        "login_attributes": "sAMAccountName userPrincipalName",
        "name_attribute": "displayName",
        "email_attribute": "mail",
        "email_fallback_attribute": "userPrincipalName",
        "disabled_filter": AD_DISABLED_FILTER,
        "group_type": GroupType.AD_NESTED,
    },
}
KIND_FIELDS = tuple(DEFAULTS[DirectoryKind.OPENLDAP])


def defaults(kind: str) -> dict[str, str]:
    return dict(DEFAULTS[DirectoryKind(kind)])
