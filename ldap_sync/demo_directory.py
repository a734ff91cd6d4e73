"""Realistic LDAP directories for the demo and the tests, as LDIF.

``demo()`` is what the demo slapd serves: nested OUs with accented names under ``dc=example,dc=com``, a few
hundred people (inetOrgPerson) with French names, the console's role groups under ``ou=Groupes`` and a
service account for the console's bind under ``ou=Services``. ``large()`` is the scale test: 1,200 OUs and
5,000 people. Both are deterministic for a given seed.

``Directory.ou_paths()`` gives the Google-style paths (``/Paris/Ventes``) of the OUs that hold people: the
Google emulator is seeded with the same tree for the demo, as Google Cloud Directory Sync would have done.
"""

from __future__ import annotations

import base64
import random
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ldap.dn import escape_dn_chars

from ldap_sync.slapd import DEFAULT_BASE_DN, ssha

SERVICE_PASSWORD = "sync-secret"  # noqa: S105 - demo/test directory only
USER_PASSWORD = "demo-secret"  # noqa: S105
MAIL_DOMAIN = "example.com"
GROUPS_OU = "Groupes"
SERVICES_OU = "Services"
ROLE_GROUPS = {"admin": "mdm-admins", "operator": "mdm-operators", "read_only": "mdm-readonly"}

# Nested OUs of the demo, with the names a French company really uses (accents, spaces, ampersands).
DEMO_TREE: dict[str, dict] = {
    "Paris": {
        "Direction": {},
        "Ventes": {"Grands Comptes": {}, "PME": {}},
        "Marketing": {},
        "Équipe Réseau": {},
        "Ressources Humaines": {},
    },
    "Lyon": {
        "Ingénierie": {"Qualité": {}, "Développement": {}},
        "Support Client": {},
        "Recherche & Développement": {},
    },
    "Bordeaux": {"Comptabilité": {}, "Logistique": {}},
    "Marseille": {"Ventes": {}, "Entrepôt": {}},
    "Lille": {"Centre d'Appels": {}},
    "Télétravail": {},
}

FIRST_NAMES = [
    "Camille",
    "Léa",
    "Hugo",
    "Chloé",
    "Louis",
    "Zoé",
    "Gabriel",
    "Inès",
    "Raphaël",
    "Manon",
    "Jules",
    "Anaïs",
    "Arthur",
    "Élodie",
    "Lucas",
    "Maëlle",
    "Théo",
    "Hélène",
    "Nathan",
    "Céline",
    "Noé",
    "Amélie",
    "Jérôme",
    "Agnès",
    "François",
    "Loïc",
    "Gaël",
    "Benoît",
    "Clémence",
    "Sébastien",
    "Joël",
    "Emma",
    "Paul",
    "Sarah",
    "Thomas",
    "Julie",
    "Antoine",
    "Laura",
    "Nicolas",
    "Pauline",
    "Maxime",
    "Marie",
    "Alexandre",
    "Lucie",
    "Étienne",
    "Océane",
]
LAST_NAMES = [
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefèvre",
    "Michel",
    "Garcia",
    "David",
    "Bertrand",
    "Roux",
    "Vincent",
    "Fournier",
    "Morel",
    "Girard",
    "André",
    "Mercier",
    "Dupont",
    "Lambert",
    "Bonnet",
    "Legrand",
    "Fontaine",
    "Rousseau",
    "Blanc",
    "Guérin",
    "Müller",
    "Henry",
    "Perrin",
    "Clément",
    "Gauthier",
    "Chevalier",
    "Lemaître",
    "Bélanger",
    "Côté",
    "Pélissier",
    "Thébault",
    "Béranger",
    "Faure",
    "Rivière",
    "Noël",
    "Brunet",
    "Ménard",
]


