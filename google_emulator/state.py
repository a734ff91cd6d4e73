"""Everything the emulator knows, in memory, behind one lock; saved to and loaded from JSON."""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import random
import string
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from google_emulator.device_store import DeviceStore, RecordCache, SeededDevices
from google_emulator.faults import FaultBook, RequestLog
from google_emulator.generator import DomainGenerator, default_reference_time, generate_domain
from google_emulator.limits import Limits, LimitSettings
from google_emulator.listing import Paginator
from google_emulator.model import Command, DeviceRecord, OrgUnit
from google_emulator.oauth import OAuthStore
from google_emulator.org_units import OrgUnitTree

DEFAULT_CLIENT_ID = "mdm-console-dev.apps.googleusercontent.com"
DEFAULT_CLIENT_SECRET = "dev-secret"  # noqa: S105 - a documented development credential, not a secret
STATE_FORMAT = 2  # 1: the first customer only, every device written out (still read)
FREEZE_THRESHOLD = 10_000
FIRST_COMMAND_ID = 1_000_000_001


@dataclass
class EmulatorConfig:
    """How to seed the domain and tune the emulator; the CLI flags and EmulatorServer arguments map onto it."""

    domain: str = "example.com"
    devices: int = 50
    org_units: int = 12
    seed: int = 1
    org_unit_paths: list[str] | None = None
    admin_email: str | None = None
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    redirect_uris: list[str] = field(default_factory=list)
    code_ttl: int = 60
    access_token_ttl: int = 3599
    command_step_seconds: float = 1.0
    command_ttl: int = 5 * 24 * 3600
    page_token_ttl: int = 3600
    reference_time: datetime | None = None
    # More Google customers in the same emulator (the first is this one): customer i (2..N) has domain
    # ``tenant<i>.<domain>``, admin ``admin@tenant<i>.<domain>``, seed ``seed + 1000 * (i - 1)``, the same sizes.
    customers: int = 1
    # Latency and limits (see limits.py); every limit off by default.
    latency_ms: dict[str, list[float]] = field(default_factory=dict)
    user_rate_limit: int | None = None
    customer_concurrency_limit: int | None = None
    project_rate_limit: int | None = None
    rate_window_seconds: float = 60.0
    # Unchanged devices generated on demand and kept for reuse, all customers together (~3 KB each with their
    # JSON): a customer that fits is generated and encoded when seeded (see device_store.py).
    device_cache: int = 120_000

    def limit_settings(self) -> LimitSettings:
        return LimitSettings(
            user_rate=self.user_rate_limit,
            customer_concurrency=self.customer_concurrency_limit,
            project_rate=self.project_rate_limit,
            window_seconds=self.rate_window_seconds,
            latency_ms={k: list(v) for k, v in self.latency_ms.items()},
        )

    @property
    def admin(self) -> str:
        return self.admin_email or f"admin@{self.domain}"


