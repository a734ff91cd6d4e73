"""WAL written by one database between two positions, for benchmarks on a shared PostgreSQL server.

``pg_current_wal_lsn()`` is cluster-wide: every database on the server (other lanes' tests, other benchmarks)
moves it, so the difference of two readings says little about the benchmark's own writes. ``wal_between`` reads
the WAL between them back with ``pg_waldump`` and sorts every record:

* **ours**: records on a relation of this database (``blkref ... rel <tablespace>/<our db oid>/<relfilenode>``),
  plus the records without a relation (commits, mostly) of the transactions that wrote those;
* **no relation**: records that name no relation and belong to no transaction of ours (checkpoints, running
  transactions snapshots, other databases' commits): the server's share, reported apart, never added to ours;
* **others**: records on other databases' relations (left out).

``by_relation`` splits ours by table (TOAST and indexes under their table's name; a relation gone since, such
as a sync's TEMP stage, under its file node): what a sync writes, named.

A busy server checkpoints often and recycles the segments behind it: ``wal_position()`` also reserves the WAL
from there with a TEMPORARY physical replication slot of its session (dropped by ``wal_between``, or by
PostgreSQL when the session ends: nothing stays behind), so the segments are still there to be read.

When ``pg_waldump`` or the WAL directory cannot be read (or the segments are gone all the same), the reading falls
back to the cluster-wide difference, with ``source = "cluster-wide"`` (and ``error``) for the caller to say so.

Usage::

    before = wal_position()
    ...  # the measured work
    reading = wal_between(before, wal_position())
    print(reading.label())
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

PG_WALDUMP = os.environ.get("PG_WALDUMP", "/usr/lib/postgresql/15/bin/pg_waldump")
RECORD = re.compile(rb"len \(rec/tot\):\s*\d+/\s*(\d+), tx:\s*(\d+),")
RELATION = re.compile(rb"rel (\d+)/(\d+)/(\d+)")


@dataclass
class WalReading:
    cluster_bytes: int
    source: str  # "pg_waldump" or "cluster-wide"
    ours_bytes: int = 0
    no_relation_bytes: int = 0
    others_bytes: int = 0
    by_relation: dict[str, int] = field(default_factory=dict)
    error: str = ""

    @property
    def bytes(self) -> int:
        """This database's WAL; the cluster-wide difference when it could not be attributed."""
        return self.ours_bytes if self.source == "pg_waldump" else self.cluster_bytes

    def label(self) -> str:
        if self.source != "pg_waldump":
            why = f": {self.error}" if self.error else ""
            return (
                f"{self.cluster_bytes / 1e6:.2f} MB cluster-wide (other databases included; "
                f"not read back with pg_waldump{why})"
            )
        return (
            f"{self.ours_bytes / 1e6:.2f} MB this database; {self.no_relation_bytes / 1e6:.2f} MB without a "
            f"relation (server's share, not counted); {self.others_bytes / 1e6:.2f} MB other databases; "
            f"{self.cluster_bytes / 1e6:.2f} MB cluster-wide"
        )

    def top_relations(self, limit: int = 8) -> list[tuple[str, int]]:
        return sorted(self.by_relation.items(), key=lambda item: -item[1])[:limit]


def _slot() -> str:
    return f"bench_wal_{os.getpid()}"


def wal_position() -> str:
    """The current WAL position; the WAL from there is kept until ``wal_between`` (a temporary slot)."""
    from django.db import DatabaseError, connection, transaction

    with connection.cursor() as cursor:
        try:
            with transaction.atomic():
                cursor.execute(
                    "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s AND temporary", [_slot()]
                )
                if cursor.fetchone() is None:
                    cursor.execute("SELECT pg_create_physical_replication_slot(%s, true, true)", [_slot()])
        except DatabaseError:
            pass  # no slot to spare, or not allowed: the reading may then fall back to the cluster-wide figure
        cursor.execute("SELECT pg_current_wal_lsn()")
        return str(cursor.fetchone()[0])


def _release() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE slot_name = %s AND active_pid = pg_backend_pid()",
            [_slot()],
        )


