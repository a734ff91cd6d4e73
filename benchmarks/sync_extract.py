"""Benchmark: where to extract the device columns the console filters on — in Python while streaming, or in SQL.

Usage: ``.venv/bin/python benchmarks/sync_extract.py [--devices 10000]``

Both variants start from the same parsed Google pages (the emulator's generator, FULL projection) and end with
the same staging table filled (columns + payload), in a scratch TEMP table of ``DATABASE_URL`` (default
``mdm_bench_sync``, created if missing):

* ``python``: what the sync does — ``device_row()`` per device (tolerant extraction: bad dates, wrong types,
  NUL characters), then ``COPY`` of the finished rows;
* ``sql``: ``COPY`` of (id, etag, payload) only, then one ``INSERT ... SELECT`` extracting the columns with
  ``->>`` and guarded casts (regular expressions instead of exceptions: PostgreSQL 15 has no
  ``pg_input_is_valid``).

Prints the wall time of each (best of three) and the split between Python and PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mdm_bench_sync")

ISO = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
SQL_EXTRACT = f"""
INSERT INTO bench_stage_sql_final
SELECT seq, device_id, etag, true,
  left(CASE WHEN jsonb_typeof(p->'serialNumber') = 'string' THEN p->>'serialNumber' ELSE '' END, 128),
  left(CASE WHEN jsonb_typeof(p->'status') = 'string' THEN p->>'status' ELSE '' END, 32),
  left(CASE WHEN jsonb_typeof(p->'model') = 'string' THEN p->>'model' ELSE '' END, 255),
  left(CASE WHEN jsonb_typeof(p->'osVersion') = 'string' THEN p->>'osVersion' ELSE '' END, 64),
  left(CASE WHEN jsonb_typeof(p->'platformVersion') = 'string' THEN p->>'platformVersion' ELSE '' END, 64),
  left(CASE WHEN jsonb_typeof(p->'orgUnitPath') = 'string' THEN p->>'orgUnitPath' ELSE '' END, 1024),
  left(CASE WHEN jsonb_typeof(p->'orgUnitId') = 'string' THEN p->>'orgUnitId' ELSE '' END, 64),
  left(CASE WHEN jsonb_typeof(p->'annotatedUser') = 'string' THEN p->>'annotatedUser' ELSE '' END, 255),
  left(CASE WHEN jsonb_typeof(p->'annotatedLocation') = 'string' THEN p->>'annotatedLocation' ELSE '' END, 255),
  left(CASE WHEN jsonb_typeof(p->'annotatedAssetId') = 'string' THEN p->>'annotatedAssetId' ELSE '' END, 255),
  CASE WHEN jsonb_typeof(p->'notes') = 'string' THEN p->>'notes' ELSE '' END,
  left(CASE WHEN jsonb_typeof(p->'macAddress') = 'string' THEN p->>'macAddress' ELSE '' END, 32),
  left(CASE WHEN jsonb_typeof(p->'ethernetMacAddress') = 'string' THEN p->>'ethernetMacAddress' ELSE '' END, 32),
  left(CASE WHEN jsonb_typeof(p->'bootMode') = 'string' THEN p->>'bootMode' ELSE '' END, 32),
  left(coalesce((SELECT u->>'email' FROM jsonb_array_elements(
      CASE WHEN jsonb_typeof(p->'recentUsers') = 'array' THEN p->'recentUsers' ELSE '[]' END) u
      WHERE jsonb_typeof(u->'email') = 'string' LIMIT 1), ''), 255),
  CASE WHEN p->>'lastSync' ~ '{ISO}' THEN (p->>'lastSync')::timestamptz END,
  CASE WHEN p->>'lastEnrollmentTime' ~ '{ISO}' THEN (p->>'lastEnrollmentTime')::timestamptz END,
  CASE WHEN p->>'autoUpdateExpiration' ~ '^\\d{{1,15}}$'
       THEN to_timestamp((p->>'autoUpdateExpiration')::bigint / 1000.0)::date END,
  p
FROM (SELECT seq, device_id, etag, payload AS p FROM bench_stage_sql_raw) raw
"""  # noqa: S608 - a constant, no input


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    args = parser.parse_args()

    from bench_db import ensure_database

    ensure_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.db import connection

    from chromeos.services.sync.staging import DATA_COLUMNS, STAGE_COLUMNS, _payload_json, device_row
    from google_emulator.generator import generate_domain

    devices: list[dict[str, Any]] = [
        json.loads(r.json("FULL")) for r in generate_domain(devices=args.devices).devices
    ]
    columns = ", ".join(
        f"{c} {'timestamptz' if c in ('last_sync', 'last_enrollment_time') else 'date' if c == 'auto_update_expiration' else 'text'}"
        for c in DATA_COLUMNS
    )
    cursor = connection.cursor().cursor
    table_sql = f"(seq integer, device_id text, etag text, fresh boolean, {columns}, payload jsonb)"
    results: dict[str, list[tuple[float, float]]] = {"python": [], "sql": []}
    for _ in range(3):
        # Python: extract while streaming, COPY finished rows.
        cursor.execute(f"DROP TABLE IF EXISTS bench_stage_py; CREATE TEMP TABLE bench_stage_py {table_sql}")
        started = time.perf_counter()
        rows = [device_row(i, d["deviceId"], d["etag"], d) for i, d in enumerate(devices)]
        python_done = time.perf_counter()
        with cursor.copy(f"COPY bench_stage_py ({', '.join(STAGE_COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        results["python"].append((time.perf_counter() - started, python_done - started))
        # SQL: COPY the payload only, extract in one INSERT ... SELECT.
        cursor.execute(
            "DROP TABLE IF EXISTS bench_stage_sql_raw, bench_stage_sql_final;"
            "CREATE TEMP TABLE bench_stage_sql_raw (seq integer, device_id text, etag text, payload jsonb);"
            f"CREATE TEMP TABLE bench_stage_sql_final {table_sql}"
        )
        started = time.perf_counter()
        raw = [(i, d["deviceId"], d["etag"], _payload_json(d)) for i, d in enumerate(devices)]
        python_done = time.perf_counter()
        with cursor.copy("COPY bench_stage_sql_raw FROM STDIN") as copy:
            for row in raw:
                copy.write_row(row)
        cursor.execute(SQL_EXTRACT)
        results["sql"].append((time.perf_counter() - started, python_done - started))
    cursor.execute("SELECT count(*) FROM bench_stage_py")
    py_count = cursor.fetchone()[0]
    cursor.execute("SELECT count(*) FROM bench_stage_sql_final")
    assert cursor.fetchone()[0] == py_count == args.devices
    print(f"{args.devices:,} devices, best of 3")
    print(f"{'extraction':<10} | {'total s':>8} | {'python s':>8} | {'postgres s':>10}")
    for name, runs in results.items():
        total, python_part = min(runs)
        print(f"{name:<10} | {total:>8.2f} | {python_part:>8.2f} | {total - python_part:>10.2f}")


if __name__ == "__main__":
    main()
