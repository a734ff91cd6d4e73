"""Benchmark: the device inventory at 100,000 devices per tenant — list, sort, search, filters, detail, CSV export.

Usage: ``.venv/bin/python benchmarks/devices.py [--devices 100000] [--other-devices 100000] [--repeat 5] [--keep-db]``

Works in its own database (``DATABASE_URL``, default ``mdm_bench_devices``: created and migrated if missing,
dropped at the end unless ``--keep-db``). It inserts N devices for the measured tenant and M for another tenant
(one ``INSERT … SELECT generate_series`` each, realistic values and a ~1.5 kB Google payload per device),
``VACUUM ANALYZE``, then drives the real pages in-process with Django's test ``Client`` (middleware, tenant
scoping, templates included) and prints, per scenario: median and worst server time over ``--repeat`` runs after
a warm-up, the number of SQL queries and their summed time. It then ``EXPLAIN ANALYZE``s the main queries and
times the streamed CSV export of the whole fleet (rows/s, and the process' peak memory growth).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm.settings")
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/mdm_bench_devices"
os.environ.setdefault("DATABASE_URL", DEFAULT_DB)

from bench_db import migrated_database  # noqa: E402

# The test client talks to the app over "testserver".
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,localhost")

MODELS = [
    ("HP Chromebook 14 G7", "5CD", "2031-06-01"),
    ("HP Chromebook x360 11 G4 EE", "5CG", "2030-06-01"),
    ("Lenovo 300e Chromebook Gen 3", "PF", "2026-06-01"),
    ("Lenovo ThinkPad C13 Yoga Chromebook", "PF", "2028-06-01"),
    ("Acer Chromebook Spin 511", "NXH", "2029-06-01"),
    ("Acer Chromebook 314", "NXA", "2031-06-01"),
    ("Dell Chromebook 3100", "D31", "2025-06-01"),
    ("Dell Latitude 5430 Chromebook", "D54", "2032-06-01"),
    ("ASUS Chromebook Flip CX5", "M", "2031-06-01"),
    ("Google Pixelbook Go", "G", "2029-06-01"),
    ("HP EliteBook 840 G5 (ChromeOS Flex)", "5CF", "2033-06-01"),
]
CITIES = ["Paris", "Lyon", "Marseille", "Bordeaux", "Lille", "Nantes", "Toulouse", "Strasbourg"]
DEPARTMENTS = ["Ventes et Marketing", "Équipe Réseau", "Comptabilité", "Élèves", "Enseignants", "Logistique"]


def org_unit_paths() -> list[str]:
    paths = ["/"]
    for city in CITIES:
        paths.append(f"/{city}")
        paths += [f"/{city}/{d}" for d in DEPARTMENTS]
    return paths


def insert_fleet(tenant_id: int, integration_id: int, count: int, seed: int) -> float:
    """One INSERT … SELECT over generate_series: N realistic devices in seconds."""
    from django.db import connection

    paths = org_unit_paths()
    models = [m[0] for m in MODELS]
    prefixes = [m[1] for m in MODELS]
    aues = [m[2] for m in MODELS]
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO chromeos_chromeosdevice (
                tenant_id, integration_id, device_id, serial_number, status, model, os_version, platform_version,
                org_unit_path, org_unit_id, annotated_user, annotated_location, annotated_asset_id, notes,
                mac_address, ethernet_mac_address, recent_user, boot_mode, last_sync, last_enrollment_time,
                auto_update_expiration, payload, etag, first_seen_at, last_seen_at, removed_at)
            SELECT %(tenant)s, %(integration)s, d.device_id, d.serial, d.status, d.model, d.os, '16002.51.0',
                d.path, 'ou' || d.path_i, d.annotated_user, d.location, d.asset, d.notes, d.mac, d.eth,
                d.recent_user, 'Verified', d.last_sync, d.last_sync - interval '200 days', d.aue,
                jsonb_build_object(
                    'kind', 'admin#directory#chromeosdevice', 'deviceId', d.device_id,
                    'serialNumber', d.serial, 'status', d.status, 'model', d.model, 'osVersion', d.os,
                    'orgUnitPath', d.path, 'macAddress', d.mac, 'annotatedUser', d.annotated_user,
                    'recentUsers', jsonb_build_array(jsonb_build_object('type', 'USER_TYPE_MANAGED',
                                                                        'email', d.recent_user)),
                    'cpuStatusReports', jsonb_build_array(jsonb_build_object(
                        'reportTime', d.last_sync, 'cpuUtilizationPercentageInfo', jsonb_build_array(12, 40),
                        'cpuTemperatureInfo', jsonb_build_array(jsonb_build_object('label', 'Core 0',
                                                                                   'temperature', 51)))),
                    'diskVolumeReports', jsonb_build_array(jsonb_build_object('volumeInfo', jsonb_build_array(
                        jsonb_build_object('volumeId', '/media/stateful', 'storageTotal', '64000000000',
                                           'storageFree', '21000000000')))),
                    'activeTimeRanges', (SELECT jsonb_agg(jsonb_build_object('date', current_date - k,
                                                                           'activeTime', 3600000 * k))
                                         FROM generate_series(1, 7) k),
                    'systemRamFreeReports', (SELECT jsonb_agg(jsonb_build_object(
                                                'reportTime', d.last_sync - k * interval '10 minutes',
                                                'systemRamFreeInfo', jsonb_build_array((4000000000 - k)::text)))
                                             FROM generate_series(1, 5) k),
                    'platformVersion', '16002.51.0 (Official Build) stable-channel dedede',
                    'firmwareVersion', 'Google_Dedede.13606.' || (d.g %% 600) || '.0',
                    'lastEnrollmentTime', d.last_sync - interval '200 days',
                    'firstEnrollmentTime', d.last_sync - interval '230 days',
                    'supportEndDate', d.aue, 'autoUpdateThrough', d.aue, 'autoUpdateExpiration', d.aue,
                    'chromeOsType', 'chromeOs', 'deviceLicenseType', 'enterprise', 'bootMode', 'Verified',
                    'osVersionCompliance', 'compliant', 'extendedSupportEligible', false,
                    'systemRamTotal', '8589934592', 'annotatedLocation', d.location, 'annotatedAssetId', d.asset,
                    'diskSpaceUsage', jsonb_build_object('capacityBytes', '64000000000',
                                                         'usedBytes', (20000000000 + d.g)::text),
                    'cpuInfo', jsonb_build_array(jsonb_build_object('model', 'Intel(R) Celeron(R) N4500',
                                                                    'architecture', 'x64')),
                    'tpmVersionInfo', jsonb_build_object('family', '322e3000', 'specLevel', '116'),
                    'lastKnownNetwork', jsonb_build_array(jsonb_build_object('ipAddress', '10.1.2.3'))),
                md5(d.device_id), now(), now(), NULL
            FROM (
                SELECT g,
                    substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) || '-a'
                        || substr(h, 18, 3) || '-' || substr(h, 21, 12) AS device_id,
                    (%(prefixes)s::text[])[1 + g %% %(nmodels)s] || upper(substr(h, 1, 7)) AS serial,
                    CASE WHEN g %% 100 < 90 THEN 'ACTIVE' WHEN g %% 100 < 94 THEN 'DISABLED'
                         WHEN g %% 100 < 98 THEN 'DEPROVISIONED' WHEN g %% 100 < 99 THEN 'INACTIVE'
                         ELSE 'PRE_PROVISIONED' END AS status,
                    (%(models)s::text[])[1 + g %% %(nmodels)s] AS model,
                    (ARRAY['124.0.6367.225', '126.0.6478.222', '128.0.6613.163'])[1 + (g / 7) %% 3] AS os,
                    (%(paths)s::text[])[1 + (g / 3) %% %(npaths)s] AS path,
                    1 + (g / 3) %% %(npaths)s AS path_i,
                    CASE WHEN g %% 10 < 7 THEN 'user' || (g %% 50000) || '@bench.example.com' ELSE '' END
                        AS annotated_user,
                    CASE WHEN g %% 2 = 0 THEN 'Bâtiment ' || (g %% 40) ELSE '' END AS location,
                    CASE WHEN g %% 10 < 6 THEN 'INV-2024-' || lpad((g %% 100000)::text, 5, '0') ELSE '' END
                        AS asset,
                    CASE WHEN g %% 7 = 0 THEN 'Prêt longue durée n° ' || g ELSE '' END AS notes,
                    substr(md5(h), 1, 12) AS mac,
                    CASE WHEN g %% 3 = 0 THEN substr(md5(h || 'e'), 1, 12) ELSE '' END AS eth,
                    'user' || ((g * 7) %% 50000) || '@bench.example.com' AS recent_user,
                    now() - ((g %% 120) || ' days')::interval - ((g %% 1440) || ' minutes')::interval AS last_sync,
                    (%(aues)s::text[])[1 + g %% %(nmodels)s]::date AS aue
                FROM (SELECT g, md5(%(seed)s || ':' || g) AS h FROM generate_series(1, %(count)s) g) s
            ) d
            """,
            {
                "tenant": tenant_id,
                "integration": integration_id,
                "prefixes": prefixes,
                "models": models,
                "nmodels": len(models),
                "paths": paths,
                "npaths": len(paths),
                "aues": aues,
                "seed": seed,
                "count": count,
            },
        )
    return time.perf_counter() - started


