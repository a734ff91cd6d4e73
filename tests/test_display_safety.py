"""Display safety: bidi controls and zero-width characters from Google or LDAP are shown as visible markers
on every page (console, htmx partials, django-admin), ignored by the device search, and never change what a
form posts back or what is stored."""

from __future__ import annotations

import pytest
from django.db.models import F, TextField, Value
from django.db.models.functions import Concat, Lower
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from chromeos.models import ChromeOSDevice
from chromeos.selectors import devices as selectors
from mdm.display import (
    ACCENTED,
    INVISIBLE,
    INVISIBLE_CHARS,
    FoldAccents,
    StripInvisible,
    fold_accents,
    neutralise,
    neutralise_html,
    strip_invisible,
    unmark,
)
from mdm.tenancy import tenant_context
from tests.factories import AuditEventFactory, ChromeOSDeviceFactory
from tests.ldap.factories import LdapOrgUnitFactory

pytestmark = pytest.mark.django_db

RLO = "\u202e"
ZWSP = "\u200b"
# Renders as "docexe.pdf"-looking text: the classic file-name spoof.
SPOOF = f"doc{RLO}fdp.exe"
SHOWN = "doc⟨U+202E⟩fdp.exe"
# The columns of ChromeOSDevice.search_text, in its order.
SEARCHED_COLUMNS = (
    "serial_number",
    "annotated_asset_id",
    "annotated_user",
    "mac_address",
    "ethernet_mac_address",
    "model",
    "recent_user",
)


def test_every_listed_character_gets_a_readable_marker():
    for cp in INVISIBLE:
        assert neutralise(f"a{chr(cp)}b") == f"a⟨U+{cp:04X}⟩b"
        assert strip_invisible(f"a{chr(cp)}b") == "ab"
    assert neutralise("Élève — 5CD1000001") == "Élève — 5CD1000001"


def test_html_keeps_what_a_form_posts_back_and_marks_the_rest():
    page = (
        f'<title>{SPOOF}</title><p title="{SPOOF}">{SPOOF}</p>'
        f'<input name="q" value="{SPOOF}"><textarea name="n">{SPOOF}</textarea>'
        f'<option value="{SPOOF}">{SPOOF}</option>'
    )
    assert neutralise_html(page) == (
        f'<title>{SHOWN}</title><p title="{SHOWN}">{SHOWN}</p>'
        f'<input name="q" value="{SPOOF}"><textarea name="n">{SPOOF}</textarea>'
        f'<option value="{SPOOF}">{SHOWN}</option>'
    )


@pytest.fixture
def spoofed(tenant):
    return ChromeOSDeviceFactory(
        tenant=tenant,
        serial_number=SPOOF,
        annotated_user=f"zoe{ZWSP}.martin@acme.test",
        model="Lenovo 300e",
        org_unit_path=f"/Paris/{RLO}CDI",
    )


def test_device_list_and_page_show_markers_not_raw_characters(admin_client_, spoofed):
    body = admin_client_.get(reverse("chromeos:device_list")).content.decode()
    assert SHOWN in body
    assert "zoe⟨U+200B⟩.martin@acme.test" in body
    assert RLO not in body and ZWSP not in body

    detail = admin_client_.get(reverse("chromeos:device_detail", args=[spoofed.pk])).content.decode()
    title = detail.split("<title>", 1)[1].split("</title>", 1)[0]
    assert SHOWN in title
    assert RLO not in detail and ZWSP not in detail


def test_stored_data_is_not_rewritten(admin_client_, spoofed):
    admin_client_.get(reverse("chromeos:device_detail", args=[spoofed.pk]))
    assert ChromeOSDevice.unscoped.get(pk=spoofed.pk).serial_number == SPOOF


def test_search_box_value_is_posted_back_unchanged(admin_client_, spoofed):
    body = admin_client_.get(reverse("chromeos:device_list"), {"q": SPOOF}).content.decode()
    # The search field keeps the typed value exactly; the row shows the marker.
    assert f'value="{SPOOF}"' in body
    assert SHOWN in body


