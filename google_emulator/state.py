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

from google_emulator.faults import FaultBook, RequestLog
from google_emulator.generator import DomainGenerator, generate_domain
from google_emulator.listing import Paginator
from google_emulator.model import Command, DeviceRecord, OrgUnit
from google_emulator.oauth import OAuthStore
from google_emulator.org_units import OrgUnitTree

DEFAULT_CLIENT_ID = "mdm-console-dev.apps.googleusercontent.com"
DEFAULT_CLIENT_SECRET = "dev-secret"  # noqa: S105 - a documented development credential, not a secret
STATE_FORMAT = 1
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
    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.base_config = dataclasses.replace(self.config)  # what reset() returns to
        # Re-entrant: control operations call the same helpers the API handlers use.
        self.lock = threading.RLock()
        self.clock = Clock()
        self.faults = FaultBook()
        self.log = RequestLog()
        self.oauth = self._fresh_oauth()
        self.changes = 0  # bumped by every mutation; the state file saver watches it
        self.paginator = Paginator(self.config.page_token_ttl)
        self.seed()

    def _fresh_oauth(self) -> OAuthStore:
        oauth = OAuthStore(self.clock.now, self.config.access_token_ttl, self.config.code_ttl)
        oauth.register_client(self.config.client_id, self.config.client_secret, self.config.redirect_uris)
        return oauth

    def reset(self, **overrides: Any) -> None:
        """Back to a fresh start: the initial configuration (plus overrides), no grants, no time travel."""
        unknown = set(overrides) - {f.name for f in dataclasses.fields(EmulatorConfig)}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}")
        with self.lock:
            self.config = dataclasses.replace(self.base_config, **overrides)
            self.clock.offset = 0.0
            self.oauth = self._fresh_oauth()
            self.seed()

    # -- seeding -------------------------------------------------------------------------------
    def seed(self, **overrides: Any) -> None:
        """(Re)generate the domain. OAuth clients and grants survive; faults and commands do not."""
        for key, value in overrides.items():
            if not hasattr(self.config, key):
                raise ValueError(f"unknown seed option {key!r}")
            setattr(self.config, key, value)
        config = self.config
        domain = generate_domain(
            domain=config.domain,
            seed=config.seed,
            devices=config.devices,
            org_units=config.org_units,
            org_unit_paths=config.org_unit_paths,
            admin_email=config.admin,
            reference_time=config.reference_time,
        )
        with self.lock:
            self.customer = domain.customer
            self.org_units = OrgUnitTree(domain.org_units)
            self.users = domain.users
            self.devices: dict[str, DeviceRecord] = {d.device_id: d for d in domain.devices}
            self.admin_email = config.admin
            self.admin_is_admin = True
            self.free_licenses: int | None = None  # None: unlimited
            self.commands: dict[str, Command] = {}
            self.policies: dict[tuple[str, str, tuple[tuple[str, str], ...]], dict[str, Any]] = {}
            self.command_outcome = "SUCCESS"
            self.command_step_seconds = config.command_step_seconds
            # A generator for devices and OUs added later, seeded apart from the initial domain.
            self.generator = DomainGenerator(config.domain, config.seed + 1, config.reference_time)
            self.faults.clear()
            self.log.clear()
            self.paginator.expire_all()
            self.changes += 1
        for record in domain.devices:
            record.json("FULL")  # encode now: the first sync should not pay for it
        if len(self.devices) >= FREEZE_THRESHOLD:
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
        with self.lock:
            return {
                "format": STATE_FORMAT,
                "customer": self.customer,
                "admin": {"email": self.admin_email, "is_admin": self.admin_is_admin},
                "free_licenses": self.free_licenses,
                "org_units": [vars(u) for u in self.org_units],
                "users": self.users,
                "devices": [{"data": d.data, "version": d.version} for d in self.devices.values()],
                "commands": [c.to_dict() for c in self.commands.values()],
                "policies": [
                    {"org_unit_id": ou, "schema": schema, "target_keys": dict(keys), "value": value}
                    for (ou, schema, keys), value in self.policies.items()
                ],
                "oauth": self.oauth.dump(),
                "clock_offset": self.clock.offset,
            }

    def load(self, data: dict[str, Any]) -> None:
        if data.get("format") != STATE_FORMAT:
            raise ValueError("unsupported emulator state file format")
        with self.lock:
            self.customer = data["customer"]
            self.admin_email = data["admin"]["email"]
            self.admin_is_admin = data["admin"]["is_admin"]
            self.free_licenses = data.get("free_licenses")
            self.org_units = OrgUnitTree([OrgUnit(**u) for u in data["org_units"]])
            self.users = data["users"]
            self.devices = {
                d["data"]["deviceId"]: DeviceRecord(d["data"], d["version"]) for d in data["devices"]
            }
            self.commands = {c["command_id"]: Command(**c) for c in data.get("commands", [])}
            self.policies = {
                (p["org_unit_id"], p["schema"], tuple(sorted(p["target_keys"].items()))): p["value"]
                for p in data.get("policies", [])
            }
            self.oauth.load(data.get("oauth", {}))
            if self.config.client_id not in self.oauth.clients:
                self.oauth.register_client(
                    self.config.client_id, self.config.client_secret, self.config.redirect_uris
                )
            self.clock.offset = data.get("clock_offset", 0.0)
            self.paginator.expire_all()
            self.changes += 1

    def save_to(self, path: str | os.PathLike[str]) -> None:
        """Write atomically: a demo killed mid-save keeps its previous state file."""
        target = Path(path)
        suffix = "".join(random.choices(string.ascii_lowercase, k=6))
        temporary = target.with_name(f".{target.name}.{suffix}.tmp")
        temporary.write_text(json.dumps(self.dump(), ensure_ascii=False))
        temporary.replace(target)

    def load_from(self, path: str | os.PathLike[str]) -> None:
        self.load(json.loads(Path(path).read_text()))