def setup(devices: int, other_devices: int) -> tuple[Any, Any]:
    from django.db import connection
    from django.utils import timezone

    from chromeos.models import GoogleIntegration, OrgUnit
    from mdm.models import Role, Tenant, User

    def tenant_with_integration(slug: str, customer: str) -> tuple[Any, Any]:
        tenant = Tenant.objects.create(slug=slug, name=slug.capitalize())
        integration = GoogleIntegration.unscoped.create(
            tenant=tenant,
            status="active",
            customer_id=customer,
            domain=f"{slug}.example.com",
            admin_email=f"admin@{slug}.example.com",
            authorized_at=timezone.now(),
            refresh_token="bench-not-a-token",  # noqa: S106 - never sent anywhere
        )
        OrgUnit.unscoped.bulk_create(
            [
                OrgUnit(tenant=tenant, integration=integration, org_unit_id=f"id:ou{i}", path=p, name=p)
                for i, p in enumerate(org_unit_paths(), start=1)
            ]
        )
        return tenant, integration

    tenant, integration = tenant_with_integration("bench", "C0bench01")
    other, other_integration = tenant_with_integration("voisin", "C0bench02")
    user = User.objects.create_user(
        username="admin@bench.example.com", password=None, tenant=tenant, role=Role.ADMIN
    )
    seconds = insert_fleet(tenant.pk, integration.pk, devices, 1)
    print(f"inserted {devices:,} devices for the measured tenant in {seconds:.1f} s")
    if other_devices:
        seconds = insert_fleet(other.pk, other_integration.pk, other_devices, 2)
        print(f"inserted {other_devices:,} devices for another tenant in {seconds:.1f} s")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE chromeos_chromeosdevice")
    print(f"VACUUM ANALYZE in {time.perf_counter() - started:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT avg(pg_column_size(payload)), avg(octet_length(payload::text)), "
            "pg_size_pretty(pg_relation_size('chromeos_chromeosdevice')), "
            "pg_size_pretty(pg_total_relation_size('chromeos_chromeosdevice')) FROM chromeos_chromeosdevice"
        )
        stored, text_size, heap, total = cursor.fetchone()
    print(
        f"payload: {text_size:.0f} bytes of JSON per device, {stored:.0f} stored in the row; "
        f"table heap {heap}, with indexes and TOAST {total}"
    )
    return tenant, user


