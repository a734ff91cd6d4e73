"""A seeded generator for a realistic Google Workspace domain: org units, users, ChromeOS devices.

Everything derives from ``random.Random(seed)`` and a reference time, so one seed gives one domain.
The data is French-flavoured on purpose (accents, spaces, ``&`` in OU names; unicode in notes)
because that is what breaks naive path handling and encoding in the console.
"""

from __future__ import annotations

import itertools
import random
import string
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from google_emulator.model import DEVICE_KIND, DeviceRecord, OrgUnit, TelemetryBlock

CITIES = ["Paris", "Lyon", "Marseille", "Bordeaux", "Lille", "Nantes", "Toulouse", "Strasbourg"]
DEPARTMENTS = [
    "Ventes et Marketing",
    "Équipe Réseau",
    "Comptabilité",
    "Ressources Humaines",
    "Direction Générale",
    "Support Informatique",
    "Élèves",
    "Enseignants",
    "Logistique",
    "Recherche & Développement",
]
TEAMS = [
    "Salle 101",
    "Chariot A",
    "Chariot B",
    "Bâtiment Nord",
    "Kiosques",
    "Prêt",
    "Classe de 6e",
    "Stagiaires",
]
# Paths the console's demo and tests rely on; generated first so any tree of 4+ OUs has them.
SIGNATURE_PATHS = ["/Paris", "/Paris/Ventes et Marketing", "/Lyon", "/Lyon/Équipe Réseau"]

GIVEN_NAMES = [
    "Zoé", "Léa", "Chloé", "Inès", "Camille", "Manon", "Jade", "Louise", "Éloïse", "Anaïs", "Hélène", "Céline",
    "Lucas", "Hugo", "Théo", "Noé", "Jérôme", "François", "Benoît", "Raphaël", "Mathéo", "Gaël", "Loïc", "Yanis",
    "Amélie", "Aurélien", "Maëlle", "Sébastien", "Nadia", "Karim", "Mei", "Søren", "Ana", "João",
]  # fmt: skip
FAMILY_NAMES = [
    "Martin", "Bernard", "Dubois", "Lefèvre", "Moreau", "Girard", "Fournier", "Lambert", "Bonnet", "Mercier",
    "Faure", "Rousseau", "Blanc", "Guérin", "Müller", "Chevalier", "Boyer", "Garnier", "Lemaître", "Benoît",
    "N'Diaye", "Nguyễn", "Da Silva", "Ben Saïd", "Le Goff", "Perrin", "Roux", "Fontaine",
]  # fmt: skip


@dataclass(frozen=True)
class DeviceModel:
    name: str
    serial_prefix: str
    serial_length: int
    board: str
    aue_year: int
    cpu: str
    ram_gb: int
    disk_gb: int
    flex: bool = False

    @property
    def aue_iso(self) -> str:
        return f"{self.aue_year}-06-01T00:00:00.000Z"

    @property
    def aue_millis(self) -> str:
        return str(int(datetime(self.aue_year, 6, 1, tzinfo=UTC).timestamp()) * 1000)


