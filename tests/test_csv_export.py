"""CSV exports: formulas neutralised (leading blanks, full-width signs), French separator and values when the
interface is French (with an option for ","), times in the display zone, UTF-8 with BOM."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.conf import settings
from django.urls import reverse

from mdm.csv_export import CsvFormat, csv_safe
from tests.factories import AuditEventFactory, ChromeOSDeviceFactory

EXPORT = reverse("chromeos:device_export")
LIST = reverse("chromeos:device_list")


@pytest.mark.parametrize(
    "text",
    [
        "=1+1",
        "+33 1",
        "-2",
        "@SUM(A1)",
        "\t=1",
        "\r=1",
        " =1+1",
        "  @x",
        "\t =HYPERLINK()",
        "＝1+1",
        "＋1",
        "－1",
        "＠x",
        " ＝1",
        "\u3000=1",
        "\u00a0=1",
        "\n=1+1",
        "\nplain text after a line feed",
        " \n=1",
        *(f"{chr(blank)}=1" for blank in range(0x2000, 0x200B)),
        "\u202f=1",
        "\u205f@x",
        "\u2003\u00a0＝1",
    ],
)
def test_formula_cells_are_neutralised(text):
    assert csv_safe(text) == "'" + text


@pytest.mark.parametrize("text", ["5CD1000001", "Salle 12 = CDI", "", "zoe.martin@acme.test", "Élève"])
def test_plain_cells_are_kept(text):
    assert csv_safe(text) == text


def test_values_in_french_and_in_english():
    fr = CsvFormat(delimiter=";", french=True)
    en = CsvFormat(delimiter=",", french=False)
    assert fr.cell(Decimal("0.4")) == "0,4" and en.cell(Decimal("0.4")) == "0.4"
    assert fr.cell(1.5) == "1,5"
    assert fr.cell(date(2027, 6, 1)) == "01/06/2027" and en.cell(date(2027, 6, 1)) == "2027-06-01"
    assert fr.cell(None) == "" and fr.cell(12) == "12"


def rows_of(response, delimiter):  # type: ignore[no-untyped-def]
    raw = b"".join(response.streaming_content)
    assert raw.startswith("\ufeff".encode())  # UTF-8 with BOM: French Excel reads accents right
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=delimiter))


@pytest.fixture
def device(tenant):  # type: ignore[no-untyped-def]
    return ChromeOSDeviceFactory(
        tenant=tenant,
        serial_number="5CD1000001",
        status="DISABLED",
        annotated_user=' ＝HYPERLINK("http://evil")',
        annotated_location="Salle d'étude \u202eCDI",
        last_sync=datetime(2026, 7, 14, 22, 30, tzinfo=UTC),
        auto_update_expiration=date(2029, 6, 1),
    )


COLUMNS = {
    "set_columns": "1",
    "columns": [
        "serial_number",
        "status",
        "annotated_user",
        "annotated_location",
        "last_sync",
        "auto_update_expiration",
    ],
}


@pytest.mark.django_db
def test_french_export_uses_semicolons_french_words_and_local_times(admin_client_, device):
    assert settings.TIME_ZONE == "Europe/Paris"
    admin_client_.get(LIST, COLUMNS)
    rows = rows_of(admin_client_.get(EXPORT), ";")
    assert rows[0] == [
        "device_id",
        "Numéro de série",
        "Statut",
        "Utilisateur annoté",
        "Emplacement",
        "Dernière synchro",
        "Fin des mises à jour",
    ]
    assert rows[1][1:] == [
        "5CD1000001",
        "Désactivé",
        '\' ＝HYPERLINK("http://evil")',
        "Salle d'étude ⟨U+202E⟩CDI",
        "15/07/2026 00:30:00",  # 22:30 UTC is past midnight in Paris
        "01/06/2029",
    ]


@pytest.mark.django_db
def test_french_export_can_use_commas(admin_client_, device):
    admin_client_.get(LIST, COLUMNS)
    rows = rows_of(admin_client_.get(EXPORT, {"sep": "comma"}), ",")
    assert rows[1][1:3] == ["5CD1000001", "Désactivé"]
    page = admin_client_.get(LIST).content.decode()
    assert "sep=comma" in page


@pytest.mark.django_db
def test_english_export_uses_commas_and_iso_dates(admin_client_, device):
    admin_client_.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    admin_client_.get(LIST, COLUMNS)
    rows = rows_of(admin_client_.get(EXPORT), ",")
    assert rows[0][1:3] == ["Serial number", "Status"]
    assert rows[1][1:3] == ["5CD1000001", "Disabled"]
    assert rows[1][5:] == ["2026-07-15 00:30:00", "2029-06-01"]
    assert "sep=semicolon" in admin_client_.get(LIST).content.decode()


@pytest.mark.django_db
def test_audit_export_neutralises_formulas_and_invisible_characters(admin_client_, tenant):
    AuditEventFactory(tenant=tenant, action="device.disable", target=' ＝HYPERLINK("x")')
    AuditEventFactory(tenant=tenant, action="device.disable", target="doc\u202efdp.exe")
    raw = b"".join(admin_client_.get(reverse("mdm:audit_export")).streaming_content).decode("utf-8-sig")
    cells = [cell for row in csv.reader(io.StringIO(raw), delimiter=";") for cell in row]
    assert '\' ＝HYPERLINK("x")' in cells
    assert "doc⟨U+202E⟩fdp.exe" in cells
    assert "\u202e" not in raw
