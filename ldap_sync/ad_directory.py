"""A realistic Active Directory for the tests and the demo, as LDIF for Samba's ``ldbadd``.

``demo()`` builds what a French school district's AD looks like: ≥ 200 nested OUs whose names carry accents,
commas, ``#``, ``+``, quotes and leading spaces (everything RFC 4514 makes a client escape), ≥ 1,000 users
(``user`` objects with sAMAccountName, userPrincipalName and displayName; some without ``mail``, some disabled
through userAccountControl's ACCOUNTDISABLE bit) and the console's role groups as AD security groups, the admin
group reached through a nested group as AD admins build them. It is deterministic for a given seed, and
``content_key()`` names its content (the Samba fixture caches a loaded domain under that key).

The same ``Directory``-like helpers as ``demo_directory``: ``ou_paths()``, ``role_logins``, ``service_bind_dn``.
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from ldap.dn import escape_dn_chars

from ldap_sync.demo_directory import FIRST_NAMES, LAST_NAMES, _ldif_line, ascii_fold, google_path

REALM = "EXAMPLE.TEST"
NETBIOS_DOMAIN = "EXAMPLE"
BASE_DN = "DC=example,DC=test"
UPN_SUFFIX = REALM.lower()
MAIL_DOMAIN = "example.test"
ADMIN_PASSWORD = "Admin-Secret-42"  # noqa: S105 - throwaway test/demo domain
SERVICE_PASSWORD = "Sync-Secret-42"  # noqa: S105
USER_PASSWORD = "Demo-Secret-42"  # noqa: S105
SERVICE_ACCOUNT = "mdm-sync"
GROUPS_OU = "Groupes"
SERVICES_OU = "Services"
# role -> (group, nested group holding the actual members or None)
ROLE_GROUPS = {
    "admin": ("MDM Admins", "MDM Admins Niveau 2"),
    "operator": ("MDM Opérateurs", None),
    "read_only": ("MDM Lecture", None),
}
# userAccountControl: NORMAL_ACCOUNT, ACCOUNTDISABLE, DONT_EXPIRE_PASSWORD.
UAC_NORMAL = 0x200
UAC_DISABLED = 0x2
UAC_DONT_EXPIRE = 0x10000
GROUP_TYPE_GLOBAL_SECURITY = -2147483646

# Names an AD admin really types, and every character a DN must escape or that tempts a naive parser.
SPECIAL_NAMES = [
    'Lycée "Jean Moulin"',
    "Sciences, Techniques & Arts",
    "#Projets",
    "C++ Développeurs",
    " Espace Élèves",
    "Seconde 1 + 2",
    "Salle n°3; Bâtiment <B>",
    "Équipe \\ Réseau",
    "Collège Saint-Exupéry = Nord",
]
TOWNS = [
    "Créteil",
    "Vitry-sur-Seine",
    "Saint-Maur-des-Fossés",
    "Ivry",
    "Champigny",
    "Nogent",
    "Fontenay-sous-Bois",
    "Villejuif",
]
SCHOOLS = ["Collège Pasteur", "Lycée Condorcet", "École Jules-Ferry", "Lycée Pro Gustave-Eiffel"]
SERVICES = ["Administration", "Enseignants", "Élèves", "Vie scolaire", "CDI"]


@dataclass(frozen=True)
class AdUser:
    sam: str
    given_name: str
    surname: str
    ou_path: tuple[str, ...]
    mail: str | None
    disabled: bool = False

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.surname}"

    @property
    def cn(self) -> str:
        # CNs are unique per container: the sAMAccountName keeps two "Léa Martin" of one OU apart.
        return f"{self.display_name} ({self.sam})"

    @property
    def upn(self) -> str:
        return f"{self.sam}@{UPN_SUFFIX}"

    @property
    def email(self) -> str:
        """What the console imports: ``mail``, else the UPN (the AD kind's fallback)."""
        return (self.mail or self.upn).lower()

    def dn(self, base_dn: str) -> str:
        return f"CN={escape_dn_chars(self.cn)},{ou_dn(self.ou_path, base_dn)}"


def ou_dn(path: tuple[str, ...], base_dn: str) -> str:
    rdns = [f"OU={escape_dn_chars(name)}" for name in reversed(path)]
    return ",".join([*rdns, base_dn])


@dataclass
class AdDirectory:
    base_dn: str = BASE_DN
    realm: str = REALM
    netbios_domain: str = NETBIOS_DOMAIN
    ous: list[tuple[str, ...]] = field(default_factory=list)
    users: list[AdUser] = field(default_factory=list)
    role_members: dict[str, list[str]] = field(default_factory=dict)  # role -> sAMAccountNames
    admin_password: str = ADMIN_PASSWORD
    service_password: str = SERVICE_PASSWORD
    user_password: str = USER_PASSWORD

    # -- names -----------------------------------------------------------------------------------------------
    @property
    def service_bind_dn(self) -> str:
        return f"CN={SERVICE_ACCOUNT},OU={SERVICES_OU},{self.base_dn}"

    @property
    def service_upn(self) -> str:
        return f"{SERVICE_ACCOUNT}@{UPN_SUFFIX}"

    @property
    def groups_base_dn(self) -> str:
        return f"OU={GROUPS_OU},{self.base_dn}"

    def group_dn(self, role: str) -> str:
        return f"CN={escape_dn_chars(ROLE_GROUPS[role][0])},{self.groups_base_dn}"

    def nested_group_dn(self, role: str) -> str | None:
        nested = ROLE_GROUPS[role][1]
        return f"CN={escape_dn_chars(nested)},{self.groups_base_dn}" if nested else None

    @property
    def role_logins(self) -> dict[str, str]:
        return {role: sams[0] for role, sams in self.role_members.items() if sams}

    def user(self, sam: str) -> AdUser:
        return next(user for user in self.users if user.sam == sam)

    def all_ous(self) -> list[tuple[str, ...]]:
        """Every OU the generator creates, the services and groups OUs included (not Domain Controllers)."""
        return [(SERVICES_OU,), (GROUPS_OU,), *self.ous]

    def ou_paths(self) -> list[str]:
        return [google_path(path) for path in self.ous]

    def all_users(self) -> list[AdUser]:
        """Every user object the generator creates, the service account included."""
        return [self.service_account, *self.users]

    @property
    def service_account(self) -> AdUser:
        return AdUser(SERVICE_ACCOUNT, "Service", "MDM", (SERVICES_OU,), None)

    # -- rendering -------------------------------------------------------------------------------------------
    def entries(self) -> Iterator[tuple[str, dict[str, list[str | bytes]]]]:
        base = self.base_dn
        for path in self.all_ous():
            yield ou_dn(path, base), {"objectClass": ["organizationalUnit"], "ou": [path[-1]]}
        service = self.service_account
        yield (
            self.service_bind_dn,
            self._user_attributes(service, self.service_password, cn=SERVICE_ACCOUNT),
        )
        for user in self.users:
            yield user.dn(base), self._user_attributes(user, self.user_password)
        # Nested groups first: a group's members must exist when it is added.
        for role, (group, nested) in ROLE_GROUPS.items():
            members = [self.user(sam).dn(base) for sam in self.role_members.get(role, [])]
            if nested:
                yield self._group(nested, members)
                members = [f"CN={escape_dn_chars(nested)},{self.groups_base_dn}"]
            yield self._group(group, members)

    def _group(self, name: str, members: list[str]) -> tuple[str, dict[str, list[str | bytes]]]:
        attrs: dict[str, list[str | bytes]] = {
            "objectClass": ["group"],
            "sAMAccountName": [ascii_fold(name).replace(" ", "-")[:20]],
            "groupType": [str(GROUP_TYPE_GLOBAL_SECURITY)],
        }
        if members:
            attrs["member"] = list(members)
        return f"CN={escape_dn_chars(name)},{self.groups_base_dn}", attrs

    @staticmethod
    def _user_attributes(user: AdUser, password: str, cn: str | None = None) -> dict[str, list[str | bytes]]:
        uac = UAC_NORMAL | UAC_DONT_EXPIRE | (UAC_DISABLED if user.disabled else 0)
        attrs: dict[str, list[str | bytes]] = {
            "objectClass": ["user"],
            "cn": [cn or user.cn],
            "sAMAccountName": [user.sam],
            "userPrincipalName": [user.upn],
            "givenName": [user.given_name],
            "sn": [user.surname],
            "displayName": [user.display_name],
            # AD takes a new password as the UTF-16LE of the quoted password (base64 in LDIF).
            "unicodePwd": [f'"{password}"'.encode("utf-16-le")],
            "userAccountControl": [str(uac)],
        }
        if user.mail:
            attrs["mail"] = [user.mail]
        return attrs

    def to_ldif(self) -> str:
        chunks = []
        for dn, attrs in self.entries():
            lines = [_ldif_line("dn", dn)]
            for attr, values in attrs.items():
                for value in values:
                    if isinstance(value, bytes):
                        lines.append(f"{attr}:: {base64.b64encode(value).decode()}\n")
                    else:
                        lines.append(_ldif_line(attr, value))
            chunks.append("".join(lines))
        return "\n".join(chunks) + "\n"

    def content_key(self) -> str:
        """Names this directory's content: equal keys, equal domains."""
        return hashlib.sha256(self.to_ldif().encode()).hexdigest()[:16]


def _sam(given: str, surname: str, taken: set[str]) -> str:
    base = ascii_fold(f"{given[0]}{surname}").lower().replace(" ", "").replace("'", "")[:17]
    sam, suffix = base, 1
    while sam in taken:
        suffix += 1
        sam = f"{base}{suffix}"
    taken.add(sam)
    return sam


def _tree(rng: random.Random, ou_count: int) -> list[tuple[str, ...]]:
    """Académie > towns > schools > services, with the special names scattered at every level."""
    ous: list[tuple[str, ...]] = []
    root = ("Académie",)
    ous.append(root)
    specials = iter(SPECIAL_NAMES)
    for town in TOWNS:
        town_path = (*root, town)
        ous.append(town_path)
        for school in SCHOOLS:
            school_path = (*town_path, f"{school} {town}")
            ous.append(school_path)
            for service in SERVICES:
                ous.append((*school_path, service))
            special = next(specials, None)
            if special is not None:
                ous.append((*school_path, special))
                ous.append((*school_path, special, "Classe 1"))
    # Deeper branches until the count is reached: a realistic depth of 5-6 levels.
    index = 0
    while len(ous) < ou_count:
        parent = rng.choice([path for path in ous if len(path) >= 3])
        index += 1
        ous.append((*parent, f"Groupe {index:03d}"))
    return ous


def demo(seed: int = 16, ou_count: int = 210, user_count: int = 1100, base_dn: str = BASE_DN) -> AdDirectory:
    rng = random.Random(seed)
    ous = _tree(rng, ou_count)
    taken = {SERVICE_ACCOUNT}
    named = [
        AdUser("cdurand", "Camille", "Durand", ous[1], "camille.durand@example.test"),
        AdUser("lfontaine", "Léa", "Fontaine", ous[2], "lea.fontaine@example.test"),
        AdUser("hcote", "Hélène", "Côté", ous[3], None),
        AdUser("jnomade", "Jules", "Nomade", ous[4], "jules.nomade@example.test"),  # in no role group
        AdUser("adesactive", "Anaïs", "Désactivée", ous[1], None, disabled=True),  # admin, but disabled
    ]
    taken.update(user.sam for user in named)
    users = list(named)
    while len(users) < user_count:
        given, surname = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        sam = _sam(given, surname, taken)
        mail = None if len(users) % 7 == 0 else f"{sam}@{MAIL_DOMAIN}"
        disabled = len(users) % 23 == 0
        users.append(AdUser(sam, given, surname, ous[len(users) % len(ous)], mail, disabled))
    return AdDirectory(
        base_dn=base_dn,
        ous=ous,
        users=users,
        role_members={
            "admin": ["cdurand", "adesactive"],
            "operator": ["lfontaine"],
            "read_only": ["hcote"],
        },
    )
