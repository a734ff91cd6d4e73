"""Staging: a Google device turned into a row, and the run's rows in the shared staging tables, filled page by page
with COPY."""

# SQL below is composed only from model metadata, column-name constants and the run's integer id; every value
# is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import contextlib
import json
import math
from datetime import UTC, datetime
from typing import Any

import orjson
from django.db import DatabaseError, connection, transaction

from chromeos.models import SyncRun, SyncStatus
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
STAGE_TABLE = "chromeos_syncstage"
BATCH_TABLE = "chromeos_syncbatch"


class Stage:
    """The run's rows in the two staging tables every run shares (UNLOGGED, migration 0023), keyed by run id.

    ``table`` holds one narrow row per listed device (``seq``, ``device_id``, ``etag``, ``fresh``): what the end of
    the run reads to prove the listing complete and to find the absent devices. ``batch`` holds the full rows
    (columns and payload) of the new or changed devices staged since the last merge: the merge empties it, so it
    stays small while the listing runs, whatever the number of devices.

    The tables are permanent, so a run creates, indexes, analyzes and drops nothing: per-run TEMP tables wrote
    ~50 KB of catalog WAL per sync, the whole no-change cost of a small tenant (issue 18). Every statement names
    the run (``run_id = %s``); 16 syncs of one worker write side by side, each on its own connection. A run's rows
    are deleted at its end (``drop``); those of a run that died are deleted by ``discard_stale_stages`` (at the
    start of each sync, and by the reaper). UNLOGGED: their rows write no WAL; PostgreSQL empties them after a
    crash, which only loses what runs that died with it had staged.
    """

    table = STAGE_TABLE
    batch = BATCH_TABLE

    def __init__(self, run: SyncRun) -> None:
        self.run = run
        self.run_id = run.pk
        self.seq = 0
        # Rows in ``batch`` not merged yet, and their device ids: Google's offset paging can list a device twice,
        # and the merge's upsert must see each device once (``batch_repeats`` asks it to keep the last copy).
        self.pending = 0
        self.batch_ids: set[str] = set()
        self.batch_repeats = False
        # ``hold``: the full rows of new or changed devices are kept here (``take_held``) rather than COPYed into
        # ``batch``, for the merge thread to COPY and merge on its own connection while this one stages on.
        self.hold = False
        self.held: list[tuple[Any, ...]] = []

    def create(self) -> None:
        """Start the run's staging afresh (also when a parallel listing is not proven and the listing starts
        again: what it staged goes)."""
        self._delete()
        self.batch_taken()
        self.held = []

    def _delete(self) -> None:
        _delete_run_rows(self.run_id, wait=True)

    def analyze(self) -> None:
        """The end of the listing: a device listed twice (Google's paging shifted under a change) counts once.

        (The name stays from the TEMP tables, which needed an index and an ANALYZE here; the shared table has its
        index on ``(run_id, device_id)``, and autovacuum analyzes it.)"""
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {self.table} AS s USING {self.table} AS t "
                "WHERE s.run_id = %(run)s AND t.run_id = %(run)s AND s.device_id = t.device_id AND s.seq < t.seq",
                {"run": self.run_id},
            )

    def batch_taken(self) -> None:
        """The merge has emptied ``batch`` (in its transaction)."""
        self.pending = 0
        self.batch_ids.clear()
        self.batch_repeats = False

    def drop(self) -> None:
        """The run is over: its rows go. If the database is unreachable they stay, for
        ``discard_stale_stages``."""
        with contextlib.suppress(DatabaseError):
            self._delete()

    def write_page(
        self, devices: list[Any], tenant_id: int, listing: Listing, *, look_up: bool = True
    ) -> None:
        """COPY one page: every device's id into ``table``, the full rows of new or changed devices into
        ``batch``. ``look_up=False``: the tenant had no device when the run started, every device is new (a copy
        of one the run stored already is the merge's to find: ``DeviceMerge._copy_new``), so its stored etag is
        not looked up."""
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
            stored: dict[str, str] = {}
            if look_up:
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
            run_id = self.run_id
            with cursor.copy(f"COPY {self.table} (run_id, seq, device_id, etag, fresh) FROM STDIN") as copy:
                for row in listed:
                    copy.write_row((run_id, *row))
            if fresh and self.hold:
                self.held.extend(fresh)
            elif fresh:
                write_batch(run_id, fresh)

    def take_held(self) -> tuple[list[tuple[Any, ...]], bool]:
        """The held rows since the last take, and whether a device comes twice among them; the batch is then
        empty for the run's thread (``pending`` counts from 0 again)."""
        rows, repeats = self.held, self.batch_repeats
        self.held = []
        self.batch_taken()
        return rows, repeats