def timed(client: Any, url: str, repeat: int) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url)  # warm-up: plans and caches, as a page hit a second time
    durations = []
    captured: list[dict[str, Any]] = []
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as context:
            started = time.perf_counter()
            response = client.get(url)
            if getattr(response, "streaming", False):
                for _chunk in response.streaming_content:
                    pass
            durations.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
        captured = context.captured_queries
    sql_ms = sum(float(q["time"]) for q in captured) * 1000
    return {
        "median": statistics.median(durations),
        "worst": max(durations),
        "queries": len(captured),
        "sql_ms": sql_ms,
        "captured": captured,
    }


def scenarios(device_pk: int) -> list[tuple[str, str]]:
    from django.urls import reverse

    from chromeos.selectors.devices import COLUMNS

    base = reverse("chromeos:device_list")

    def q(**params: Any) -> str:
        return base + ("?" + urlencode(params, doseq=True) if params else "")

    rows = [
        ("list page 1 (default sort: serial)", q()),
        ("list page 2", q(page=2)),
        ("list page 100", q(page=100)),
        ("list last page (deep OFFSET)", q(page=100_000)),
    ]
    for column in COLUMNS:
        rows.append((f"sort {column} desc", q(sort=column, dir="desc")))
    rows += [
        ("search serial part '5CD1A'", q(q="5CD1A")),
        ("search asset id 'INV-2024-0424'", q(q="INV-2024-0424")),
        ("search annotated user 'user4242@'", q(q="user4242@")),
        ("search model 'lenovo 300e'", q(q="lenovo 300e")),
        ("search no match 'zzzzqqq'", q(q="zzzzqqq")),
        ("search 2 letters 'ab'", q(q="ab")),
        ("filter status DISABLED", q(status="DISABLED")),
        ("filter OU /Lyon with children", q(org_unit="/Lyon")),
        ("filter OU /Lyon/Élèves exact", q(org_unit="/Lyon/Élèves", include_children="0")),
        ("filter OS version", q(os_version="124.0.6367.225")),
        ("filter model", q(model="Dell Chromebook 3100")),
        ("filter last sync > 90 days", q(sync_older_than_days=90)),
        ("filter AUE passed", q(aue="passed")),
        ("filter AUE within 6 months", q(aue="soon")),
        (
            "search + 3 filters + sort desc",
            q(q="user1", status="ACTIVE", org_unit="/Paris", aue="soon", sort="last_sync", dir="desc"),
        ),
        ("device detail page", reverse("chromeos:device_detail", kwargs={"pk": device_pk})),
    ]
    return rows


