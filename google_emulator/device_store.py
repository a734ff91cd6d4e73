"""A customer's ChromeOS devices: generated from seeds on demand, stored only once changed.

One emulator process must hold 1,000 customers and 1,000,000 devices in a few GB. A materialised device is a
dict of some forty fields plus its encoded JSON (~3 KB), so the devices a customer is *seeded* with are never
all kept: device ``i`` of a customer is generated when asked for, from ``(customer seed, i)`` alone, and its id
encodes ``i`` (a keyed bijection, so ids still look random and a lookup by id needs no index). What the store
keeps is the sparse difference from the seed:

| what happened to a device            | kept in             |
|--------------------------------------|---------------------|
| nothing (the common case)            | nothing; regenerated on demand (a bounded LRU cache keeps recent ones) |
| changed, moved, status, annotation   | ``changed[i]``: the whole record, once ``DeviceRecord.touch`` ran |
| deleted                              | ``deleted``: the index |
| added after seeding (or loaded)      | ``added[device id]`` |

``DeviceStore`` is a mutable mapping ``device id -> DeviceRecord`` in the same order as the dict it replaces
(seeded devices by index, then added ones), so every caller (listing, get, count, patch, actions, moves, the
control API and tests) works on it as before. A record handed out for an untouched device is a fresh object:
mutating it and calling ``touch()`` (every mutation does) stores it; mutating it without ``touch()`` is lost,
which no caller does. Filtering by org unit uses a compact array of each seeded device's unit (2 bytes a device)
instead of generating every device.
"""

from __future__ import annotations

import random
import threading
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Iterator, MutableMapping
from datetime import UTC, datetime
from typing import Any

from google_emulator.generator import DeviceModel, DomainGenerator
from google_emulator.model import DeviceRecord, OrgUnit, TelemetryBlock

ID_BITS = 48
ID_MASK = (1 << ID_BITS) - 1
ID_MULTIPLIER = 0x9E3779B97F4B  # odd: index -> id is a bijection modulo 2**48
ID_INVERSE = pow(ID_MULTIPLIER, -1, 1 << ID_BITS)
TELEMETRY_SLOTS = 64

# Hardware reports are shared by every customer (per reference day, model and slot): 1,000 customers with a
# pool each would hold ~700,000 report blocks.
_shared_telemetry: dict[tuple[int, str, int], TelemetryBlock] = {}
_shared_telemetry_lock = threading.Lock()


