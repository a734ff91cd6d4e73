"""Benchmark: what the devices table's indexes cost a first sync — 100,000 rows inserted with each index set.

Usage: ``.venv/bin/python benchmarks/device_indexes.py [--devices 100000] [--repeat 2] [--keep-db]``

A tenant's first sync ends with one ``INSERT … SELECT`` of all its devices into ``chromeos_chromeosdevice``, whose
indexes serve the device list (issue 7: a sort index per column, a trigram GIN for the search box, the OU prefix
index). This script builds N realistic devices (``benchmarks/devices.py``'s generator: the search text has the
same length and trigram count as real ones), keeps them aside, empties the table, then times the same insert with
each index set — every variant inside a transaction that is rolled back, so the schema is never changed — and the
alternative a per-tenant table would allow: insert without the list's indexes, then build them in bulk.

Each line: wall time, and the WAL the insert wrote (this database is the only writer while it runs).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mdm_bench_indexes")

from bench_db import migrated_database  # noqa: E402

TABLE = "chromeos_chromeosdevice"


def index_groups(cursor: Any) -> dict[str, list[tuple[str, str]]]:
    """The table's indexes as (name, definition), grouped: the sync's own, the list's sorts, search and others."""
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s ORDER BY indexname", [TABLE]
    )
    groups: dict[str, list[tuple[str, str]]] = {"sync": [], "sort": [], "search": [], "list other": []}
    for name, definition in cursor.fetchall():
        if name == "cros_dev_search_trgm":
            groups["search"].append((name, definition))
        elif name.startswith("cros_dev_sort_"):
            groups["sort"].append((name, definition))
        elif name.startswith("cros_dev_"):
            groups["list other"].append((name, definition))
        else:  # primary key, (tenant, device_id), foreign keys, serial
            groups["sync"].append((name, definition))
    return groups


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each variant; the fastest is kept")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    with migrated_database(keep=args.keep_db, fresh=True):
        import devices as fleet
        from django.db import connection

        fleet.setup(args.devices, 0)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute "
                "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''",
                [TABLE],
            )
            columns = cursor.fetchone()[0]
            cursor.execute(f"CREATE TABLE bench_source AS SELECT {columns} FROM {TABLE}")  # noqa: S608
            cursor.execute(f"TRUNCATE {TABLE} CASCADE")
            cursor.execute(f"VACUUM ANALYZE {TABLE}")
            cursor.execute("VACUUM ANALYZE bench_source")
            cursor.execute(
                "SELECT avg(length(search_text)), avg(array_length(show_trgm(search_text), 1)) "
                "FROM (SELECT lower(concat_ws(E'\\n', serial_number, annotated_asset_id, annotated_user, "
                "mac_address, ethernet_mac_address, model, recent_user)) AS search_text FROM bench_source) s"
            )
            length, trigrams = cursor.fetchone()
            groups = index_groups(cursor)
        print(
            f"\n{args.devices:,} devices; search text {length:.0f} characters, {trigrams:.0f} trigrams per device"
        )
        for group, indexes in groups.items():
            print(f"  {group:<11} {len(indexes):>2}: {', '.join(name for name, _d in indexes)}")

        list_indexes = groups["sort"] + groups["search"] + groups["list other"]
        variants = [
            ("all indexes (as migrated)", [], False),
            ("all but the trigram GIN", groups["search"], False),
            ("all but the 12 sort indexes", groups["sort"], False),
            ("the sync's own only", list_indexes, False),
            ("the sync's own, then the list's built in bulk", list_indexes, True),
        ]
        print(
            f"\n{'indexes on the devices table':<48} | {'insert s':>8} | {'build s':>7} | {'total s':>7} | {'WAL MB':>7}"
        )
        print("-" * 90)
        for label, dropped, rebuild in variants:
            runs = []
            for _ in range(args.repeat):
                with connection.cursor() as cursor:
                    cursor.execute("CHECKPOINT")
                    cursor.execute("BEGIN")
                    # Django's foreign keys are deferred to COMMIT, which never comes here: check them per row,
                    # as the sync's COMMIT would (and CREATE INDEX refuses pending deferred checks).
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                    try:
                        for name, _definition in dropped:
                            cursor.execute(f"DROP INDEX {name}")
                        cursor.execute("SELECT pg_current_wal_lsn()")
                        before = cursor.fetchone()[0]
                        started = time.perf_counter()
                        cursor.execute(f"INSERT INTO {TABLE} ({columns}) SELECT {columns} FROM bench_source")  # noqa: S608
                        inserted = time.perf_counter()
                        if rebuild:
                            for _name, definition in dropped:
                                cursor.execute(definition)
                        built = time.perf_counter()
                        cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", [before])
                        wal = cursor.fetchone()[0]
                    finally:
                        cursor.execute("ROLLBACK")
                runs.append((built - started, inserted - started, built - inserted, float(wal) / 1e6))
            total, insert, build, wal = min(runs)
            print(f"{label:<48} | {insert:>8.2f} | {build:>7.2f} | {total:>7.2f} | {wal:>7.0f}")


if __name__ == "__main__":
    main()
