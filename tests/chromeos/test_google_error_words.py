"""Google's error texts in plain French (and English), the raw detail behind « Détail technique »: on job items,
sync runs and policy assignments."""

from __future__ import annotations

import html

import pytest
from django.template import Context, Template
from django.utils import translation

from chromeos.google.errors import GoogleBadRequest, GoogleUnsupported, QuotaExhausted, TransientGoogleError
from chromeos.google.explain import error_detail, explain_google_error


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Illegal device state transition from DISABLED.", "l'appareil est déjà désactivé"),
        ("Illegal device state transition from ACTIVE.", "l'appareil est déjà actif"),
        ("Illegal device state transition from DEPROVISIONED.", "l'appareil est déprovisionné"),
        (
            "Precondition Failed: Illegal device state transition (conditionNotMet) [HTTP 412]",
            "pas dans un état",
        ),
        ("No available licenses to re-enable the device.", "plus aucune licence"),
        (
            "Device is not active; commands can only be issued to active devices. [HTTP 400]",
            "n'est pas actif",
        ),
        ("Not Implemented [HTTP 501]", "ne prend pas en charge cette action pour cet appareil"),
        ("Device not found.", "ne connaît pas (ou plus) cet appareil"),
        ("Quota exceeded for quota metric 'Queries' (quotaExceeded) [HTTP 403]", "Quota Google atteint"),
        ("Daily Limit Exceeded (dailyLimitExceeded) [HTTP 403]", "Quota Google atteint pour aujourd'hui"),
        (
            "Request had insufficient authentication scopes. (insufficientPermissions) [HTTP 403]",
            "autorisation",
        ),
        (
            "Not Authorized to access this resource/api (forbidden) [HTTP 403]",
            "n'est pas (ou plus) administrateur",
        ),
        ("Backend Error (backendError) [HTTP 503]", "momentanément indisponible"),
        ("Invalid Input: deprovisionReason (invalid) [HTTP 400]", "une valeur envoyée n'est pas valide"),
    ],
)
def test_each_known_google_error_reads_as_a_french_sentence_with_the_raw_detail(text, expected):
    explained = explain_google_error(text)
    assert explained is not None and expected in explained.summary
    assert explained.summary.startswith(("Google", "Quota Google"))
    assert explained.detail == text


def test_unknown_texts_and_the_consoles_own_words_are_left_as_they_are():
    assert explain_google_error("") is None
    assert explain_google_error("Annulée avant l'envoi à Google.") is None
    assert (
        explain_google_error("Interrompu pendant l'envoi à Google (arrêt du worker) : résultat inconnu")
        is None
    )
    assert explain_google_error("Something Google never said before") is None


def test_the_stored_detail_carries_googles_reason_and_status():
    assert error_detail(GoogleUnsupported("Not Implemented", status=501)) == "Not Implemented [HTTP 501]"
    assert (
        error_detail(TransientGoogleError("Quota exceeded", status=403, reason="quotaExceeded"))
        == "Quota exceeded (quotaExceeded) [HTTP 403]"
    )
    detail = error_detail(QuotaExhausted("Daily Limit Exceeded", status=403, reason="dailyLimitExceeded"))
    assert "pour aujourd'hui" in explain_google_error(detail).summary
    assert error_detail(GoogleBadRequest("Bad [HTTP 400]", status=400)) == "Bad [HTTP 400]"


def test_the_tag_shows_the_sentence_and_the_detail_behind_a_toggle_in_french_and_english():
    template = Template("{% load chromeos_google %}{% google_error text %}")
    body = html.unescape(template.render(Context({"text": "Illegal device state transition from DISABLED."})))
    body = body.replace("\u00a0", " ")
    assert "Google refuse : l'appareil est déjà désactivé." in body
    assert "<details" in body and "Détail technique" in body
    assert "Illegal device state transition from DISABLED." in body
    with translation.override("en"):
        body = html.unescape(template.render(Context({"text": "Not Implemented [HTTP 501]"})))
    assert "Google does not support this action for this device." in body and "Technical detail" in body
    plain = template.render(Context({"text": "Annulée avant l'envoi à Google."}))
    assert "<details" not in plain and "Annulée avant" in html.unescape(plain)


# -- where the admin reads them ---------------------------------------------------------------------------------
@pytest.fixture
def fleet(google_integration, google_emulator):
    from tests.chromeos.test_device_actions import mirror_fleet

    return mirror_fleet(google_emulator, google_integration)


@pytest.mark.google_emulator(devices=130)  # a seeded domain with deprovisioned devices (50 may have none)
@pytest.mark.django_db
def test_a_job_item_google_refused_reads_in_words_with_the_raw_detail_behind_a_toggle(
    admin_client_, fleet, django_capture_on_commit_callbacks
):
    from django.urls import reverse

    from tests.chromeos.test_device_actions import confirm, prepare

    deprovisioned = next(d for d in fleet if d.status == "DEPROVISIONED")
    url, job = prepare(admin_client_, "disable", [deprovisioned])
    confirm(admin_client_, url, django_capture_on_commit_callbacks)
    page = html.unescape(
        admin_client_.get(reverse("chromeos:device_job", kwargs={"pk": job.pk})).content.decode()
    ).replace("\u00a0", " ")
    assert "Google refuse : l'appareil est déprovisionné" in page
    assert "Détail technique" in page and "Illegal device state transition from DEPROVISIONED." in page


@pytest.mark.django_db
def test_a_sync_google_stopped_keeps_googles_reason_and_status_and_says_it_in_words(
    google_integration, google_emulator, admin_client_
):
    from django.urls import reverse

    from chromeos.models import SyncStatus
    from tests.chromeos.test_sync_faults import LIST, run_sync

    google_emulator.add_fault(
        method=LIST, status=403, reason="dailyLimitExceeded", message="Daily Limit Exceeded", count=None
    )
    run = run_sync(google_integration)
    assert run.status == SyncStatus.FAILED
    assert "Daily Limit Exceeded (dailyLimitExceeded) [HTTP 403]" in run.error
    panel = html.unescape(admin_client_.get(reverse("chromeos:sync_progress")).content.decode()).replace(
        "\u00a0", " "
    )
    assert "Quota Google atteint pour aujourd'hui" in panel
    assert "Détail technique" in panel and "(dailyLimitExceeded) [HTTP 403]" in panel