class RecordCache:
    """Recently generated records of every customer, least recently used out first; shared by the emulator so
    ``capacity`` bounds the memory of unchanged devices whatever the number of customers."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._records: OrderedDict[tuple[int, int], DeviceRecord] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[int, int]) -> DeviceRecord | None:
        with self._lock:
            record = self._records.get(key)
            if record is not None:
                self._records.move_to_end(key)
            return record

    def put(self, key: tuple[int, int], record: DeviceRecord) -> None:
        if self.capacity <= 0:
            return
        with self._lock:
            self._records[key] = record
            self._records.move_to_end(key)
            while len(self._records) > self.capacity:
                self._records.popitem(last=False)

    def discard(self, key: tuple[int, int]) -> None:
        with self._lock:
            self._records.pop(key, None)

    def discard_store(self, store_key: int) -> None:
        with self._lock:
            for key in [k for k in self._records if k[0] == store_key]:
                del self._records[key]

    def __len__(self) -> int:
        return len(self._records)


class _IndexedGenerator(DomainGenerator):
    """The domain generator, reseeded for each device, with telemetry drawn from the shared pool."""

    def telemetry_block(self, model: DeviceModel, synced: int) -> TelemetryBlock:
        slot = int(self.rng.random() * TELEMETRY_SLOTS)
        key = (self.now_seconds, model.name, slot)
        block = _shared_telemetry.get(key)
        if block is None:
            with _shared_telemetry_lock:
                block = _shared_telemetry.get(key)
                if block is None:
                    device_rng = self.rng
                    self.rng = random.Random(f"telemetry:{key}")
                    try:
                        report_time = self.now_seconds - 60 * self._int(1, 60 * 24 * 60)
                        block = _shared_telemetry[key] = TelemetryBlock(self._telemetry(model, report_time))
                    finally:
                        self.rng = device_rng
        return block


class SeededDevices:
    """The ``count`` devices a customer was seeded with: device ``i`` from ``(seed, domain, i)`` alone."""

    def __init__(
        self,
        *,
        seed: int,
        count: int,
        domain: str,
        units: list[OrgUnit],
        users: list[dict[str, Any]],
        reference_time: datetime,
    ) -> None:
        self.seed = seed
        self.count = count
        self.domain = domain
        self.reference_time = reference_time
        # Frozen copies: the devices of the seed live in the units as they were at seeding time.
        self.units = [OrgUnit(u.org_unit_id, u.path, u.name, u.description, u.parent_id) for u in units]
        self.users = users
        keys = random.Random(f"devices:{seed}:{domain}")
        self._rng_base = keys.getrandbits(64) << 32
        tag = f"{keys.getrandbits(72):018x}"
        self.id_prefix = f"{tag[:8]}-{tag[8:12]}-4{tag[12:15]}-a{tag[15:18]}-"
        self._id_offset = keys.getrandbits(ID_BITS)
        self._generator = _IndexedGenerator(domain, 0, reference_time)
        self._lock = threading.Lock()
        self._unit_of: array[int] | None = None

    def device_id(self, index: int) -> str:
        return f"{self.id_prefix}{(index * ID_MULTIPLIER + self._id_offset) & ID_MASK:012x}"

    def index_of(self, device_id: str) -> int | None:
        """The index a device id encodes, or None if it is not one of these devices."""
        if len(device_id) != 36 or not device_id.startswith(self.id_prefix):
            return None
        try:
            encoded = int(device_id[24:], 16)
        except ValueError:
            return None
        index = ((encoded - self._id_offset) * ID_INVERSE) & ID_MASK
        if index >= self.count or self.device_id(index) != device_id:
            return None
        return index

    def generate(self, index: int) -> DeviceRecord:
        with self._lock:
            self._generator.rng.seed(self._rng_base + index)
            return self._generator.device(self.units, self.users, device_id=self.device_id(index))

    def unit_index(self, index: int) -> int:
        # The draws of DomainGenerator.device before its org unit: model, status, then the unit.
        rng = random.Random(self._rng_base + index)
        rng.random()
        rng.random()
        return int(rng.random() * len(self.units))

    def units_of_devices(self) -> array[int]:
        """Each device's org unit (an index in ``units``), computed once: 2 bytes a device."""
        if self._unit_of is None:
            self._unit_of = array("H", (self.unit_index(i) for i in range(self.count)))
        return self._unit_of

    def describe(self) -> dict[str, Any]:
        """What regenerates these devices (the state file keeps it instead of the devices)."""
        return {
            "seed": self.seed,
            "count": self.count,
            "domain": self.domain,
            "reference_time": self.reference_time.isoformat(),
            "units": [[u.org_unit_id, u.path, u.name, u.description, u.parent_id] for u in self.units],
        }

    @classmethod
    def from_description(cls, data: dict[str, Any], users: list[dict[str, Any]]) -> SeededDevices:
        return cls(
            seed=data["seed"],
            count=data["count"],
            domain=data["domain"],
            units=[OrgUnit(*u) for u in data["units"]],
            users=users,
            reference_time=datetime.fromisoformat(data["reference_time"]).astimezone(UTC),
        )


