"""An audit log for humans: one sentence per event with its object linked, categories, CSV, append-only."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from mdm.models import AuditEvent
from tests.factories import AuditEventFactory, BlueprintFactory, DeviceActionJobFactory

pytestmark = pytest.mark.django_db

AUDIT = reverse("mdm:audit")


@pytest.fixture
def events(tenant, admin_user):
    blueprint = BlueprintFactory(tenant=tenant, name="Écoles primaires")
    job = DeviceActionJobFactory(tenant=tenant, action="cmd_set_volume")
    make = AuditEventFactory
    return {
        "blueprint": make(
            tenant=tenant, actor=admin_user, actor_label=admin_user.username, action="blueprint.update",
            target=blueprint.name, details={"blueprint_id": blueprint.pk, "platform": "chromeos"},
        ),
        "volume": make(
            tenant=tenant, actor=admin_user, actor_label=admin_user.username, action="device.cmd_set_volume",
            target="1 périphérique(s)", details={"job_id": job.pk, "params": {"volume": 40}, "selection": None},
        ),
        "ldap": make(
            tenant=tenant, actor=admin_user, actor_label=admin_user.username, action="ldap.directory.update",
            target="ldap://ldap.acme.test", details={"changed": ["bind_dn", "uri"]},
        ),
        "unknown": make(tenant=tenant, actor_label="système", action="future.thing", target="=HYPERLINK(1)"),
        "job": job,
        "blueprint_obj": blueprint,
    }  # fmt: skip


def test_each_event_reads_as_a_sentence_with_its_object_linked(admin_client_, events):
    body = admin_client_.get(AUDIT).content.decode()
    edit = reverse("mdm:blueprint_edit", args=[events["blueprint_obj"].pk])
    assert f'a modifié la configuration <a href="{edit}">Écoles primaires</a>.' in body
    job = reverse("chromeos:device_job", args=[events["job"].pk])
    # French pages keep « and » with their word (non-breaking spaces, mdm/typography.py).
    assert f'a lancé «\u00a0Régler le volume\u00a0» sur <a href="{job}">1 périphérique(s)</a>.' in body
    assert "a modifié la configuration de l&#x27;annuaire LDAP" in body and "(bind_dn, uri)" in body
    assert "action «\u00a0future.thing\u00a0» sur" in body
    # No Python reprs, no None: details in words.
    assert "{&#x27;volume&#x27;: 40}" not in body and "{'volume'" not in body and ">None<" not in body
    assert "volume : 40" in body


def test_the_journal_filters_by_category(admin_client_, events):
    response = admin_client_.get(AUDIT, {"category": "ldap"})
    actions = [e.action for e in response.context["page"].object_list]
    assert actions == ["ldap.directory.update"]
    devices = admin_client_.get(AUDIT, {"category": "devices"}).context["page"].object_list
    assert [e.action for e in devices] == ["device.cmd_set_volume"]
    other = admin_client_.get(AUDIT, {"category": "other"}).context["page"].object_list
    assert [e.action for e in other] == ["future.thing"]


def test_the_journal_in_english(admin_client_, events):
    admin_client_.cookies["django_language"] = "en"
    body = admin_client_.get(AUDIT).content.decode()
    assert "changed the configuration" in body and "started “Set volume” on" in body


def _csv(response):
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return text


def test_csv_export_for_french_spreadsheets(admin_client_, events):
    response = admin_client_.get(reverse("mdm:audit_export"), {"category": "console"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(_csv(response)), delimiter=";"))
    assert rows[0] == ["Date", "Acteur", "Catégorie", "Événement", "Code", "Cible", "Détails"]
    assert len(rows) == 2 and rows[1][4] == "blueprint.update"
    assert rows[1][3].endswith("a modifié la configuration Écoles primaires.")
    assert rows[1][2] == "Configurations et applis"


def test_csv_export_in_english_uses_commas_and_neutralises_formulas(admin_client_, events):
    admin_client_.cookies["django_language"] = "en"
    rows = list(csv.reader(io.StringIO(_csv(admin_client_.get(reverse("mdm:audit_export"))))))
    assert rows[0][0] == "Date" and rows[0][3] == "Event"
    unknown = next(r for r in rows if r[4] == "future.thing")
    assert unknown[5] == "'=HYPERLINK(1)"
    semicolons = list(
        csv.reader(
            io.StringIO(_csv(admin_client_.get(reverse("mdm:audit_export"), {"sep": ";"}))), delimiter=";"
        )
    )
    assert semicolons[0][0] == "Date" and len(semicolons[0]) == 7


def test_support_cannot_delete_or_change_audit_entries(support_user, client_for, events):
    support = client_for(support_user)
    event = events["blueprint"]
    changelist = reverse("admin:mdm_auditevent_changelist")
    page = support.get(changelist).content.decode()
    assert "delete_selected" not in page
    assert support.get(reverse("admin:mdm_auditevent_delete", args=[event.pk])).status_code == 403
    response = support.post(
        changelist, {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"}
    )
    assert response.status_code in (200, 302, 403)
    change = reverse("admin:mdm_auditevent_change", args=[event.pk])
    support.post(change, {"action": "forged", "target": "x"})
    event.refresh_from_db()
    assert AuditEvent.unscoped.filter(pk=event.pk).exists() and event.action == "blueprint.update"