def write_batch(run_id: int, rows: list[tuple[Any, ...]]) -> None:
    """COPY a run's full rows (``device_row``) into the batch table, on the calling thread's connection."""
    with connection.cursor() as django_cursor:
        cursor = django_cursor.cursor  # psycopg's own cursor: COPY is not in Django's API
        with cursor.copy(f"COPY {BATCH_TABLE} (run_id, {', '.join(STAGE_COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row((run_id, *row))


# Advisory lock key (namespace, run id modulo 2**31) held while a run's staged rows are deleted: the run's own end
# and a janitor never delete the same rows at once (two DELETEs of one run's rows, one by index and one by a
# sequential scan, could lock them in opposite orders and deadlock).
DISCARD_LOCK_NAMESPACE = 0x53544147  # "STAG"
# The distinct run ids of a staging table, one index probe each (a loose index scan): a handful of runs at once.
RUN_IDS = """
WITH RECURSIVE ids AS (
    (SELECT run_id FROM {table} ORDER BY run_id LIMIT 1)
    UNION ALL
    SELECT (SELECT s.run_id FROM {table} s WHERE s.run_id > ids.run_id ORDER BY s.run_id LIMIT 1)
    FROM ids WHERE ids.run_id IS NOT NULL
)
SELECT run_id FROM ids WHERE run_id IS NOT NULL
"""


def _delete_run_rows(run_id: int, *, wait: bool) -> bool:
    """Delete one run's staged rows; with ``wait`` False, not if another session is deleting them."""
    with transaction.atomic(), connection.cursor() as cursor:
        key = [DISCARD_LOCK_NAMESPACE, run_id % 2**31]
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", key)
        else:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", key)
            if not cursor.fetchone()[0]:
                return False
        cursor.execute(f"DELETE FROM {STAGE_TABLE} WHERE run_id = %s", [run_id])
        cursor.execute(f"DELETE FROM {BATCH_TABLE} WHERE run_id = %s", [run_id])
    return True


def vacuum_stages() -> bool:
    """VACUUM the two staging tables (the reaper's tick, every minute). Every run deletes the rows it staged, so a
    cycle of 1,000 tenants leaves ~1.1 million dead rows in them; only a VACUUM makes their space reusable.
    Autovacuum would, where it runs (``autovacuum = off`` on the server measured by benchmarks/fleet.py: the stage
    grew by 232 MB per no-change cycle of 1.1 M devices): this does not depend on it. Cheap when there is nothing
    to do (all-visible pages are skipped); the tables are UNLOGGED, so it writes no WAL for their pages; SKIP_LOCKED:
    never waits behind a table lock (autovacuum's own run). Not inside a transaction (VACUUM cannot run there):
    returns False without doing anything."""
    if connection.in_atomic_block:
        return False
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (SKIP_LOCKED) {STAGE_TABLE}, {BATCH_TABLE}")
    return True


def discard_stale_stages() -> int:
    """Delete the staged rows of runs that are over and did not delete them (their worker died, or lost
    PostgreSQL at the end), or whose run row is gone (deleted with its integration). Called at the start of each
    sync and by the reaper. Rows of a RUNNING run stay (a run whose worker died is reaped first), and so do those
    of a run cancelled while its tenant's lock is held (its worker may still be writing: it deletes them itself
    when it stops). Returns the number of runs whose rows were deleted."""
    from chromeos.services.sync.runs import sync_lock_held

    ids: set[int] = set()
    with connection.cursor() as cursor:
        for table in (STAGE_TABLE, BATCH_TABLE):
            cursor.execute(RUN_IDS.format(table=table))
            ids.update(row[0] for row in cursor.fetchall())
    if not ids:
        return 0
    runs = {
        pk: (status, tenant)
        for pk, status, tenant in SyncRun.unscoped.filter(pk__in=ids).values_list("pk", "status", "tenant_id")
    }
    discarded = 0
    for run_id in sorted(ids):
        status, tenant_id = runs.get(run_id, (None, None))
        if status == SyncStatus.RUNNING:
            continue
        if status == SyncStatus.CANCELLED and tenant_id is not None and sync_lock_held(tenant_id):
            continue
        if _delete_run_rows(run_id, wait=False):
            discarded += 1
    return discarded