class DeviceStore(MutableMapping[str, DeviceRecord]):
    """``device id -> DeviceRecord`` over seeded devices plus a sparse overlay of what changed (see above)."""

    _keys = iter(range(1, 1 << 62))

    def __init__(self, seeded: SeededDevices | None, cache: RecordCache) -> None:
        self.seeded = seeded
        self.cache = cache
        self.key = next(DeviceStore._keys)
        self.changed: dict[int, DeviceRecord] = {}
        self.deleted: set[int] = set()
        self.added: dict[str, DeviceRecord] = {}

    # -- the mapping ---------------------------------------------------------------------------
    def _index(self, device_id: str) -> int | None:
        return self.seeded.index_of(device_id) if self.seeded is not None else None

    def _seeded(self, index: int, remember: bool = True) -> DeviceRecord:
        record = self.changed.get(index)
        if record is not None:
            return record
        record = self.cache.get((self.key, index))
        if record is None:
            assert self.seeded is not None
            record = self.seeded.generate(index)
            record.owner = self
            if remember:
                self.cache.put((self.key, index), record)
        return record

    def get(self, device_id: str, default: Any = None) -> Any:
        index = self._index(device_id)
        if index is None:
            return self.added.get(device_id, default)
        if index in self.deleted:
            return default
        return self._seeded(index)

    def __getitem__(self, device_id: str) -> DeviceRecord:
        record = self.get(device_id)
        if record is None:
            raise KeyError(device_id)
        return record

    def __contains__(self, device_id: object) -> bool:
        if not isinstance(device_id, str):
            return False
        index = self._index(device_id)
        return device_id in self.added if index is None else index not in self.deleted

    def __setitem__(self, device_id: str, record: DeviceRecord) -> None:
        record.owner = self
        index = self._index(device_id)
        if index is None:
            self.added[device_id] = record
        else:
            self.deleted.discard(index)
            self.changed[index] = record
            self.cache.discard((self.key, index))

    def __delitem__(self, device_id: str) -> None:
        index = self._index(device_id)
        if index is None:
            del self.added[device_id]
            return
        if index in self.deleted:
            raise KeyError(device_id)
        self.deleted.add(index)
        self.changed.pop(index, None)
        self.cache.discard((self.key, index))

    def __len__(self) -> int:
        seeded = self.seeded.count if self.seeded is not None else 0
        return seeded - len(self.deleted) + len(self.added)

    def __iter__(self) -> Iterator[str]:
        if self.seeded is not None:
            deleted, device_id = self.deleted, self.seeded.device_id
            for index in range(self.seeded.count):
                if index not in deleted:
                    yield device_id(index)
        yield from list(self.added)

    def records(self) -> Iterator[DeviceRecord]:
        """Every device, in order. Unchanged ones are generated and not cached: a scan of a large customer
        must not evict the devices being listed."""
        if self.seeded is not None:
            deleted = self.deleted
            for index in range(self.seeded.count):
                if index not in deleted:
                    yield self._seeded(index, remember=False)
        yield from list(self.added.values())

    def values(self) -> Any:  # a one-pass iterable; callers only iterate it
        return _Records(self)

    # -- what touch() and the org unit filter use ----------------------------------------------
    def keep(self, record: DeviceRecord) -> None:
        """A handed-out record changed: from now on it is the device (unless it was deleted meanwhile)."""
        index = self._index(record.device_id)
        if index is not None and index not in self.deleted and self.changed.get(index) is not record:
            self.changed[index] = record
            self.cache.discard((self.key, index))

    def in_org_units(self, paths: set[str]) -> Iterator[DeviceRecord]:
        """Devices whose org unit path is in ``paths``, generating only the unchanged ones that match."""
        if self.seeded is not None:
            units = self.seeded.units
            wanted = {i for i, unit in enumerate(units) if unit.path in paths}
            unit_of = self.seeded.units_of_devices()
            deleted, changed = self.deleted, self.changed
            for index in range(self.seeded.count):
                if index in deleted:
                    continue
                record = changed.get(index)
                if record is not None:
                    if record.data.get("orgUnitPath") in paths:
                        yield record
                elif unit_of[index] in wanted:
                    yield self._seeded(index, remember=False)
        for record in list(self.added.values()):
            if record.data.get("orgUnitPath") in paths:
                yield record

    def warm(self) -> None:
        """Generate and encode every seeded device into the cache, if they all fit: a single customer then
        answers its first listing as fast as the later ones (what the benchmarks of one tenant measure)."""
        if self.seeded is None or self.seeded.count > self.cache.capacity - len(self.cache):
            return
        for index in range(self.seeded.count):
            self._seeded(index).json("FULL")

    def forget(self) -> None:
        self.cache.discard_store(self.key)

    # -- persistence ---------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        return {
            "seeded": self.seeded.describe() if self.seeded is not None else None,
            "changed": [{"index": i, "data": r.data, "version": r.version} for i, r in self.changed.items()],
            "deleted": sorted(self.deleted),
            "added": [{"data": r.data, "version": r.version} for r in self.added.values()],
        }

    @classmethod
    def load(cls, data: dict[str, Any], users: list[dict[str, Any]], cache: RecordCache) -> DeviceStore:
        seeded = SeededDevices.from_description(data["seeded"], users) if data.get("seeded") else None
        store = cls(seeded, cache)
        for item in data.get("changed", []):
            store.changed[item["index"]] = DeviceRecord(item["data"], item["version"])
            store.changed[item["index"]].owner = store
        store.deleted = set(data.get("deleted", []))
        for item in data.get("added", []):
            store[item["data"]["deviceId"]] = DeviceRecord(item["data"], item["version"])
        return store

    @classmethod
    def of_records(cls, records: Iterable[DeviceRecord], cache: RecordCache) -> DeviceStore:
        store = cls(None, cache)
        for record in records:
            store[record.device_id] = record
        return store


class _Records:
    def __init__(self, store: DeviceStore) -> None:
        self.store = store

    def __iter__(self) -> Iterator[DeviceRecord]:
        return self.store.records()

    def __len__(self) -> int:
        return len(self.store)
