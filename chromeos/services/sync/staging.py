"""Staging: a Google device turned into a row, and the run's TEMP staging table, filled page by page with COPY."""

# SQL below is composed only from model metadata, column-name constants and the run's integer id; every value
# is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import orjson
from django.db import DatabaseError, connection

from chromeos.models import SyncRun
from chromeos.services.sync.listing import Listing

# (column, Google field, max length): plain string columns. Anything that is not a string where a string is
# expected (a malformed or surprising payload) becomes empty in the column and stays intact in the payload.
STRING_COLUMNS: tuple[tuple[str, str, int | None], ...] = (
    ("serial_number", "serialNumber", 128),
    ("status", "status", 32),
    ("model", "model", 255),
    ("os_version", "osVersion", 64),
    ("platform_version", "platformVersion", 64),
    ("org_unit_path", "orgUnitPath", 1024),
    ("org_unit_id", "orgUnitId", 64),
    ("annotated_user", "annotatedUser", 255),
    ("annotated_location", "annotatedLocation", 255),
    ("annotated_asset_id", "annotatedAssetId", 255),
    ("notes", "notes", None),
    ("mac_address", "macAddress", 32),
    ("ethernet_mac_address", "ethernetMacAddress", 32),
    ("boot_mode", "bootMode", 32),
)
DATA_COLUMNS = (
    *(c for c, _f, _m in STRING_COLUMNS),
    "recent_user",
    "last_sync",
    "last_enrollment_time",
    "auto_update_expiration",
)
STAGE_COLUMNS = ("seq", "device_id", "etag", "fresh", *DATA_COLUMNS, "payload")
ANALYZED_COLUMNS = ("tenant_id", "device_id", "removed_at", "status", "org_unit_path", "model", "os_version")
# Columns whose changes are recorded as DeviceChange history (last_sync moves at every check-in: not history).
CHANGE_COLUMNS = tuple(c for c in DATA_COLUMNS if c not in ("last_sync", "platform_version", "org_unit_id"))