class Clock:
    """Wall time plus an offset that tests advance instead of sleeping (codes, tokens, commands)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class EmulatorState:
    """One Google customer (domain, admin, OUs, devices, commands, policies) and, for the first customer, what
    every customer of the emulator shares: the OAuth store (one Google, many accounts), the clock, faults, the
    request log, the lock and the limits. ``customers`` lists every customer, the first (this one) first."""

    def __init__(self, config: EmulatorConfig | None = None, primary: EmulatorState | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.base_config = dataclasses.replace(self.config)  # what reset() returns to
        self.primary = primary
        if primary is None:
            # Re-entrant: control operations call the same helpers the API handlers use.
            self.lock = threading.RLock()
            self.clock = Clock()
            self.faults = FaultBook()
            self.log = RequestLog()
            self.limits = Limits(self.config.limit_settings())
            self.oauth = self._fresh_oauth()
            self.device_cache = RecordCache(self.config.device_cache)
        else:
            self.lock = primary.lock
            self.clock = primary.clock
            self.faults = primary.faults
            self.log = primary.log
            self.limits = primary.limits
            self.oauth = primary.oauth
            self.device_cache = primary.device_cache
        self.changes = 0  # bumped by every mutation; the state file saver watches it
        self.paginator = Paginator(self.config.page_token_ttl)
        self.customers: list[EmulatorState] = [self]
        self.seed()
        if primary is None:
            self._seed_other_customers()

    def _seed_other_customers(self) -> None:
        config = self.config
        del self.customers[1:]
        for number in range(2, config.customers + 1):
            domain = f"tenant{number}.{config.domain}"
            self.add_customer(domain=domain, seed=config.seed + 1000 * (number - 1))

    def add_customer(self, **options: Any) -> EmulatorState:
        """Another Google customer in this emulator (options: ``domain`` (required), ``devices``, ``org_units``,
        ``seed``, ``org_unit_paths``, ``admin_email``; sizes default to the first customer's)."""
        if self.primary is not None:
            return self.primary.add_customer(**options)
        allowed = {"domain", "devices", "org_units", "seed", "org_unit_paths", "admin_email"}
        unknown = set(options) - allowed
        if unknown:
            raise ValueError(f"unknown customer options {sorted(unknown)}; known: {sorted(allowed)}")
        if not options.get("domain"):
            raise ValueError("domain is required")
        if any(c.customer["customerDomain"] == options["domain"] for c in self.customers):
            raise ValueError(f"customer domain {options['domain']!r} already exists")
        defaults: dict[str, Any] = {
            "admin_email": None,
            "org_unit_paths": None,
            "seed": self.config.seed + 1000 * len(self.customers),
        }
        config = dataclasses.replace(self.config, customers=1, **{**defaults, **options})
        customer = EmulatorState(config, primary=self)
        with self.lock:
            self.customers.append(customer)
            self.changes += 1
        return customer

    def customer_for_user(self, user: str) -> EmulatorState:
        """The customer a Google account belongs to: the one it administers, else the one of its domain; an
        account of no known customer belongs to the first (as it always did with one customer)."""
        customers = (self.primary or self).customers
        for customer in customers:
            if customer.admin_email == user:
                return customer
        domain = user.rpartition("@")[2].lower()
        for customer in customers:
            if customer.customer["customerDomain"].lower() == domain:
                return customer
        return customers[0]

    def find_customer(self, key: str | int) -> EmulatorState:
        """A customer by its id (``C0...``), domain, admin email or position (1 is the first)."""
        customers = (self.primary or self).customers
        for customer in customers:
            if key in (customer.customer["id"], customer.customer["customerDomain"], customer.admin_email):
                return customer
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
            index = int(key)
            if 1 <= index <= len(customers):
                return customers[index - 1]
        raise ValueError(f"unknown customer {key!r}")

    def _fresh_oauth(self) -> OAuthStore:
        oauth = OAuthStore(self.clock.now, self.config.access_token_ttl, self.config.code_ttl)
        oauth.register_client(self.config.client_id, self.config.client_secret, self.config.redirect_uris)
        return oauth

    def reset(self, **overrides: Any) -> None:
        """Back to a fresh start: the initial configuration (plus overrides), no grants, no time travel."""
        unknown = set(overrides) - {f.name for f in dataclasses.fields(EmulatorConfig)}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}")
        if self.primary is not None:
            raise ValueError("reset applies to the whole emulator, not to one customer")
        with self.lock:
            self.config = dataclasses.replace(self.base_config, **overrides)
            self.clock.offset = 0.0
            self.oauth = self._fresh_oauth()
            self.limits.reset(self.config.limit_settings())
            self.seed()
            self._seed_other_customers()

    # -- seeding -------------------------------------------------------------------------------
    def seed(self, **overrides: Any) -> None:
        """(Re)generate the domain. OAuth clients and grants survive; faults and commands do not."""
        for key, value in overrides.items():
            if not hasattr(self.config, key):
                raise ValueError(f"unknown seed option {key!r}")
            setattr(self.config, key, value)
        config = self.config
        reference_time = config.reference_time or default_reference_time()
        domain = generate_domain(
            domain=config.domain,
            seed=config.seed,
            devices=config.devices,
            org_units=config.org_units,
            org_unit_paths=config.org_unit_paths,
            admin_email=config.admin,
            reference_time=reference_time,
            with_devices=False,
        )
        seeded = SeededDevices(
            seed=config.seed,
            count=config.devices,
            domain=config.domain,
            units=domain.org_units,
            users=domain.users,
            reference_time=reference_time,
        )
        with self.lock:
            previous: DeviceStore | None = getattr(self, "devices", None)
            if previous is not None:
                previous.forget()
            self.customer = domain.customer
            self.org_units = OrgUnitTree(domain.org_units)
            self.users = domain.users
            self.devices: DeviceStore = DeviceStore(seeded, self.device_cache)
            self.admin_email = config.admin
            self.admin_is_admin = True
            self.free_licenses: int | None = None  # None: unlimited
            self.commands: dict[str, Command] = {}
            self.policies: dict[tuple[str, str, tuple[tuple[str, str], ...]], dict[str, Any]] = {}
            self.command_outcome = "SUCCESS"
            self.command_step_seconds = config.command_step_seconds
            # A generator for devices and OUs added later, seeded apart from the initial domain.
            self.generator = DomainGenerator(config.domain, config.seed + 1, config.reference_time)
            if self.primary is None:  # shared by every customer: a customer added later keeps them
                self.faults.clear()
                self.log.clear()
            self.paginator.expire_all()
            self.changes += 1
        # Encoded now when the cache holds them all: the first sync of one customer should not pay for it.
        self.devices.warm()
        if len(self.device_cache) >= FREEZE_THRESHOLD:
            # A large domain is millions of long-lived objects: without this, every full GC pass
            # walks them all and listing 100,000 devices takes 60% longer. Frozen objects are
            # simply left out of collection (they live as long as the emulator anyway).
            gc.freeze()

    def next_command_id(self) -> str:
        # int64 ids, increasing, unique across restarts from a state file.
        return str(max((int(c) for c in self.commands), default=FIRST_COMMAND_ID - 1) + 1)

    def new_org_unit_id(self) -> str:
        return self.generator.org_unit_id()

    # -- lookups -------------------------------------------------------------------------------
    def is_my_customer(self, customer_id: str) -> bool:
        return customer_id in ("my_customer", self.customer["id"])

    def org_unit(self, reference: str) -> OrgUnit | None:
        return self.org_units.find(reference)

    def changed(self) -> None:
        self.changes += 1

    # -- persistence ---------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        """Every customer (devices as their seed plus what changed, see device_store.py) and what they share."""
        primary = self.primary or self
        with self.lock:
            return {
                "format": STATE_FORMAT,
                "customers": [c.dump_customer() for c in primary.customers],
                "oauth": primary.oauth.dump(),
                "clock_offset": primary.clock.offset,
            }

    def dump_customer(self) -> dict[str, Any]:
        return {
            "domain": self.config.domain,
            "seed": self.config.seed,
            "customer": self.customer,
            "admin": {"email": self.admin_email, "is_admin": self.admin_is_admin},
            "free_licenses": self.free_licenses,
            "org_units": [vars(u) for u in self.org_units],
            "users": self.users,
            "devices": self.devices.dump(),
            "commands": [c.to_dict() for c in self.commands.values()],
            "policies": [
                {"org_unit_id": ou, "schema": schema, "target_keys": dict(keys), "value": value}
                for (ou, schema, keys), value in self.policies.items()
            ],
        }

    def load(self, data: dict[str, Any]) -> None:
        if self.primary is not None:
            raise ValueError("a state file loads into the whole emulator, not into one customer")
        if data.get("format") == 1:  # one customer, every device written out
            customers = [{**data, "devices": None, "device_list": data["devices"]}]
        elif data.get("format") == STATE_FORMAT:
            customers = data["customers"]
        else:
            raise ValueError("unsupported emulator state file format")
        with self.lock:
            self.load_customer(customers[0])
            for customer in self.customers[1:]:
                customer.devices.forget()
            del self.customers[1:]
            for entry in customers[1:]:
                config = dataclasses.replace(
                    self.config,
                    customers=1,
                    devices=0,
                    domain=entry["domain"],
                    seed=entry["seed"],
                    org_unit_paths=None,
                    admin_email=entry["admin"]["email"],
                )
                customer = EmulatorState(config, primary=self)
                customer.load_customer(entry)
                self.customers.append(customer)
            self.oauth.load(data.get("oauth", {}))
            if self.config.client_id not in self.oauth.clients:
                self.oauth.register_client(
                    self.config.client_id, self.config.client_secret, self.config.redirect_uris
                )
            self.clock.offset = data.get("clock_offset", 0.0)
            self.changes += 1

    def load_customer(self, data: dict[str, Any]) -> None:
        with self.lock:
            self.customer = data["customer"]
            self.admin_email = data["admin"]["email"]
            self.admin_is_admin = data["admin"]["is_admin"]
            self.free_licenses = data.get("free_licenses")
            self.org_units = OrgUnitTree([OrgUnit(**u) for u in data["org_units"]])
            self.users = data["users"]
            self.devices.forget()
            if data.get("devices") is not None:
                self.devices = DeviceStore.load(data["devices"], self.users, self.device_cache)
            else:
                records = (DeviceRecord(d["data"], d["version"]) for d in data.get("device_list", []))
                self.devices = DeviceStore.of_records(records, self.device_cache)
            self.commands = {c["command_id"]: Command(**c) for c in data.get("commands", [])}
            self.policies = {
                (p["org_unit_id"], p["schema"], tuple(sorted(p["target_keys"].items()))): p["value"]
                for p in data.get("policies", [])
            }
            self.paginator.expire_all()
            self.changes += 1

    @property
    def all_changes(self) -> int:
        """Changes of every customer: what the state file saver watches."""
        return sum(c.changes for c in (self.primary or self).customers)

    def save_to(self, path: str | os.PathLike[str]) -> None:
        """Write atomically: a demo killed mid-save keeps its previous state file."""
        target = Path(path)
        suffix = "".join(random.choices(string.ascii_lowercase, k=6))
        temporary = target.with_name(f".{target.name}.{suffix}.tmp")
        temporary.write_text(json.dumps(self.dump(), ensure_ascii=False))
        temporary.replace(target)

    def load_from(self, path: str | os.PathLike[str]) -> None:
        self.load(json.loads(Path(path).read_text()))