MODELS = [
    DeviceModel(
        "HP Chromebook 14 G7", "5CD", 10, "dedede", 2031, "Intel(R) Celeron(R) N4500 @ 1.10GHz", 8, 64
    ),
    DeviceModel("HP Chromebook x360 11 G4 EE", "5CG", 10, "dedede", 2030, "Intel(R) Celeron(R) N4120", 4, 32),
    DeviceModel("Lenovo 300e Chromebook Gen 3", "PF", 8, "grunt", 2026, "AMD A4-9120C RADEON R4", 4, 32),
    DeviceModel("Lenovo ThinkPad C13 Yoga Chromebook", "PF", 8, "zork", 2028, "AMD Ryzen 5 3500C", 8, 128),
    DeviceModel("Acer Chromebook Spin 511", "NXH", 20, "octopus", 2029, "Intel(R) Celeron(R) N4000", 4, 32),
    DeviceModel("Acer Chromebook 314", "NXA", 20, "dedede", 2031, "Intel(R) Celeron(R) N4500", 8, 64),
    DeviceModel("Dell Chromebook 3100", "", 7, "octopus", 2029, "Intel(R) Celeron(R) N4020", 4, 32),
    DeviceModel(
        "Dell Latitude 5430 Chromebook", "", 7, "brya", 2032, "12th Gen Intel(R) Core(TM) i5-1245U", 16, 256
    ),
    DeviceModel(
        "ASUS Chromebook Flip CX5", "M", 12, "volteer", 2031, "11th Gen Intel(R) Core(TM) i5-1135G7", 8, 128
    ),
    DeviceModel("Google Pixelbook Go", "", 16, "atlas", 2029, "Intel(R) Core(TM) m3-8100Y", 8, 64),
    DeviceModel(
        "HP EliteBook 840 G5 (ChromeOS Flex)",
        "5CG",
        10,
        "reven",
        2033,
        "Intel(R) Core(TM) i5-8350U",
        16,
        256,
        True,
    ),
]
OS_VERSIONS = [
    ("124.0.6367.225", "15823.73.0"),
    ("126.0.6478.222", "15886.75.0"),
    ("128.0.6613.163", "16002.51.0"),
]
STATUS_WEIGHTS = {"ACTIVE": 90, "DISABLED": 4, "DEPROVISIONED": 4, "INACTIVE": 1, "PRE_PROVISIONED": 1}
LOCATIONS = ["Bâtiment A – Salle 12", "Siège, 3ᵉ étage", "Entrepôt Nord", "CDI", "Salle des profs", "Accueil"]
NOTES = [
    "Écran fissuré, envoyé en réparation 🛠️",
    "Prêt longue durée",
    "Batterie remplacée le 12/03",
    "Clavier AZERTY – touche « é » défectueuse",
    "Réservé aux examens",
]
TELEMETRY_POOL_SIZE = 64
ALNUM = string.ascii_uppercase + string.digits
BASE36 = string.ascii_lowercase + string.digits


def ascii_slug(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isascii() and (c.isalnum() or c == "-")).lower()


def iso_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def default_reference_time() -> datetime:
    """Today at midnight UTC: the generated domain is the same all day for a given seed."""
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


@dataclass
class GeneratedDomain:
    customer: dict[str, Any]
    org_units: list[OrgUnit]
    users: list[dict[str, Any]]
    devices: list[DeviceRecord] = field(default_factory=list)