@pytest.mark.parametrize(
    "needle",
    ["docfdp.exe", SPOOF, SHOWN, f"doc{ZWSP}fdp", "DOCFDP", "zoe.martin@acme", f"zoe{ZWSP}.martin"],
)
def test_device_search_ignores_invisible_characters(tenant, spoofed, needle):
    with tenant_context(tenant):
        found = list(selectors.devices_filtered(selectors.DeviceFilter(q=needle)))
    assert found == [spoofed]


def test_ldap_org_unit_names_are_shown_with_markers(admin_client_, tenant):
    LdapOrgUnitFactory(tenant=tenant, name=f"{RLO}Direction", path=f"/{RLO}Direction", added=True)
    body = admin_client_.get(reverse("ldap_sync:directory")).content.decode()
    assert "⟨U+202E⟩Direction" in body
    assert RLO not in body


def test_audit_log_shows_markers(admin_client_, tenant):
    AuditEventFactory(tenant=tenant, action="device.disable", target=SPOOF, actor_label=f"camille{ZWSP}")
    body = admin_client_.get(reverse("mdm:audit")).content.decode()
    assert SHOWN in body and "camille⟨U+200B⟩" in body
    assert RLO not in body and ZWSP not in body


def test_django_admin_shows_markers(support_user, client_for, tenant):
    AuditEventFactory(tenant=tenant, action="device.disable", target=SPOOF)
    LdapOrgUnitFactory(tenant=tenant, name=f"{RLO}Direction", path=f"/{RLO}Direction")
    c = client_for(support_user)
    for url in ("/support/mdm/auditevent/", "/support/ldap_sync/ldaporgunit/"):
        body = c.get(url).content.decode()
        assert "⟨U+202E⟩" in body, url
        assert RLO not in body, url


@pytest.mark.parametrize(
    "needle", ["camille.durand", f"camille{ZWSP}.durand", "camille⟨U+200B⟩.durand", "CAMILLE"]
)
def test_audit_actor_filter_ignores_invisible_characters(admin_client_, tenant, needle):
    AuditEventFactory(tenant=tenant, action="ldap.login", actor_label=f"camille.{ZWSP}durand")
    AuditEventFactory(tenant=tenant, action="ldap.login", actor_label="lea.fontaine")
    page = admin_client_.get(reverse("mdm:audit"), {"actor": needle})
    assert [e.actor_label for e in page.context["page"].object_list] == [f"camille.{ZWSP}durand"]


def test_an_org_unit_path_copied_from_a_page_filters_the_list(tenant, spoofed):
    assert unmark("/Paris/⟨U+202E⟩CDI") == f"/Paris/{RLO}CDI"
    with tenant_context(tenant):
        found = list(selectors.devices_filtered(selectors.DeviceFilter(org_unit="/Paris/⟨U+202E⟩CDI")))
    assert found == [spoofed]


# The characters the search text's translates change, among ASCII and other text.
_SEARCHED = st.text(
    alphabet=st.one_of(
        st.characters(max_codepoint=0x7F, exclude_characters="\x00"),
        st.sampled_from(INVISIBLE_CHARS + ACCENTED + ACCENTED.upper() + "ÉÀ€ßİΣ日本"),
        st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
    ),
    max_size=40,
)


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(serial=_SEARCHED, user=_SEARCHED, model=_SEARCHED)
def test_the_search_text_is_what_both_translates_make_of_any_text(tenant, serial, user, model):
    """Issue 18: ASCII text skips PostgreSQL's translates (a fifth of a first sync's insert CPU). The stored search
    text stays what the former expression made of every text, ASCII or not (the search's query is folded by its
    Python twin the same way)."""
    device = ChromeOSDeviceFactory(tenant=tenant, serial_number=serial, annotated_user=user, model=model)
    former = FoldAccents(
        StripInvisible(
            Lower(
                Concat(
                    *[part for column in SEARCHED_COLUMNS for part in (Value("\n"), F(column))][1:],
                    output_field=TextField(),
                )
            ),
            output_field=TextField(),
        ),
        output_field=TextField(),
    )
    stored, expected = (
        ChromeOSDevice.unscoped.filter(pk=device.pk)
        .annotate(former=former)
        .values_list("search_text", "former")
        .get()
    )
    assert stored == expected
    if (serial + user + model).isascii():
        assert fold_accents(strip_invisible(serial.lower())) in stored
