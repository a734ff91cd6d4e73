"""The database a benchmark works in: its own (``DATABASE_URL``), created and migrated before the run and
dropped after it unless kept, so figures never depend on, nor disturb, the development database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse


def _admin_url(url: str) -> str:
    return urlparse(url)._replace(path="/postgres").geturl()


def _name(url: str) -> str:
    return urlparse(url).path.lstrip("/")


def ensure_database(url: str) -> None:
    import psycopg

    with psycopg.connect(_admin_url(url), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [_name(url)]).fetchone():
            conn.execute(f'CREATE DATABASE "{_name(url)}"')


def drop_database(url: str) -> None:
    import psycopg

    with psycopg.connect(_admin_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{_name(url)}" WITH (FORCE)')


@contextmanager
def migrated_database(*, keep: bool, fresh: bool = False) -> Iterator[str]:
    """Set Django up on ``DATABASE_URL`` (created if missing, emptied first when ``fresh``), migrated."""
    url = os.environ["DATABASE_URL"]
    if fresh:
        drop_database(url)
    ensure_database(url)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    try:
        yield url
    finally:
        from django.db import connections

        connections.close_all()
        if not keep:
            drop_database(url)