class DomainGenerator:
    def __init__(self, domain: str, seed: int, reference_time: datetime | None = None) -> None:
        self.domain = domain
        self.rng = random.Random(seed)
        self.now = reference_time or default_reference_time()
        self.now_seconds = int(self.now.timestamp())
        self.statuses = list(STATUS_WEIGHTS)
        self.status_cumulative = list(itertools.accumulate(STATUS_WEIGHTS.values()))
        self._day_cache: dict[int, str] = {}
        self._telemetry_pool: dict[str, list[TelemetryBlock]] = {}

    # -- identifiers ---------------------------------------------------------------------------
    def token(self, alphabet: str, length: int) -> str:
        return "".join(self.rng.choices(alphabet, k=length))

    def org_unit_id(self) -> str:
        return "03" + self.token(BASE36, 13)

    def mac(self) -> str:
        return f"{self.rng.getrandbits(48):012x}"

    # -- customer and org units ----------------------------------------------------------------
    def customer(self) -> dict[str, Any]:
        label = self.domain.split(".")[0]
        return {
            "kind": "admin#directory#customer",
            "id": "C0" + self.token(BASE36, 7),
            "customerDomain": self.domain,
            "alternateEmail": f"it-support@{label}-secours.org",
            "language": "fr",
            "phoneNumber": "+33123456789",
            "customerCreationTime": iso_time(self.now - timedelta(days=2190)),
            "postalAddress": {
                "organizationName": label.capitalize(),
                "contactName": "Service informatique",
                "addressLine1": "12 rue de l'Épée de Bois",
                "locality": "Paris",
                "postalCode": "75005",
                "countryCode": "FR",
            },
        }

    def org_units(self, count: int, explicit_paths: list[str] | None = None) -> list[OrgUnit]:
        root = OrgUnit(self.org_unit_id(), "/", self.domain.split(".")[0].capitalize(), "Racine du domaine")
        units = {"/": root}
        paths = explicit_paths if explicit_paths is not None else self._pick_paths(count)
        for path in paths:
            self._add_path(units, path)
        return list(units.values())

    def _add_path(self, units: dict[str, OrgUnit], path: str) -> None:
        path = "/" + path.strip().strip("/")
        if path == "/" or path in units:
            return
        parent_path = path.rsplit("/", 1)[0] or "/"
        self._add_path(units, parent_path)
        name = path.rsplit("/", 1)[1]
        units[path] = OrgUnit(self.org_unit_id(), path, name, f"Unité {name}", units[parent_path].org_unit_id)

    def _pick_paths(self, count: int) -> list[str]:
        chosen = SIGNATURE_PATHS[: max(count, 0)]
        taken = set(chosen)
        candidates = [f"/{c}" for c in CITIES]
        candidates += [f"/{c}/{d}" for c in CITIES for d in DEPARTMENTS]
        candidates += [f"/{c}/{d}/{t}" for c in CITIES for d in DEPARTMENTS for t in TEAMS]
        while len(chosen) < count:
            available = [
                p for p in candidates if p not in taken and (p.rsplit("/", 1)[0] or "/") in taken | {"/"}
            ]
            if not available:
                break
            # Shallow units first, most of the time: real trees are wider than deep.
            available.sort(key=lambda p: p.count("/"))
            pick = self.rng.choice(available[: max(8, len(available) // 3)])
            chosen.append(pick)
            taken.add(pick)
        return chosen

    # -- users ---------------------------------------------------------------------------------
    def users(
        self, count: int, admin_email: str, customer_id: str, org_units: list[OrgUnit]
    ) -> list[dict[str, Any]]:
        users = [self.user("Admin", "Informatique", admin_email, customer_id, "/", is_admin=True)]
        seen = {admin_email}
        while len(users) < count:
            given, family = self.rng.choice(GIVEN_NAMES), self.rng.choice(FAMILY_NAMES)
            email = f"{ascii_slug(given)}.{ascii_slug(family)}@{self.domain}"
            if email in seen:
                email = f"{ascii_slug(given)}.{ascii_slug(family)}{len(users)}@{self.domain}"
            seen.add(email)
            path = self.rng.choice(org_units).path
            users.append(self.user(given, family, email, customer_id, path))
        return users

    def user(
        self, given: str, family: str, email: str, customer_id: str, path: str, is_admin: bool = False
    ) -> dict[str, Any]:
        created = self.now - timedelta(days=self.rng.randint(30, 2000))
        return {
            "kind": "admin#directory#user",
            "id": str(100000000000000000000 + self.rng.getrandbits(60)),
            "etag": f'"{self.token(ALNUM, 20)}/{self.token(ALNUM, 7)}"',
            "primaryEmail": email,
            "name": {"givenName": given, "familyName": family, "fullName": f"{given} {family}"},
            "isAdmin": is_admin,
            "isDelegatedAdmin": False,
            "lastLoginTime": iso_time(self.now - timedelta(minutes=self.rng.randint(5, 60 * 24 * 30))),
            "creationTime": iso_time(created),
            "agreedToTerms": True,
            "suspended": False,
            "archived": False,
            "changePasswordAtNextLogin": False,
            "ipWhitelisted": False,
            "emails": [{"address": email, "primary": True}],
            "customerId": customer_id,
            "orgUnitPath": path,
            "isMailboxSetup": True,
            "isEnrolledIn2Sv": self.rng.random() < 0.6,
            "isEnforcedIn2Sv": False,
            "includeInGlobalAddressList": True,
        }

    # -- devices -------------------------------------------------------------------------------
    # Generating 100,000 devices must take seconds, not minutes: the hot path below works on epoch
    # seconds with cached date strings, draws with random() instead of randint(), and shares
    # telemetry blocks between devices of the same model (see TelemetryBlock).
    def _int(self, low: int, high: int) -> int:
        return low + int(self.rng.random() * (high - low + 1))

    def _date(self, epoch_seconds: int) -> str:
        day = epoch_seconds // 86400
        text = self._day_cache.get(day)
        if text is None:
            text = self._day_cache[day] = datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%d")
        return text

    def _iso(self, epoch_seconds: int) -> str:
        seconds = epoch_seconds % 86400
        return f"{self._date(epoch_seconds)}T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.000Z"

    def serial(self, model: DeviceModel) -> str:
        return model.serial_prefix + self.token(ALNUM, model.serial_length - len(model.serial_prefix))

    def device(
        self, org_units: list[OrgUnit], users: list[dict[str, Any]], device_id: str | None = None
    ) -> DeviceRecord:
        """One device in the FULL projection, keys in the order Google sends them (``device_id`` replaces the
        drawn id: seeded devices encode their index in it, see device_store.py)."""
        rng = self.rng
        chance = rng.random
        model = MODELS[int(chance() * len(MODELS))]
        status = rng.choices(self.statuses, cum_weights=self.status_cumulative)[0]
        unit = org_units[int(chance() * len(org_units))]
        hex_id = f"{rng.getrandbits(128):032x}"
        device: dict[str, Any] = {
            "kind": DEVICE_KIND,
            "etag": "",
            "deviceId": device_id
            or f"{hex_id[:8]}-{hex_id[8:12]}-4{hex_id[13:16]}-a{hex_id[17:20]}-{hex_id[20:]}",
            "serialNumber": self.serial(model),
            "status": status,
        }
        if status == "PRE_PROVISIONED":
            # Zero-touch devices not yet turned on: Google knows little more than the serial.
            device.update({"model": model.name, "orgUnitPath": unit.path, "orgUnitId": unit.org_unit_id})
            return DeviceRecord(device)
        now = self.now_seconds
        enrolled = now - self._int(20 * 86400, 1400 * 86400)
        synced = now - 60 * self._int(1, 60 * 24 * (60 if status == "ACTIVE" else 400))
        user = users[int(chance() * len(users))]
        os_version, platform = OS_VERSIONS[int(chance() * len(OS_VERSIONS))]
        device["lastSync"] = self._iso(synced)
        device["supportEndDate"] = model.aue_iso
        if chance() < 0.7:
            device["annotatedUser"] = user["name"]["fullName"] if chance() < 0.5 else user["primaryEmail"]
        if chance() < 0.5:
            device["annotatedLocation"] = LOCATIONS[int(chance() * len(LOCATIONS))]
        if chance() < 0.15:
            device["notes"] = NOTES[int(chance() * len(NOTES))]
        device["model"] = model.name
        device["osVersion"] = os_version
        device["platformVersion"] = f"{platform} (Official Build) stable-channel {model.board}"
        device["firmwareVersion"] = (
            f"Google_{model.board.capitalize()}.{self._int(11000, 15999)}.{self._int(1, 600)}.0"
        )
        device["macAddress"] = self.mac()
        device["bootMode"] = "Verified" if chance() < 0.98 else "Dev"
        device["lastEnrollmentTime"] = self._iso(enrolled)
        device["orgUnitPath"] = unit.path
        device["orgUnitId"] = unit.org_unit_id
        device["recentUsers"] = self._recent_users(users, user)
        if chance() < 0.3:
            device["ethernetMacAddress"] = self.mac()
            device["ethernetMacAddress0"] = self.mac()
        if chance() < 0.6:
            device["annotatedAssetId"] = f"INV-{self._date(enrolled)[:4]}-{self._int(1, 99999):05d}"
        if status == "DEPROVISIONED":
            device["deprovisionReason"] = "DEPROVISION_REASON_RETIRING_DEVICE"
            device["lastDeprovisionTimestamp"] = self._iso(synced)
        device["autoUpdateExpiration"] = model.aue_millis
        device["manufactureDate"] = self._date(enrolled - self._int(30, 400) * 86400)
        device["firstEnrollmentTime"] = self._iso(enrolled - self._int(0, 30) * 86400)
        device["chromeOsType"] = "chromeOsFlex" if model.flex else "chromeOs"
        device["deviceLicenseType"] = "enterprise" if chance() < 0.8 else "education"
        device["autoUpdateThrough"] = model.aue_iso
        device["extendedSupportEligible"] = False
        device["osVersionCompliance"] = "compliant" if os_version == OS_VERSIONS[-1][0] else "pending"
        device["activeTimeRanges"] = [
            {"date": self._date(synced - d * 86400), "activeTime": self._int(60_000, 28_800_000)}
            for d in range(self._int(1, 7))
        ]
        telemetry = self.telemetry_block(model, synced)
        device.update(telemetry.values)
        return DeviceRecord(device, telemetry=telemetry)

    def _recent_users(self, users: list[dict[str, Any]], main: dict[str, Any]) -> list[dict[str, str]]:
        recent = [{"type": "USER_TYPE_MANAGED", "email": main["primaryEmail"]}]
        if self.rng.random() < 0.3:
            other = users[int(self.rng.random() * len(users))]
            recent.append({"type": "USER_TYPE_MANAGED", "email": other["primaryEmail"]})
        if self.rng.random() < 0.1:
            recent.append({"type": "USER_TYPE_UNMANAGED"})  # unmanaged users carry no email
        return recent

    def telemetry_block(self, model: DeviceModel, synced: int) -> TelemetryBlock:
        """Hardware reports, drawn from a small pool per model: shared, read-only, pre-serialised."""
        pool = self._telemetry_pool.setdefault(model.name, [])
        if len(pool) < TELEMETRY_POOL_SIZE:
            pool.append(TelemetryBlock(self._telemetry(model, synced)))
            return pool[-1]
        return pool[int(self.rng.random() * len(pool))]

    def _telemetry(self, model: DeviceModel, synced: int) -> dict[str, Any]:
        ram = model.ram_gb * 1024**3
        disk = model.disk_gb * 1000**3
        free = int(disk * self.rng.uniform(0.1, 0.8))
        report = self._iso(synced)
        return {
            "cpuStatusReports": [
                {
                    "reportTime": report,
                    "cpuUtilizationPercentageInfo": [self._int(0, 100) for _ in range(2)],
                    "cpuTemperatureInfo": [{"label": "Core 0", "temperature": self._int(35, 80)}],
                }
            ],
            "diskVolumeReports": [
                {
                    "volumeInfo": [
                        {"volumeId": "/media/stateful", "storageTotal": str(disk), "storageFree": str(free)}
                    ]
                }
            ],
            "systemRamTotal": str(ram),
            "systemRamFreeReports": [
                {"reportTime": report, "systemRamFreeInfo": [str(int(ram * self.rng.uniform(0.1, 0.7)))]}
            ],
            "lastKnownNetwork": [
                {"ipAddress": f"10.{self._int(0, 255)}.{self._int(0, 255)}.{self._int(2, 254)}"}
            ],
            "cpuInfo": [{"model": model.cpu, "architecture": "x64", "maxClockSpeedKhz": 2_800_000}],
            "tpmVersionInfo": {
                "family": "322e3000",
                "specLevel": "116",
                "manufacturer": "43524f53",
                "tpmModel": "1",
            },
            "diskSpaceUsage": {"capacityBytes": str(disk), "usedBytes": str(disk - free)},
        }


def generate_domain(
    *,
    domain: str = "example.com",
    seed: int = 1,
    devices: int = 50,
    org_units: int = 12,
    org_unit_paths: list[str] | None = None,
    admin_email: str | None = None,
    reference_time: datetime | None = None,
    with_devices: bool = True,
) -> GeneratedDomain:
    """The customer, its org units and users, and (``with_devices``) its devices drawn one after the other.
    The emulator's state asks for no devices: it generates each from its index (see device_store.py)."""
    generator = DomainGenerator(domain, seed, reference_time)
    customer = generator.customer()
    units = generator.org_units(org_units, org_unit_paths)
    user_count = max(10, min(devices // 2, 5000))
    users = generator.users(user_count, admin_email or f"admin@{domain}", customer["id"], units)
    result = GeneratedDomain(customer, units, users)
    if with_devices:
        result.devices = [generator.device(units, users) for _ in range(devices)]
    return result