def _cluster_bytes(before: str, after: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_wal_lsn_diff(%s, %s)", [after, before])
        return int(cursor.fetchone()[0])


def _relation_names(nodes: list[int]) -> dict[int, str]:
    """This database's file nodes → table names (a TOAST table or an index under its table's name; catalogs
    too, whose file nodes pg_class does not hold)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT n, coalesce(toast_owner.relname, t.relname, c.relname)
            FROM unnest(%s::oid[]) AS n
            JOIN pg_class c ON c.oid = pg_filenode_relation(0, n)
            LEFT JOIN pg_index i ON i.indexrelid = c.oid
            LEFT JOIN pg_class t ON t.oid = i.indrelid
            LEFT JOIN pg_class toast_owner ON toast_owner.reltoastrelid = coalesce(i.indrelid, c.oid)
            """,
            [nodes],
        )
        return {int(node): str(name) for node, name in cursor.fetchall()}


def wal_between(before: str, after: str) -> WalReading:
    """The WAL between two ``wal_position()`` readings, attributed to this database (see the module)."""
    try:
        return _read(before, after)
    finally:
        _release()


def wal_reading_between(positions: list[str]) -> list[WalReading]:
    """The WAL of each window between consecutive ``wal_position()`` readings (the slot taken by the first kept
    all of it), read back at the end; the slot is then released."""
    try:
        return [_read(before, after) for before, after in itertools.pairwise(positions)]
    finally:
        _release()


def _read(before: str, after: str) -> WalReading:
    from django.db import connection

    cluster = _cluster_bytes(before, after)
    with connection.cursor() as cursor:
        cursor.execute("SELECT oid FROM pg_database WHERE datname = current_database()")
        oid = str(cursor.fetchone()[0]).encode()
        cursor.execute("SHOW data_directory")
        wal_dir = Path(cursor.fetchone()[0]) / "pg_wal"
    fallback = WalReading(cluster_bytes=cluster, source="cluster-wide")
    if not Path(PG_WALDUMP).exists():
        fallback.error = f"{PG_WALDUMP} not found (Debian package postgresql-15)"
        return fallback
    if not os.access(wal_dir, os.R_OK):
        fallback.error = f"{wal_dir} not readable"
        return fallback
    if cluster <= 0:
        return fallback
    reading = WalReading(cluster_bytes=cluster, source="pg_waldump")
    by_node: dict[bytes, int] = defaultdict(int)
    our_xids: set[bytes] = set()
    unrelated_by_xid: dict[bytes, int] = defaultdict(int)
    with subprocess.Popen(
        [PG_WALDUMP, "-p", str(wal_dir), "-s", before, "-e", after],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as dump:
        assert dump.stdout is not None
        for line in dump.stdout:
            record = RECORD.search(line)
            if record is None:
                continue
            size, xid = int(record.group(1)), record.group(2)
            relations = RELATION.findall(line)
            if not relations:
                unrelated_by_xid[xid] += size
            elif any(database == oid for _space, database, _node in relations):
                reading.ours_bytes += size
                node = next(node for _space, database, node in relations if database == oid)
                by_node[node] += size
                if xid != b"0":
                    our_xids.add(xid)
            else:
                reading.others_bytes += size
        errors = dump.stderr.read() if dump.stderr is not None else b""
    # pg_current_wal_lsn() may end inside a record still being written: pg_waldump then stops there with
    # "invalid record length" (or "missing contrecord"), everything before it read. Anything else (a segment
    # recycled, unreadable) leaves the cluster-wide figure.
    end_of_wal = b"invalid record length" in errors or b"contrecord" in errors
    if (dump.returncode != 0 or b"could not" in errors) and not end_of_wal:
        fallback.error = (
            errors.decode(errors="replace").strip().splitlines()[-1][:200] if errors else "failed"
        )
        return fallback
    transactions = sum(unrelated_by_xid.get(xid, 0) for xid in our_xids)
    reading.ours_bytes += transactions
    reading.no_relation_bytes = sum(unrelated_by_xid.values()) - transactions
    names = _relation_names([int(node) for node in by_node])
    for node, size in by_node.items():
        name = names.get(int(node), f"file node {node.decode()} (gone: a TEMP or dropped table)")
        reading.by_relation[name] = reading.by_relation.get(name, 0) + size
    if transactions:
        reading.by_relation["(commits of those transactions)"] = transactions
    return reading


def relation_sizes(tables: list[str]) -> dict[str, int]:
    """pg_total_relation_size (heap + TOAST + indexes) of each table, in bytes."""
    from django.db import connection

    with connection.cursor() as cursor:
        return {table: _size(cursor, table) for table in tables}


def _size(cursor: object, table: str) -> int:
    cursor.execute("SELECT pg_total_relation_size(%s::regclass)", [table])  # type: ignore[attr-defined]
    return int(cursor.fetchone()[0])  # type: ignore[attr-defined]
