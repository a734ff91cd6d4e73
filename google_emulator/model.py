"""The records the emulator keeps in memory: org units, devices, users, commands, OAuth grants."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

DEVICE_KIND = "admin#directory#chromeosdevice"
ORG_UNIT_KIND = "admin#directory#orgUnit"

# Fields the BASIC projection leaves out: the telemetry and hardware reports only FULL carries.
FULL_ONLY_DEVICE_FIELDS = frozenset(
    {
        "recentUsers",
        "activeTimeRanges",
        "cpuStatusReports",
        "diskVolumeReports",
        "systemRamFreeReports",
        "lastKnownNetwork",
        "tpmVersionInfo",
        "cpuInfo",
        "deviceFiles",
        "screenshotFiles",
        "osUpdateStatus",
        "backlightInfo",
        "fanInfo",
        "bluetoothAdapterInfo",
        "diskSpaceUsage",
        "systemRamTotal",
    }
)

# What update/patch may change; everything else in a request body is read-only and ignored, as Google does.
WRITABLE_DEVICE_FIELDS = {
    "annotatedUser": 100,
    "annotatedLocation": 200,
    "annotatedAssetId": 200,
    "notes": 500,
}


def make_etag(*parts: object) -> str:
    digest = hashlib.sha1(":".join(map(str, parts)).encode(), usedforsecurity=False).digest()
    encoded = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    return f'"{encoded[:20]}/{encoded[20:]}"'


def compact_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


class TelemetryBlock:
    """Read-only hardware reports shared by many devices, with their JSON encoded once.

    A device whose telemetry values are still these very objects is serialised by splicing
    this fragment after its own fields, which makes encoding 100,000 devices several times faster.
    """

    __slots__ = ("fragment", "values")

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.fragment = compact_json(values)[1:-1]

    def shared_by(self, data: dict[str, Any]) -> bool:
        return all(data.get(key) is value for key, value in self.values.items())


class DeviceRecord:
    """One ChromeOS device: its FULL representation, and the JSON of each projection, cached.

    Listing 100,000 devices is dominated by serialisation, so each projection is encoded once and
    reused until the device changes (``touch``).
    """

    __slots__ = ("_json", "data", "owner", "telemetry", "version")

    def __init__(
        self, data: dict[str, Any], version: int = 1, telemetry: TelemetryBlock | None = None
    ) -> None:
        self.data = data
        self.version = version
        self.telemetry = telemetry
        self._json: dict[str, bytes] = {}
        # The DeviceStore this record belongs to: a record generated on demand is stored once it changes.
        self.owner: Any = None
        self.data["etag"] = make_etag(data["deviceId"], version)

    @property
    def device_id(self) -> str:
        return self.data["deviceId"]

    def touch(self) -> None:
        self.version += 1
        self.data["etag"] = make_etag(self.device_id, self.version)
        self._json.clear()
        if self.owner is not None:
            self.owner.keep(self)

    def view(self, projection: str) -> dict[str, Any]:
        if projection == "FULL":
            return self.data
        return {k: v for k, v in self.data.items() if k not in FULL_ONLY_DEVICE_FIELDS}

    def json(self, projection: str) -> bytes:
        cached = self._json.get(projection)
        if cached is None:
            cached = self._json[projection] = self._encode(projection)
        return cached

    def _encode(self, projection: str) -> bytes:
        telemetry = self.telemetry
        if projection != "FULL" or telemetry is None or not telemetry.shared_by(self.data):
            return compact_json(self.view(projection))
        own = compact_json({k: v for k, v in self.data.items() if k not in telemetry.values})
        return own[:-1] + b"," + telemetry.fragment + b"}"


@dataclass
class OrgUnit:
    org_unit_id: str  # without the "id:" prefix, as devices and Chrome Policy spell it
    path: str
    name: str
    description: str = ""
    parent_id: str | None = None

    @property
    def parent_path(self) -> str | None:
        if self.path == "/":
            return None
        parent = self.path.rsplit("/", 1)[0]
        return parent or "/"

    def resource(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": ORG_UNIT_KIND,
            "etag": make_etag(self.org_unit_id, self.path, self.description),
            "name": self.name,
            "orgUnitPath": self.path,
            "orgUnitId": f"id:{self.org_unit_id}",
        }
        if self.description:
            body["description"] = self.description
        if self.parent_id is not None:
            body["parentOrgUnitPath"] = self.parent_path
            body["parentOrgUnitId"] = f"id:{self.parent_id}"
        return body


COMMAND_PROGRESSION = ("PENDING", "SENT_TO_CLIENT", "ACKED_BY_CLIENT", "EXECUTED_BY_CLIENT")
FINAL_COMMAND_STATES = frozenset({"EXECUTED_BY_CLIENT", "EXPIRED", "CANCELLED"})


@dataclass
class Command:
    """A remote command. Its state is derived from the clock, so tests can advance time instead of sleeping."""

    command_id: str
    device_id: str
    command_type: str
    issue_time: float
    expire_time: float
    payload: str | None = None
    # What the device eventually does: SUCCESS / FAILURE / IGNORED, or EXPIRED (never picked up).
    outcome: str = "SUCCESS"
    step_seconds: float = 1.0
    forced_state: str | None = None

    def state_at(self, now: float) -> str:
        if self.forced_state:
            return self.forced_state
        steps = (
            len(COMMAND_PROGRESSION)
            if self.step_seconds <= 0
            else int((now - self.issue_time) / self.step_seconds)
        )
        if self.outcome == "EXPIRED":
            # The device never picks it up: pending for one step, then expired.
            return "EXPIRED" if steps >= 1 or now >= self.expire_time else "PENDING"
        if steps < len(COMMAND_PROGRESSION) - 1 and now >= self.expire_time:
            return "EXPIRED"
        return COMMAND_PROGRESSION[min(max(steps, 0), len(COMMAND_PROGRESSION) - 1)]

    def execute_time(self) -> float:
        return self.issue_time + self.step_seconds * (len(COMMAND_PROGRESSION) - 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class OAuthClient:
    client_id: str
    client_secret: str
    # Empty: any http(s) redirect URI is accepted (and remembered per code), handy for dev servers.
    redirect_uris: list[str] = field(default_factory=list)


@dataclass
class Authorization:
    """What one user granted one client. Revoking any of its tokens revokes it whole, as Google does."""

    client_id: str
    user: str
    scopes: list[str]
    epoch: int
    refresh_tokens: list[str] = field(default_factory=list)


@dataclass
class AccessToken:
    token: str
    client_id: str
    user: str
    scopes: list[str]
    expires_at: float
    epoch: int


@dataclass
class AuthorizationCode:
    code: str
    client_id: str
    redirect_uri: str
    user: str
    scopes: list[str]
    expires_at: float
    issue_refresh_token: bool
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    used: bool = False
