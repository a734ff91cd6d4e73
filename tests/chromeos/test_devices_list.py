"""The device inventory's pages on PostgreSQL: list (search, filters, sort, pagination, columns), CSV export,
detail, pinned query counts and who sees which controls."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from chromeos.models import DeviceChange, DeviceCommand, OrgUnit
from chromeos.selectors import devices as selectors
from mdm.models import AuditEvent
from mdm.tenancy import tenant_context
from tests.factories import ChromeOSDeviceFactory, GoogleIntegrationFactory

pytestmark = pytest.mark.django_db

LIST = reverse("chromeos:device_list")


def serials(response) -> list[str]:
    return [d.serial_number for d in response.context["rows"]]


@pytest.fixture
def fleet(tenant, other_tenant):
    """A small fleet with one distinctive value per searchable field, and a device of another tenant."""
    today = timezone.localdate()
    now = timezone.now()
    make = ChromeOSDeviceFactory
    devices = {
        "a": make(
            tenant=tenant,
            serial_number="5CD1000001",
            annotated_asset_id="INV-2024-00042",
            annotated_user="zoe.martin@acme.test",
            mac_address="a1b2c3d4e5f6",
            model="Lenovo 300e Chromebook Gen 3",
            recent_user="leo.dubois@acme.test",
            org_unit_path="/Paris",
            os_version="124.0.6367.225",
            last_sync=now - timedelta(days=40),
            auto_update_expiration=today - timedelta(days=10),
            annotated_location="CDI",
        ),
        "b": make(
            tenant=tenant,
            serial_number="5CD1000002",
            status="DISABLED",
            org_unit_path="/Paris/Ventes et Marketing",
            last_sync=now - timedelta(days=2),
            auto_update_expiration=today + timedelta(days=30),
            annotated_location="Accueil",
        ),
        "c": make(
            tenant=tenant,
            serial_number="NXH0000003",
            status="DEPROVISIONED",
            org_unit_path="/Lyon",
            ethernet_mac_address="0a0b0c0d0e0f",
            last_sync=now - timedelta(hours=1),
            auto_update_expiration=today + timedelta(days=2000),
        ),
        "removed": make(tenant=tenant, serial_number="5CD1000004", removed_at=now, org_unit_path="/Paris"),
        "theirs": make(tenant=other_tenant, serial_number="5CD9999999", org_unit_path="/Paris"),
    }
    return devices


def test_list_shows_own_tenant_devices_without_removed_ones(admin_client_, fleet):
    response = admin_client_.get(LIST)
    assert response.status_code == 200
    assert serials(response) == ["5CD1000001", "5CD1000002", "NXH0000003"]
    assert response.context["total"] == 3
    assert "5CD9999999" not in response.content.decode()


@pytest.mark.parametrize(
    "query,expected",
    [
        ("1000001", ["5CD1000001"]),  # part of a serial
        ("inv-2024-00042", ["5CD1000001"]),  # asset id, any case
        ("ZOE.MARTIN", ["5CD1000001"]),  # annotated user
        ("A1:B2:C3:D4:E5:F6", ["5CD1000001"]),  # Wi-Fi MAC typed with separators
        ("0a0b0c", ["NXH0000003"]),  # Ethernet MAC
        ("lenovo 300e", ["5CD1000001"]),  # model
        ("leo.dubois", ["5CD1000001"]),  # recent user
        ("nothing-like-this", []),
    ],
)
def test_search_matches_every_searchable_field(admin_client_, fleet, query, expected):
    assert serials(admin_client_.get(LIST, {"q": query})) == expected


@pytest.mark.parametrize(
    "params,expected",
    [
        ({"status": "DISABLED"}, ["5CD1000002"]),
        ({"org_unit": "/Paris"}, ["5CD1000001", "5CD1000002"]),
        ({"org_unit": "/Paris", "include_children": "0"}, ["5CD1000001"]),
        ({"org_unit": "Paris/Ventes et Marketing"}, ["5CD1000002"]),
        ({"org_unit": "/Par"}, []),  # a prefix of a name is not the OU
        ({"os_version": "124.0.6367.225"}, ["5CD1000001"]),
        ({"model": "Lenovo 300e Chromebook Gen 3"}, ["5CD1000001"]),
        ({"sync_older_than_days": "30"}, ["5CD1000001"]),
        ({"sync_older_than_days": "1"}, ["5CD1000001", "5CD1000002"]),
        ({"aue": "passed"}, ["5CD1000001"]),
        ({"aue": "soon"}, ["5CD1000002"]),
        ({"removed": "only"}, ["5CD1000004"]),
        ({"removed": "all"}, ["5CD1000001", "5CD1000002", "5CD1000004", "NXH0000003"]),
        ({"status": "ACTIVE", "org_unit": "/Paris"}, ["5CD1000001"]),
    ],
)
def test_filters(admin_client_, fleet, params, expected):
    assert serials(admin_client_.get(LIST, params)) == expected


def test_supported_org_unit_filter(admin_client_, fleet, tenant):
    from tests.ldap.factories import LdapOrgUnitFactory

    integration = fleet["a"].integration
    ldap_ou = LdapOrgUnitFactory(tenant=tenant, name="Paris")
    OrgUnit.unscoped.create(
        tenant=tenant,
        integration=integration,
        org_unit_id="id:1",
        path="/Paris",
        name="Paris",
        ldap_org_unit=ldap_ou,
    )
    OrgUnit.unscoped.create(
        tenant=tenant, integration=integration, org_unit_id="id:2", path="/Lyon", name="Lyon"
    )
    assert serials(admin_client_.get(LIST, {"support": "supported"})) == ["5CD1000001"]
    assert serials(admin_client_.get(LIST, {"support": "unsupported"})) == ["5CD1000002", "NXH0000003"]


@pytest.mark.parametrize("column", list(selectors.COLUMNS))
def test_every_column_sorts_both_ways(admin_client_, fleet, column):
    field = selectors.COLUMNS[column][0]
    up = admin_client_.get(LIST, {"sort": column, "dir": "asc"}).context["rows"]
    down = admin_client_.get(LIST, {"sort": column, "dir": "desc"}).context["rows"]
    assert [d.pk for d in down] == [d.pk for d in reversed(up)]
    values = [getattr(d, field) for d in up]
    present = [v for v in values if v is not None]
    assert present == sorted(present)


def test_pagination_is_server_side_and_stable(admin_client_, tenant, admin_user):
    for n in range(120):
        ChromeOSDeviceFactory(tenant=tenant, serial_number=f"S{n:04d}", model="Same")
    session = admin_client_.session
    session["chromeos.device_per_page"] = 50
    session.save()
    seen = []
    for page in (1, 2, 3):
        response = admin_client_.get(LIST, {"sort": "model", "page": page})
        assert response.context["pages"] == 3
        seen += serials(response)
    # Sorting on a column where every value ties still pages without repeats or gaps (id breaks ties).
    assert len(seen) == len(set(seen)) == 120
    assert len(serials(admin_client_.get(LIST, {"page": 99}))) == 20  # past the end: the last page


def test_column_chooser_persists_in_session(admin_client_, fleet):
    response = admin_client_.get(
        LIST,
        {
            "set_columns": "1",
            "columns": ["serial_number", "notes", "mac_address"],
            "per_page": "25",
            "q": "5CD",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == f"{LIST}?q=5CD"
    page = admin_client_.get(LIST)
    assert page.context["column_keys"] == ["serial_number", "mac_address", "notes"]
    assert page.context["per_page"] == 25
    assert "a1b2c3d4e5f6" in page.content.decode()


def test_csv_export_streams_the_filtered_set_with_chosen_columns(admin_client_, fleet, tenant):
    fleet["a"].notes = '=HYPERLINK("http://evil")'
    fleet["a"].save()
    admin_client_.get(LIST, {"set_columns": "1", "columns": ["serial_number", "status", "notes"]})
    response = admin_client_.get(reverse("chromeos:device_export"), {"org_unit": "/Paris"})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body), delimiter=";"))  # the interface is French
    assert rows[0] == ["device_id", "Numéro de série", "Statut", "Notes"]
    assert [r[1] for r in rows[1:]] == ["5CD1000001", "5CD1000002"]
    # A formula typed in an annotation is neutralised for spreadsheets.
    assert rows[1][3].startswith("'=")
    assert AuditEvent.unscoped.filter(tenant=tenant, action="device.export").count() == 1


def test_csv_export_reads_through_a_server_side_cursor(tenant, fleet):
    with tenant_context(tenant):
        rows = selectors.csv_rows(selectors.DeviceFilter(), ["serial_number"], chunk_size=2)
        assert hasattr(rows, "__next__")  # a generator: nothing fetched before the response is read
        assert [r[1] for r in rows] == ["5CD1000001", "5CD1000002", "NXH0000003"]


def test_list_page_one_query_count_is_pinned(admin_client_, tenant, django_assert_num_queries):
    for n in range(60):
        ChromeOSDeviceFactory(tenant=tenant, model=f"Model {n % 4}", os_version=f"12{n % 3}.0")
    # session, user, tenant; facets (models, OS versions); count; page; the OU tree (OUs, device counts per OU,
    # which also give the OU choices); the « Vues » menu's views; the shell's integration alert.
    with django_assert_num_queries(11):
        response = admin_client_.get(LIST)
    assert len(response.context["rows"]) == 50
    # A search adds SET LOCAL enable_indexscan in its own transaction (here a savepoint and its release).
    with django_assert_num_queries(11 + 3):
        admin_client_.get(LIST, {"q": "5cd", "status": "ACTIVE", "sort": "model", "dir": "desc", "page": "2"})


def test_detail_groups_every_field_google_reports(admin_client_, tenant, django_assert_num_queries):
    device = ChromeOSDeviceFactory(
        tenant=tenant,
        payload={
            "deviceId": "x",
            "macAddress": "a1b2c3d4e5f6",
            "cpuInfo": [{"model": "Intel(R) Celeron(R) N4500"}],
            "recentUsers": [{"type": "USER_TYPE_MANAGED", "email": "zoe@acme.test"}],
            "osVersion": "128.0",
            "annotatedUser": "Zoé",
            "orgUnitPath": "/Paris",
            "someFieldGoogleAddsLater": "valeur",
        },
    )
    DeviceChange.unscoped.create(tenant=tenant, device=device, changes={"os_version": ["127.0", "128.0"]})
    DeviceChange.unscoped.create(
        tenant=tenant, device=device, changes={"removed": [True, False]}
    )  # the sync's
    DeviceCommand.unscoped.create(tenant=tenant, device=device, command_type="REBOOT", command_id="42")
    # The "Configurations et applis" section belongs to the policies work: its own queries are counted apart.
    with tenant_context(tenant), CaptureQueriesContext(connection) as policies_section:
        render_to_string("chromeos/_device_policies.html", {"device": device, "org_unit": None})
    # session, user, tenant; device; OU; changes; commands; action items; the shell's integration alert
    # (+ the policies section's).
    with django_assert_num_queries(9 + len(policies_section)):
        response = admin_client_.get(reverse("chromeos:device_detail", kwargs={"pk": device.pk}))
    assert response.status_code == 200
    sections = {s.key: {str(r.label): r for r in s.rows} for s in response.context["sheet"]}
    assert "Intel(R) Celeron(R) N4500" in sections["hardware"]["Processeur"].items[0]
    assert sections["os"]["Version de ChromeOS"].value == "128.0"
    assert sections["network"]["Adresse MAC Wi-Fi"].value == "a1:b2:c3:d4:e5:f6"
    assert sections["activity"]["Utilisateurs récents"].items == ["zoe@acme.test (Géré)"]
    assert sections["identity"]["Unité organisationnelle"].value == "/"
    assert {k: r.value for k, r in sections["other"].items()} == {"someFieldGoogleAddsLater": "valeur"}
    html = response.content.decode()
    assert "Intel(R) Celeron(R) N4500" in html and "someFieldGoogleAddsLater" in html
    assert "127.0" in html and "REBOOT" in html
    assert "Version de l&#x27;OS" in html  # the history names the field, not the column
    assert "Retiré de Google</td><td>oui</td><td>non</td>" in html.replace("\n", "")


def test_read_only_users_see_no_action_control(client_for, readonly_user, admin_user, fleet):
    reader = client_for(readonly_user).get(LIST).content.decode()
    assert 'name="ids"' not in reader and reverse("chromeos:device_action_prepare") not in reader
    detail = client_for(readonly_user).get(reverse("chromeos:device_detail", kwargs={"pk": fleet["a"].pk}))
    assert reverse("chromeos:device_action", kwargs={"pk": fleet["a"].pk}) not in detail.content.decode()
    admin = client_for(admin_user).get(LIST).content.decode()
    assert 'name="ids"' in admin and reverse("chromeos:device_action_prepare") in admin


def test_read_only_users_get_403_on_every_action_url(client_for, readonly_user, tenant):
    from tests.factories import DeviceActionJobFactory

    job = DeviceActionJobFactory(tenant=tenant)
    device = ChromeOSDeviceFactory(tenant=tenant)
    reader = client_for(readonly_user)
    urls = [
        reverse("chromeos:device_action_prepare"),
        reverse("chromeos:device_action", kwargs={"pk": device.pk}),
        reverse("chromeos:device_action_confirm", kwargs={"pk": job.pk}),
        reverse("chromeos:device_action_cancel", kwargs={"pk": job.pk}),
    ]
    for url in urls:
        assert (
            reader.post(url, {"action": "disable", "scope": "selection", "ids": [device.pk]}).status_code
            == 403
        )
    job.refresh_from_db()
    assert job.status == "draft"


def test_facets_use_the_index_not_every_row(tenant):
    GoogleIntegrationFactory(tenant=tenant)
    for model in ("B", "A", "C", "A", ""):
        ChromeOSDeviceFactory(tenant=tenant, model=model)
    ChromeOSDeviceFactory(tenant=tenant, model="Z", removed_at=timezone.now())  # not in the list: not a facet
    with tenant_context(tenant):
        assert selectors.distinct_values("model") == ["A", "B", "C"]
        with pytest.raises(KeyError):
            selectors.distinct_values("notes; DROP TABLE x")


def test_a_broad_search_counts_up_to_a_cap(admin_client_, tenant, monkeypatch):
    monkeypatch.setattr(selectors, "SEARCH_COUNT_CAP", 3)
    for n in range(5):
        ChromeOSDeviceFactory(tenant=tenant, serial_number=f"CAP{n}")
    response = admin_client_.get(LIST, {"q": "cap"})
    assert response.context["capped"] and response.context["total"] == 3
    assert "Plus de 3 périphériques" in response.content.decode()
    assert serials(response) == ["CAP0", "CAP1", "CAP2"]
    # Without a search the count stays exact.
    assert admin_client_.get(LIST).context["total"] == 5


def test_pages_past_the_middle_read_from_the_end(tenant):
    for n in range(23):
        ChromeOSDeviceFactory(
            tenant=tenant,
            serial_number=f"P{n:02d}",
            last_sync=None if n % 4 == 0 else timezone.now() - timedelta(hours=n % 5),
        )
    with tenant_context(tenant):
        for sort, descending in [("serial_number", False), ("last_sync", True), ("model", False)]:
            flt = selectors.DeviceFilter(sort=sort, descending=descending)
            everything = [d.pk for d in selectors.device_list(flt)]
            paged = [d.pk for n in range(1, 6) for d in selectors.device_page(flt, n, 5).rows]
            assert paged == everything


def test_device_rows_keep_the_payload_out_of_line(db):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'chromeos_chromeosdevice'")
        assert "toast_tuple_target=1024" in cursor.fetchone()[0]
        cursor.execute(
            "SELECT attstorage FROM pg_attribute WHERE attrelid = 'chromeos_chromeosdevice'::regclass "
            "AND attname = 'search_text'"
        )
        assert cursor.fetchone()[0] == "p"
