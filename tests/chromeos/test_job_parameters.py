"""A device job's page says what was asked in words (action, parameters, devices, who prepared and confirmed it,
when), and « Relancer les échecs » drafts the same action on the failed devices only, through the normal
confirmation (operators and admins only, audited)."""

from __future__ import annotations

import html

import pytest
from django.urls import reverse

from chromeos.models import ChromeOSDevice, DeviceActionItem, DeviceActionJob
from mdm.models import AuditEvent
from tests.chromeos.test_device_actions import REASON, batch_calls, confirm, mirror_fleet, prepare


@pytest.fixture
def fleet(google_integration, google_emulator) -> list[ChromeOSDevice]:
    return mirror_fleet(google_emulator, google_integration)


@pytest.fixture
def operator(client_for, operator_user):
    return client_for(operator_user)


def _page(client, job: DeviceActionJob) -> str:
    response = client.get(reverse("chromeos:device_job", kwargs={"pk": job.pk}))
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def test_a_move_job_page_shows_the_target_ou_who_confirmed_and_when(
    operator, operator_user, fleet, django_capture_on_commit_callbacks
):
    target = "/Lyon/Équipe Réseau"
    url, job = prepare(operator, "move", fleet[:3])
    confirm(operator, url, django_capture_on_commit_callbacks, org_unit_path=target)
    job.refresh_from_db()
    assert job.confirmed_by == operator_user
    page = _page(operator, job)
    assert 'id="job-parameters"' in page
    assert "Unité organisationnelle cible" in page and target in page
    assert "Confirmée par" in page and operator_user.display_name in page
    assert "3 périphérique(s) cochés dans la liste" in page


def test_deprovision_annotate_and_command_parameters_are_said_in_words(
    operator, fleet, django_capture_on_commit_callbacks
):
    active = [d for d in fleet if d.status == "ACTIVE"]
    url, deprovision = prepare(operator, "deprovision", active[:1])
    confirm(operator, url, django_capture_on_commit_callbacks, deprovision_reason=REASON)
    page = _page(operator, deprovision)
    assert "Motif du déprovisionnement" in page and "Mise hors service du périphérique" in page
    assert REASON not in page  # Google's code is not the admin's words

    url, annotate = prepare(operator, "annotate", active[1:3])
    confirm(
        operator,
        url,
        django_capture_on_commit_callbacks,
        annotate_fields=["annotated_location", "notes"],
        annotated_location="Salle 12",
        notes="",
    )
    page = _page(operator, annotate)
    assert "Emplacement" in page and "Salle 12" in page
    assert "Notes" in page and "(vidé)" in page
    assert "Utilisateur annoté" not in page  # not ticked: not changed, not listed

    url, reboot = prepare(operator, "cmd_reboot", active[3:4])
    confirm(operator, url, django_capture_on_commit_callbacks)
    page = _page(operator, reboot)
    assert "Type de commande" in page and "(REBOOT)" in page


@pytest.mark.google_emulator(devices=130)  # a seeded domain with deprovisioned devices (50 may have none)
def test_retry_failed_drafts_the_same_action_on_the_failed_devices_only(
    operator, readonly_user, client_for, fleet, google_emulator, django_capture_on_commit_callbacks
):
    active = [d for d in fleet if d.status == "ACTIVE"][:2]
    deprovisioned = next(d for d in fleet if d.status == "DEPROVISIONED")
    url, job = prepare(operator, "disable", [*active, deprovisioned])
    confirm(operator, url, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert (job.status, job.failed) == ("partial", 1)
    retry_url = reverse("chromeos:device_job_retry_failed", kwargs={"pk": job.pk})
    assert retry_url in _page(operator, job) and "Relancer les échecs" in _page(operator, job)

    reader = client_for(readonly_user)
    assert "Relancer les échecs" not in _page(reader, job)
    assert reader.post(retry_url).status_code == 403

    response = operator.post(retry_url)
    retry = DeviceActionJob.unscoped.latest("id")
    assert response.status_code == 302
    assert response["Location"] == reverse("chromeos:device_action_confirm", kwargs={"pk": retry.pk})
    assert (retry.status, retry.action, retry.retry_of_id, retry.total) == ("draft", "disable", job.pk, 1)
    assert list(DeviceActionItem.unscoped.filter(job=retry).values_list("google_device_id", flat=True)) == [
        deprovisioned.device_id
    ]
    event = AuditEvent.unscoped.get(action="device.retry_failed")
    assert event.details["source_job_id"] == job.pk and event.details["job_id"] == retry.pk
    # Nothing is sent before the confirmation; then only the failed device goes to Google.
    calls_before = len(batch_calls(google_emulator))
    confirm_page = operator.get(response["Location"]).content.decode()
    assert deprovisioned.device_id in confirm_page
    confirm(operator, response["Location"], django_capture_on_commit_callbacks)
    calls = batch_calls(google_emulator)[calls_before:]
    assert [c["body"]["deviceIds"] for c in calls] == [[deprovisioned.device_id]]
    retry.refresh_from_db()
    page = _page(operator, retry)
    assert f"en échec de l'action n° {job.pk}" in page and "Relance de" in page


@pytest.mark.django_db
def test_a_job_without_failures_offers_no_retry(operator, fleet, django_capture_on_commit_callbacks):
    url, job = prepare(operator, "disable", [d for d in fleet if d.status == "ACTIVE"][:1])
    confirm(operator, url, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert job.status == "succeeded"
    assert "Relancer les échecs" not in _page(operator, job)
    response = operator.post(reverse("chromeos:device_job_retry_failed", kwargs={"pk": job.pk}), follow=True)
    assert "pas d'échec à relancer" in html.unescape(response.content.decode())
    assert DeviceActionJob.unscoped.count() == 1