def _clean(value: str) -> str:
    """A string PostgreSQL accepts: without NUL (text cannot hold it), and valid UTF-8 (a lone UTF-16 surrogate,
    which JSON's \\ud800 escapes can produce, becomes "?")."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            value = value.encode("utf-8", "replace").decode()
    return value


def _text(value: Any, limit: int | None) -> str:
    if not isinstance(value, str):
        return ""
    value = _clean(value)
    return value[:limit] if limit else value


def _timestamp(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None or not (1900 <= moment.year <= 9999):
        return None
    return value


def _aue_date(device: dict[str, Any]) -> str | None:
    """autoUpdateExpiration is int64 milliseconds as a string; a bad value leaves the column empty."""
    value = device.get("autoUpdateExpiration")
    try:
        millis = int(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
    except ValueError:
        millis = None
    if millis is None:
        return None
    try:
        # Google's instant is midnight UTC of the day it means: the date in UTC, never in the server's zone
        # (date.fromtimestamp would give the day before on a server west of Greenwich).
        if not 0 < millis < 253402214400000:
            return None
        return datetime.fromtimestamp(millis / 1000, UTC).date().isoformat()
    except (OverflowError, OSError, ValueError):
        return None


def _recent_user(device: dict[str, Any]) -> str:
    users = device.get("recentUsers")
    if isinstance(users, list):
        for entry in users:
            if isinstance(entry, dict) and isinstance(entry.get("email"), str):
                return _text(entry["email"], 255)
    return ""


def _payload_json(device: dict[str, Any]) -> str:
    """The device as jsonb text. orjson: 15x faster than json.dumps, which took a fifth of a full sync's
    listing; it writes NaN and Infinity (which jsonb refuses) as null."""
    try:
        text = orjson.dumps(device).decode()
    except orjson.JSONEncodeError:  # an integer past 64 bits (jsonb keeps it), a lone surrogate
        return _safe_json(device)
    if "\\u0000" in text:  # jsonb refuses \u0000: drop NULs from every string, keep the rest
        return _safe_json(device)
    return text


def _safe_json(device: dict[str, Any]) -> str:
    return json.dumps(_json_safe(device), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _json_safe(value: Any) -> Any:
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {_clean(str(k)): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def device_row(seq: int, device_id: str, etag: str, device: dict[str, Any]) -> tuple[Any, ...]:
    return (
        seq,
        device_id,
        etag,
        True,
        *(_text(device.get(field), limit) for _c, field, limit in STRING_COLUMNS),
        _recent_user(device),
        _timestamp(device.get("lastSync")),
        _timestamp(device.get("lastEnrollmentTime")),
        _aue_date(device),
        _payload_json(device),
    )


# -- staging ---------------------------------------------------------------------------------------------------
class Stage:
    """The run's two TEMP tables on Django's connection (not WAL-logged, private to the run's connection).

    ``table`` holds one narrow row per listed device (``seq``, ``device_id``, ``etag``, ``fresh``): what the end of
    the run reads to prove the listing complete and to find the absent devices. ``batch`` holds the full rows
    (columns and payload) of the new or changed devices staged since the last merge: the merge empties it, so it
    stays small while the listing runs, whatever the number of devices.
    """

    def __init__(self, run: SyncRun) -> None:
        self.run = run
        self.table = f"chromeos_sync_stage_{run.pk}"
        self.batch = f"chromeos_sync_batch_{run.pk}"
        self.seq = 0
        # Rows in ``batch`` not merged yet, and their device ids: Google's offset paging can list a device twice,
        # and the merge's upsert must see each device once (``batch_repeats`` asks it to keep the last copy).
        self.pending = 0
        self.batch_ids: set[str] = set()
        self.batch_repeats = False

    def create(self) -> None:
        data_columns = ", ".join(
            f"{c} {'timestamptz' if c in ('last_sync', 'last_enrollment_time') else 'date' if c == 'auto_update_expiration' else 'text'}"
            for c in DATA_COLUMNS
        )
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.table}")
            cursor.execute(f"DROP TABLE IF EXISTS {self.batch}")
            self.batch_taken()
            cursor.execute(
                "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
            )
            row = cursor.fetchone()
            # lz4 compresses payloads several times faster than pglz; the merge copies them compressed as they
            # are, so the devices table gets lz4 payloads too (see migration 0007).
            compression = " COMPRESSION lz4" if row and row[0] else ""
            cursor.execute(
                f"CREATE TEMP TABLE {self.table} (seq integer NOT NULL, device_id text NOT NULL, "
                "etag text NOT NULL, fresh boolean NOT NULL DEFAULT false)"
            )
            cursor.execute(
                f"CREATE TEMP TABLE {self.batch} (seq integer NOT NULL, device_id text NOT NULL, "
                f"etag text NOT NULL, fresh boolean NOT NULL DEFAULT false, {data_columns}, "
                f"payload jsonb{compression})"
            )

    def analyze(self) -> None:
        """Autovacuum never analyzes TEMP tables: without statistics the sweep's join would be planned blind
        (a nested-loop anti-join over 100,000 rows each side takes minutes)."""
        with connection.cursor() as cursor:
            # The index is insurance: right after a tenant's first sync the devices table's statistics may still
            # say "empty", and the sweep's anti-join is then planned as a nested loop; without this index each
            # loop would scan the whole staging table (100,000 x 100,000 comparisons).
            cursor.execute(f"CREATE INDEX ON {self.table} (device_id)")
            cursor.execute(f"ANALYZE {self.table}")
            # A device listed twice (Google's paging shifted under a change) counts once.
            cursor.execute(
                f"DELETE FROM {self.table} AS s USING {self.table} AS t "
                "WHERE s.device_id = t.device_id AND s.seq < t.seq"
            )

    def batch_taken(self) -> None:
        """The merge has emptied ``batch`` (in its transaction)."""
        self.pending = 0
        self.batch_ids.clear()
        self.batch_repeats = False

    def drop(self) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {self.table}")
                cursor.execute(f"DROP TABLE IF EXISTS {self.batch}")
        except DatabaseError:
            pass  # the connection is gone, and its TEMP tables with it

    def write_page(self, devices: list[Any], tenant_id: int, listing: Listing) -> None:
        """COPY one page: every device's id into ``table``, the full rows of new or changed devices into
        ``batch``."""
        page: list[tuple[str, str, dict[str, Any]]] = []
        for device in devices:
            device_id = device.get("deviceId") if isinstance(device, dict) else None
            if not isinstance(device_id, str) or not device_id or len(device_id) > 64:
                listing.skipped += 1
                continue
            etag = device.get("etag")
            page.append((device_id, etag if isinstance(etag, str) else "", device))
        listing.pages += 1
        listing.devices += len(page)
        if not page:
            return
        with connection.cursor() as django_cursor:
            cursor = django_cursor.cursor  # psycopg's own cursor: COPY is not in Django's API
            # LATERAL ... LIMIT 1 makes this one unique-index probe per device, whatever the statistics say: a
            # plain join is planned as a hash join over all the tenant's rows (100,000 rows read per page).
            cursor.execute(
                "SELECT u.id, d.etag FROM unnest(%s::text[]) AS u(id) CROSS JOIN LATERAL ("
                " SELECT etag FROM chromeos_chromeosdevice"
                " WHERE tenant_id = %s AND device_id = u.id AND removed_at IS NULL LIMIT 1) AS d",
                ([d for d, _e, _p in page], tenant_id),
            )
            stored = dict(cursor.fetchall())
            listed: list[tuple[int, str, str, bool]] = []
            fresh: list[tuple[Any, ...]] = []
            for device_id, etag, device in page:
                self.seq += 1
                if etag and stored.get(device_id) == etag:
                    listed.append((self.seq, device_id, etag, False))
                else:
                    listed.append((self.seq, device_id, etag, True))
                    fresh.append(device_row(self.seq, device_id, etag, device))
                    if device_id in self.batch_ids:
                        self.batch_repeats = True
                    self.batch_ids.add(device_id)
            listing.fresh += len(fresh)
            self.pending += len(fresh)
            # Unchanged devices travel as their id only: most pages of a re-sync write nothing else.
            with cursor.copy(f"COPY {self.table} (seq, device_id, etag, fresh) FROM STDIN") as copy:
                for row in listed:
                    copy.write_row(row)
            if fresh:
                with cursor.copy(f"COPY {self.batch} ({', '.join(STAGE_COLUMNS)}) FROM STDIN") as copy:
                    for row in fresh:
                        copy.write_row(row)