def ascii_fold(text: str) -> str:
    """``Élodie Côté`` -> ``Elodie Cote``: uids and mail addresses stay ASCII, as most directories do."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _ldif_line(attr: str, value: str) -> str:
    # RFC 2849: values that are not "safe strings" (non-ASCII, leading space/colon/<, trailing space) are base64.
    safe = value.isascii() and not value.startswith((" ", ":", "<")) and not value.endswith(" ")
    safe = safe and "\n" not in value and "\r" not in value and "\0" not in value
    if safe:
        return f"{attr}: {value}\n"
    return f"{attr}:: {base64.b64encode(value.encode()).decode()}\n"


def entries_to_ldif(entries: Iterable[tuple[str, dict[str, list[str]]]]) -> str:
    """Serialise ``(dn, {attr: [values]})`` pairs to LDIF, base64-encoding what RFC 2849 requires."""
    chunks = []
    for dn, attrs in entries:
        lines = [_ldif_line("dn", dn)]
        for attr, values in attrs.items():
            lines.extend(_ldif_line(attr, value) for value in values)
        chunks.append("".join(lines))
    return "\n".join(chunks) + "\n"


def ou_dn(path: tuple[str, ...], base_dn: str) -> str:
    """``("Paris", "Ventes")`` -> ``ou=Ventes,ou=Paris,<base>``, escaping what RFC 4514 requires."""
    rdns = [f"ou={escape_dn_chars(name)}" for name in reversed(path)]
    return ",".join([*rdns, base_dn])


def google_path(path: tuple[str, ...]) -> str:
    return "/" + "/".join(path)


@dataclass(frozen=True)
class Person:
    uid: str
    given_name: str
    surname: str
    ou_path: tuple[str, ...]
    mail: str | None

    @property
    def cn(self) -> str:
        return f"{self.given_name} {self.surname}"

    def dn(self, base_dn: str) -> str:
        return f"uid={escape_dn_chars(self.uid)},{ou_dn(self.ou_path, base_dn)}"


@dataclass
class Directory:
    """An in-memory directory: OU paths, people and role groups; ``to_ldif()`` renders it for slapadd."""

    base_dn: str = DEFAULT_BASE_DN
    ous: list[tuple[str, ...]] = field(default_factory=list)
    people: list[Person] = field(default_factory=list)
    role_members: dict[str, list[str]] = field(default_factory=dict)  # role -> uids
    mail_domain: str = MAIL_DOMAIN
    service_password: str = SERVICE_PASSWORD
    user_password: str = USER_PASSWORD

    @property
    def service_bind_dn(self) -> str:
        return f"cn=mdm-sync,ou={SERVICES_OU},{self.base_dn}"

    def group_dn(self, role: str) -> str:
        return f"cn={ROLE_GROUPS[role]},ou={GROUPS_OU},{self.base_dn}"

    @property
    def groups_base_dn(self) -> str:
        return f"ou={GROUPS_OU},{self.base_dn}"

    @property
    def role_logins(self) -> dict[str, str]:
        """One uid per role, for demo logins."""
        return {role: uids[0] for role, uids in self.role_members.items() if uids}

    def ou_paths(self) -> list[str]:
        """Google-style paths of the OUs that hold people, parents before children."""
        return [google_path(path) for path in self.ous]

    def person(self, uid: str) -> Person:
        return next(person for person in self.people if person.uid == uid)

    def entries(self) -> Iterator[tuple[str, dict[str, list[str]]]]:
        base = self.base_dn
        organisation = base.split(",")[0].split("=", 1)[1]
        yield (
            base,
            {"objectClass": ["top", "dcObject", "organization"], "dc": [organisation], "o": ["Example"]},
        )
        yield f"ou={SERVICES_OU},{base}", {"objectClass": ["organizationalUnit"], "ou": [SERVICES_OU]}
        yield (
            self.service_bind_dn,
            {
                "objectClass": ["organizationalRole", "simpleSecurityObject"],
                "cn": ["mdm-sync"],
                "description": ["Compte de service de la console MDM (lecture seule)"],
                "userPassword": [ssha(self.service_password, b"mdm-sync")],
            },
        )
        for path in self.ous:
            yield ou_dn(path, base), {"objectClass": ["organizationalUnit"], "ou": [path[-1]]}
        # One salted hash shared by every demo person: hashing 5,000 times would only slow the seed down.
        password = ssha(self.user_password, b"demo-usr")
        for person in self.people:
            attrs = {
                "objectClass": ["inetOrgPerson"],
                "uid": [person.uid],
                "cn": [person.cn],
                "sn": [person.surname],
                "givenName": [person.given_name],
                "displayName": [person.cn],
                "userPassword": [password],
            }
            if person.mail:
                attrs["mail"] = [person.mail]
            yield person.dn(base), attrs
        yield self.groups_base_dn, {"objectClass": ["organizationalUnit"], "ou": [GROUPS_OU]}
        for role, group in ROLE_GROUPS.items():
            members = [self.person(uid).dn(base) for uid in self.role_members.get(role, [])]
            # groupOfNames needs a member; the service account stands in for an empty group.
            yield (
                self.group_dn(role),
                {"objectClass": ["groupOfNames"], "cn": [group], "member": members or [self.service_bind_dn]},
            )

    def to_ldif(self) -> str:
        return entries_to_ldif(self.entries())


def _flatten(tree: dict[str, dict], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, children in tree.items():
        path = (*prefix, name)
        yield path
        yield from _flatten(children, path)


def _people(rng: random.Random, count: int, ous: list[tuple[str, ...]], mail_domain: str) -> list[Person]:
    people: list[Person] = []
    taken: set[str] = set()
    for index in range(count):
        given, surname = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        base_uid = ascii_fold(f"{given}.{surname}").lower().replace(" ", "").replace("'", "")
        uid, suffix = base_uid, 1
        while uid in taken:
            suffix += 1
            uid = f"{base_uid}{suffix}"
        taken.add(uid)
        people.append(Person(uid, given, surname, ous[index % len(ous)], f"{uid}@{mail_domain}"))
    return people


def skeleton(base_dn: str = DEFAULT_BASE_DN) -> Directory:
    """The base entry, the service account and the role groups: nothing else."""
    return Directory(base_dn=base_dn)


def demo(seed: int = 42, people: int = 320, base_dn: str = DEFAULT_BASE_DN) -> Directory:
    """The demo directory: 25 nested OUs with accented names and a few hundred people."""
    rng = random.Random(seed)
    ous = list(_flatten(DEMO_TREE))
    # Named role holders first, so the demo's logins are predictable whatever the seed.
    named = [
        Person(
            "camille.durand", "Camille", "Durand", ("Paris", "Direction"), f"camille.durand@{MAIL_DOMAIN}"
        ),
        Person("lea.fontaine", "Léa", "Fontaine", ("Paris", "Équipe Réseau"), f"lea.fontaine@{MAIL_DOMAIN}"),
        Person("helene.cote", "Hélène", "Côté", ("Lyon", "Ingénierie"), f"helene.cote@{MAIL_DOMAIN}"),
    ]
    generated = [
        person
        for person in _people(rng, people, ous, MAIL_DOMAIN)
        if person.uid not in {n.uid for n in named}
    ][: people - len(named)]
    return Directory(
        base_dn=base_dn,
        ous=ous,
        people=named + generated,
        role_members={
            "admin": ["camille.durand"],
            "operator": ["lea.fontaine"],
            "read_only": ["helene.cote"],
        },
    )


def large(
    seed: int = 7, ou_count: int = 1200, people: int = 5000, base_dn: str = DEFAULT_BASE_DN
) -> Directory:
    """The scale directory: ``ou_count`` OUs three levels deep (regions > sites > services), ``people`` people."""
    rng = random.Random(seed)
    services = ["Ventes", "Ingénierie", "Comptabilité", "Équipe Réseau", "Accueil", "Qualité", "Logistique"]
    regions = max(1, round(ou_count ** (1 / 3)))
    ous: list[tuple[str, ...]] = []
    region = 0
    while len(ous) < ou_count:
        region += 1
        region_path = (f"Région {region:02d}",)
        ous.append(region_path)
        for site in range(1, regions + 1):
            if len(ous) >= ou_count:
                break
            site_path = (*region_path, f"Site {region:02d}-{site:02d} Élancourt")
            ous.append(site_path)
            for service in range(1, 11):
                if len(ous) >= ou_count:
                    break
                ous.append((*site_path, f"{services[service % len(services)]} {service:02d}"))
    return Directory(
        base_dn=base_dn,
        ous=ous,
        people=_people(rng, people, ous, MAIL_DOMAIN),
        role_members={},
    )
