"""The devices table's indexes: each one is maintained at every device a sync writes (a first sync of 100,000
devices spends a quarter of PostgreSQL's CPU in btree inserts), so none may be one that another already is."""

from __future__ import annotations

import pytest
from django.db import connection

from chromeos.models import ChromeOSDevice

pytestmark = pytest.mark.django_db


def btree_indexes(table: str) -> dict[str, tuple[list[str], str | None]]:
    """name → (key columns in order, partial predicate) of every plain-column btree index of ``table``."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, array_agg(a.attname ORDER BY k.n), pg_get_expr(i.indpred, i.indrelid)
            FROM pg_index i
            JOIN pg_class c ON c.oid = i.indexrelid
            JOIN pg_am am ON am.oid = c.relam AND am.amname = 'btree'
            CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
            WHERE i.indrelid = %s::regclass AND i.indexprs IS NULL
            GROUP BY c.relname, i.indpred, i.indrelid
            """,
            [table],
        )
        return {name: (columns, predicate) for name, columns, predicate in cursor.fetchall()}


def test_no_index_of_the_devices_table_is_the_leading_part_of_another():
    # The tenant foreign key's own index (tenant_id) was: every (tenant, …) index answers a look-up by tenant.
    # A partial index is not redundant with a full one (nor the reverse), nor a unique one with any other.
    indexes = btree_indexes(ChromeOSDevice._meta.db_table)
    assert len(indexes) > 10
    redundant = [
        (name, other)
        for name, (columns, predicate) in indexes.items()
        for other, (other_columns, other_predicate) in indexes.items()
        if name != other
        and predicate == other_predicate
        and other_columns[: len(columns)] == columns
        and not name.endswith("_pkey")
        and name != "chromeos_device_unique_id"
    ]
    assert redundant == []


def test_a_look_up_by_tenant_alone_still_reads_an_index():
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN DELETE FROM {ChromeOSDevice._meta.db_table} WHERE tenant_id = 1")  # noqa: S608
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index" in plan and "Seq Scan" not in plan, plan