def explain(sql: str, settings: list[str]) -> list[str]:
    """EXPLAIN ANALYZE one captured query under the SET LOCALs the page ran it with."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        for statement in settings:
            cursor.execute(statement)
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        return [row[0] for row in cursor.fetchall()]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(devices: int, other_devices: int, repeat: int) -> None:
    from django.test import Client
    from django.urls import reverse

    from chromeos.models import ChromeOSDevice
    from mdm.tenancy import tenant_context

    tenant, user = setup(devices, other_devices)
    client = Client()
    client.force_login(user)
    with tenant_context(tenant):
        device_pk = ChromeOSDevice.objects.order_by("id").values_list("pk", flat=True)[devices // 2]

    print()
    print(f"Device list at {devices:,} devices for the tenant (+{other_devices:,} for another tenant),")
    print(f"server time in-process (Django test Client), median and worst of {repeat} after a warm-up:")
    print()
    header = f"| {'scenario':<42} | {'median ms':>9} | {'worst ms':>8} | {'queries':>7} | {'SQL ms':>7} |"
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    results = {}
    for label, url in scenarios(device_pk):
        r = timed(client, url, repeat)
        results[label] = r
        print(
            f"| {label:<42} | {r['median']:>9.1f} | {r['worst']:>8.1f} | {r['queries']:>7} | {r['sql_ms']:>7.1f} |"
        )

    # The CSV export of the whole fleet, streamed: time, throughput, and memory growth of this process.
    rss_before = peak_rss_mb()
    started = time.perf_counter()
    response = client.get(reverse("chromeos:device_export"))
    size = 0
    first_byte = None
    for chunk in response.streaming_content:
        if first_byte is None:
            first_byte = time.perf_counter() - started
        size += len(chunk)
    seconds = time.perf_counter() - started
    print()
    print(
        f"CSV export, whole fleet ({devices:,} rows, {size / 1e6:.1f} MB): {seconds:.2f} s, "
        f"{devices / seconds:,.0f} rows/s, first byte after {1000 * (first_byte or 0):.0f} ms, "
        f"peak RSS growth {peak_rss_mb() - rss_before:.0f} MB"
    )
    r = timed(client, reverse("chromeos:device_export") + "?" + urlencode({"org_unit": "/Lyon"}), 1)
    print(f"CSV export, OU /Lyon with children: {r['median']:.0f} ms, {r['queries']} queries")

    # "Select all N matching" then drafting an action: the INSERT … SELECT of every item.
    from chromeos.selectors.devices import DeviceFilter
    from chromeos.services.devices import device_action_prepare

    with tenant_context(tenant):
        started = time.perf_counter()
        job = device_action_prepare(actor=user, action="cmd_reboot", flt=DeviceFilter())
        print(
            f"Drafting an action on the whole filter ({job.total:,} devices fixed): {time.perf_counter() - started:.2f} s"
        )
        started = time.perf_counter()
        confirm = client.get(reverse("chromeos:device_action_confirm", kwargs={"pk": job.pk}))
        assert confirm.status_code == 200
        print(f"Its confirmation page (first 200 listed): {1000 * (time.perf_counter() - started):.0f} ms")

    print()
    for label in (
        "list page 1 (default sort: serial)",
        "sort model desc",
        "search annotated user 'user4242@'",
        "search model 'lenovo 300e'",
        "filter OU /Lyon with children",
        "filter model",
        "search + 3 filters + sort desc",
    ):
        print(f"EXPLAIN ANALYZE — {label}")
        settings: list[str] = []
        for query in results[label]["captured"]:
            sql = query["sql"]
            if sql.startswith("SET LOCAL"):
                settings.append(sql)
            if "chromeos_chromeosdevice" not in sql or "RECURSIVE" in sql:
                continue
            plan = explain(sql, list(settings))  # the SET LOCALs that preceded it, in order
            kind = "count" if "COUNT(*)" in sql else "page"
            print(f"  [{kind}] " + sql[:160].replace("\n", " ") + ("…" if len(sql) > 160 else ""))
            for line in plan:
                if any(
                    word in line
                    for word in ("Scan", "Limit", "Sort", "Aggregate", "Execution Time", "Bitmap")
                ):
                    print("    " + line.strip()[:150])
        print()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--other-devices", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    # A fresh fleet each run: figures do not depend on a previous run's leftovers.
    with migrated_database(keep=args.keep_db, fresh=True):
        run(args.devices, args.other_devices, args.repeat)


if __name__ == "__main__":
    main()
