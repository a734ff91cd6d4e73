"""Benchmark: the Samba AD fixture's start and an LDAP sync of the AD directory (Active Directory kind).

Usage: ``.venv/bin/python benchmarks/ldap_ad.py [--cold] [--page-size 250] [--keep-db]`` (as root: the fixture
runs Samba in its own network namespace).

Works in its own database (``DATABASE_URL``, default ``mdm_bench_ldap_ad``: created and migrated if missing,
dropped at the end unless ``--keep-db``). Prints:

* the fixture's start: provisioning and loading the directory (``--cold``: with an empty snapshot cache), or
  restoring the cached snapshot, up to LDAPS answering; Samba's resident memory;
* the first sync (everything added) and a second one (nothing changes): wall time, and the peak of Python
  memory (tracemalloc) during each run; the counts each run reports.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm.settings")
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/mdm_bench_ldap_ad"
os.environ.setdefault("DATABASE_URL", DEFAULT_DB)
# The fixture's relay listens on a free port of the loopback: the outbound guard must let the sync reach it.
os.environ.setdefault("MDM_OUTBOUND_ALLOWED_NETWORKS", "127.0.0.1/32")
os.environ.setdefault("MDM_OUTBOUND_ALLOWED_PORTS", "1024-65535")

from bench_db import migrated_database  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="build the domain (no cached snapshot)")
    parser.add_argument("--page-size", type=int, default=250)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    from ldap_sync import ad_directory
    from ldap_sync.samba_ad import SambaAdServer

    directory = ad_directory.demo()
    cache = Path(tempfile.mkdtemp(prefix="mdm-bench-ad-cache-")) if args.cold else None
    server = SambaAdServer(cache_dir=cache)
    started = time.monotonic()
    server.start(seed=directory)
    try:
        print(
            f"fixture start: {time.monotonic() - started:.1f} s "
            f"({'snapshot restored' if server.snapshot_restored else 'provisioned and loaded'}; "
            f"{len(directory.all_ous())} OUs, {len(directory.all_users())} users)"
        )
        rss = subprocess.run(
            ["ps", "-o", "rss=", "-p", str(server.pids[0])],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        print(f"samba resident memory: {int(rss or 0) / 1024:.0f} MB")
        with migrated_database(keep=args.keep_db):
            run(server, directory, args.page_size)
    finally:
        server.stop()
        if cache is not None:
            import shutil

            shutil.rmtree(cache, ignore_errors=True)


def run(server: object, directory: object, page_size: int) -> None:
    from ldap_sync import services
    from ldap_sync.kinds import DirectoryKind, defaults
    from ldap_sync.models import LdapDirectory, LdapSyncRun, SyncTrigger
    from mdm.models import Tenant

    Tenant.objects.filter(slug="bench-ad").delete()
    tenant = Tenant.objects.create(slug="bench-ad", name="Bench AD")
    ldap_directory = LdapDirectory.unscoped.create(
        tenant=tenant,
        kind=DirectoryKind.ACTIVE_DIRECTORY,
        **defaults(DirectoryKind.ACTIVE_DIRECTORY),
        uri=server.ldaps_uri,  # type: ignore[attr-defined]
        ca_certificate=server.ca_cert_pem,  # type: ignore[attr-defined]
        bind_dn=directory.service_bind_dn,  # type: ignore[attr-defined]
        bind_password=directory.service_password,  # type: ignore[attr-defined]
        base_dn=directory.base_dn,  # type: ignore[attr-defined]
        operation_timeout=60,
    )
    original = LdapDirectory.connection_settings
    LdapDirectory.connection_settings = lambda self, **o: original(self, **{"page_size": page_size, **o})  # type: ignore[method-assign]
    for label in ("first sync", "second sync"):
        sync_run = LdapSyncRun.unscoped.create(
            tenant=tenant, directory=ldap_directory, trigger=SyncTrigger.CLI
        )
        tracemalloc.start()
        started = time.monotonic()
        services.ldap_sync_run(run=sync_run)
        elapsed = time.monotonic() - started
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        sync_run.refresh_from_db()
        print(
            f"{label}: {elapsed:.1f} s, peak Python memory {peak / 1024 / 1024:.0f} MB, status {sync_run.status}; "
            f"OUs +{sync_run.ous_added} ~{sync_run.ous_changed} -{sync_run.ous_removed} of {sync_run.ous_seen}, "
            f"users +{sync_run.users_added} ~{sync_run.users_changed} -{sync_run.users_removed} "
            f"of {sync_run.users_seen} (page size {page_size}) {sync_run.error_code} {sync_run.error}"
        )
    tenant.delete()


if __name__ == "__main__":
    main()
