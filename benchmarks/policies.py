"""Benchmark: the derived policy inventory at scale (per-device section, reports, the assignments page).

Usage: ``.venv/bin/python benchmarks/policies.py [--devices 100000] [--org-units 2000] [--keep-db]``

Works in its own database (``DATABASE_URL``, default ``mdm_bench_policies``: created and migrated if missing,
dropped at the end unless ``--keep-db``). It builds one tenant with N devices spread over a three-level OU tree
(``/Region-r/Site-s/Team-t``), all OUs LDAP-backed, and assignments at every level: a Blueprint on the root's
children, another on every site, apps on some teams. Google is not called: the inventory is read from the
database only, which is what this measures. It prints, for each read, its median and worst time and its query
count:

* the device page's "Configurations et applis" section (``device_policy_inventory``), over 300 devices;
* a report per Blueprint, page 1 (count, page of 50 devices, their entries) — the widest Blueprint reaches
  every device;
* the device counts of one assignment (devices reached, synced since it was applied);
* the assignments page (every OU with its support and its assignments).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm.settings")
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/mdm_bench_policies"
os.environ.setdefault("DATABASE_URL", DEFAULT_DB)

from bench_db import migrated_database  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--org-units", type=int, default=2000)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    with migrated_database(keep=args.keep_db):
        run(args.devices, args.org_units)


def measure(label: str, runs: int, call: Callable[[int], Any]) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times, queries = [], []
    for index in range(runs):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            call(index)
            times.append((time.perf_counter() - started) * 1000)
        queries.append(len(captured.captured_queries))
    print(
        f"{label:<58} median {statistics.median(times):7.1f} ms   worst {max(times):7.1f} ms   "
        f"queries {min(queries)}-{max(queries)}"
    )


def run(device_count: int, org_unit_count: int) -> None:
    import uuid
    from datetime import timedelta

    from django.utils import timezone

    from chromeos.models import AssignmentState, ChromeOSDevice, GoogleIntegration, OrgUnit, PolicyAssignment
    from chromeos.selectors import policies as selectors
    from ldap_sync.models import LdapDirectory, LdapOrgUnit
    from mdm.models import App, AppKind, Blueprint, Tenant
    from mdm.tenancy import tenant_context

    Tenant.objects.filter(slug="bench-policies").delete()
    tenant = Tenant.objects.create(slug="bench-policies", name="Bench policies")
    integration = GoogleIntegration.unscoped.create(
        tenant=tenant,
        status="active",
        customer_id="Cbenchpol",
        domain="bench-policies.example.com",
        admin_email="admin@bench-policies.example.com",
        authorized_at=timezone.now(),
        refresh_token="1//bench-not-a-real-token",  # noqa: S106 - never sent anywhere
    )
    directory = LdapDirectory.unscoped.create(tenant=tenant, uri="ldap://127.0.0.1:1", base_dn="dc=bench")

    # A tree of regions → sites → teams, org_unit_count OUs in all (plus the root).
    regions, sites_per_region = 10, 10
    teams_per_site = max(
        1, (org_unit_count - regions - regions * sites_per_region) // (regions * sites_per_region)
    )
    paths = ["/"]
    for r in range(regions):
        paths.append(f"/Region-{r}")
        for s in range(sites_per_region):
            paths.append(f"/Region-{r}/Site-{s}")
            paths.extend(f"/Region-{r}/Site-{s}/Team-{t}" for t in range(teams_per_site))
    started = time.perf_counter()
    ldap_units = LdapOrgUnit.unscoped.bulk_create(
        LdapOrgUnit(tenant=tenant, directory=directory, entry_uuid=uuid.uuid4(), dn=f"ou={p}", name=p, path=p)
        for p in paths[1:]
    )
    ldap_by_path = {u.path: u for u in ldap_units}
    units = OrgUnit.unscoped.bulk_create(
        OrgUnit(
            tenant=tenant,
            integration=integration,
            org_unit_id=f"03ou{i:011d}",
            path=p,
            name=p.rsplit("/", 1)[-1] or "/",
            parent_org_unit_id="" if p == "/" else "03ou00000000000",
            ldap_org_unit=ldap_by_path.get(p),
        )
        for i, p in enumerate(paths)
    )
    by_path = {u.path: u for u in units}
    leaves = [p for p in paths if p.count("/") == 3]
    now = timezone.now()
    batch = 5000
    for start in range(0, device_count, batch):
        ChromeOSDevice.unscoped.bulk_create(
            ChromeOSDevice(
                tenant=tenant,
                integration=integration,
                device_id=f"dev-{i:07d}",
                serial_number=f"5CD{i:07d}",
                status="ACTIVE",
                org_unit_path=leaves[i % len(leaves)],
                last_sync=now if i % 3 else None,
                payload={"deviceId": f"dev-{i:07d}"},
            )
            for i in range(start, min(device_count, start + batch))
        )
    wide = Blueprint.unscoped.create(tenant=tenant, name="Régions", settings={"guest_mode": False})
    narrow = Blueprint.unscoped.create(
        tenant=tenant, name="Sites", settings={"guest_mode": True, "screen_lock": True}
    )
    app = App.unscoped.create(
        tenant=tenant, name="Notes", kind=AppKind.ANDROID, identifier="com.example.notes"
    )
    applied = {"state": AssignmentState.APPLIED, "applied_at": now - timedelta(hours=1)}
    assignments = [
        PolicyAssignment(
            tenant=tenant, integration=integration, org_unit=by_path[p], blueprint=wide, **applied
        )
        for p in paths
        if p.count("/") == 1 and p != "/"
    ]
    assignments += [
        PolicyAssignment(
            tenant=tenant, integration=integration, org_unit=by_path[p], blueprint=narrow, **applied
        )
        for p in paths
        if p.count("/") == 2
    ]
    assignments += [
        PolicyAssignment(
            tenant=tenant,
            integration=integration,
            org_unit=by_path[p],
            app=app,
            app_context="users",
            install_type="force_install",
            **applied,
        )
        for p in leaves[::7]
    ]
    PolicyAssignment.unscoped.bulk_create(assignments)
    print(
        f"Built {device_count:,} devices, {len(paths):,} OUs, {len(assignments):,} assignments "
        f"in {time.perf_counter() - started:.1f} s"
    )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    with tenant_context(tenant):
        sample = list(ChromeOSDevice.objects.order_by("?")[:300])
        measure(
            "device page: Configurations et applis (300 devices)",
            300,
            lambda i: selectors.device_policy_inventory(sample[i]),
        )

        def report(blueprint: Blueprint) -> Callable[[int], Any]:
            def call(_i: int) -> None:
                rows = selectors.subject_assignments(blueprint=blueprint)
                devices = selectors.subject_devices(rows)
                devices.count()
                page = list(devices[:50])
                selectors.device_report_rows(page, rows)

            return call

        measure(f"report per Blueprint, page 1 (reaches {device_count:,} devices)", 10, report(wide))
        measure("report per Blueprint, page 1 (one site per assignment)", 10, report(narrow))
        one_region = PolicyAssignment.objects.filter(blueprint=wide).first()
        assert one_region is not None
        measure(
            "device counts of one assignment (a region)",
            10,
            lambda i: selectors.assignment_device_counts(one_region),
        )
        measure(
            f"assignments page data ({len(paths):,} OUs)",
            5,
            lambda i: selectors.org_unit_rows(integration),
        )


if __name__ == "__main__":
    main()
