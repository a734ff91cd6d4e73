"""Device actions and remote commands, end to end against the Google emulator over HTTP.

The console's pages are driven with Django's test client; confirming enqueues the job on commit, and the
captured on-commit callbacks run it (Celery eager) against the emulator through ``GoogleClient``.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from django.urls import reverse

from chromeos.models import (
    ChromeOSDevice,
    DeviceActionItem,
    DeviceActionJob,
    DeviceChange,
    DeviceCommand,
    GoogleIntegration,
    OrgUnit,
)
from chromeos.services import devices as services
from chromeos.tasks.actions import device_action_job_run_task
from mdm.models import AuditEvent
from mdm.tenancy import tenant_context
from tests.factories import ChromeOSDeviceFactory
from tests.ldap.factories import LdapOrgUnitFactory

PREPARE = reverse("chromeos:device_action_prepare")
REASON = "DEPROVISION_REASON_RETIRING_DEVICE"


def mirror_fleet(emulator: Any, integration: GoogleIntegration) -> list[ChromeOSDevice]:
    """The console's copy of the emulator's domain, as a sync would have left it (OUs and devices)."""
    state = emulator.state
    with state.lock:
        units = [(u.org_unit_id, u.path, u.name) for u in state.org_units]
        records = [dict(r.data) for r in state.devices.values()]
    tenant = integration.tenant
    # Every OU is backed by an LDAP OU ("prise en charge") except /Lyon.
    OrgUnit.unscoped.bulk_create(
        [
            OrgUnit(
                tenant=tenant,
                integration=integration,
                org_unit_id=f"id:{uid}",
                path=path,
                name=name,
                ldap_org_unit=None
                if path == "/Lyon"
                else LdapOrgUnitFactory(tenant=tenant, name=name, path=path),
            )
            for uid, path, name in units
        ]
    )
    return ChromeOSDevice.unscoped.bulk_create(
        [
            ChromeOSDevice(
                tenant=tenant,
                integration=integration,
                device_id=data["deviceId"],
                serial_number=data["serialNumber"],
                status=data["status"],
                model=data.get("model", ""),
                org_unit_path=data.get("orgUnitPath", ""),
                org_unit_id=data.get("orgUnitId", ""),
                annotated_user=data.get("annotatedUser", ""),
                payload=data,
            )
            for data in sorted(records, key=lambda d: d["serialNumber"])
        ]
    )


@pytest.fixture
def fleet(google_integration, google_emulator) -> list[ChromeOSDevice]:
    return mirror_fleet(google_emulator, google_integration)


@pytest.fixture
def operator(client_for, operator_user):
    return client_for(operator_user)


def emulator_device(emulator: Any, device_id: str) -> dict[str, Any]:
    with emulator.state.lock:
        return dict(emulator.state.devices[device_id].data)


def prepare(client, action: str, devices: list[ChromeOSDevice] | None = None, **extra: Any):
    data: dict[str, Any] = {"action": action, "scope": "selection", **extra}
    if devices is not None:
        data["ids"] = [d.pk for d in devices]
    response = client.post(PREPARE, data)
    assert response.status_code == 302, response.content[:500]
    assert "/devices/actions/" in response["Location"], response["Location"]
    return response["Location"], DeviceActionJob.unscoped.latest("id")


def confirm(client, url: str, capture, **data: Any):
    with capture(execute=True):
        response = client.post(url, data)
    return response


def batch_calls(emulator) -> list[dict[str, Any]]:
    return emulator.requests("admin.customer.devices.chromeos.batchChangeStatus")


# -- status changes -----------------------------------------------------------------------------------------
def test_disable_lists_exact_devices_then_runs_and_updates_everything(
    operator, fleet, google_emulator, django_capture_on_commit_callbacks, tenant
):
    chosen = [d for d in fleet if d.status == "ACTIVE"][:3]
    url, job = prepare(operator, "disable", chosen)
    page = operator.get(url)
    html = page.content.decode()
    assert page.status_code == 200
    assert [i.google_device_id for i in page.context["preview"]] == [d.device_id for d in chosen]
    for device in chosen:
        assert device.device_id in html and device.serial_number in html
    assert not batch_calls(google_emulator)  # nothing reaches Google before the confirmation

    response = confirm(operator, url, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    assert response["Location"] == reverse("chromeos:device_job", kwargs={"pk": job.pk})
    job.refresh_from_db()
    assert (job.status, job.succeeded, job.failed) == ("succeeded", 3, 0)
    for device in chosen:
        assert emulator_device(google_emulator, device.device_id)["status"] == "DISABLED"
        device.refresh_from_db()
        assert device.status == "DISABLED" and device.payload["status"] == "DISABLED"
        change = DeviceChange.unscoped.get(device=device)
        assert change.job_id == job.pk and change.changes == {"status": ["ACTIVE", "DISABLED"]}
    actions = set(AuditEvent.unscoped.filter(tenant=tenant).values_list("action", flat=True))
    assert {"device.disable", "device.disable.finished"} <= actions
    result = operator.get(response["Location"]).content.decode()
    assert "3 sur 3 traités" in result


@pytest.mark.google_emulator(devices=130)
def test_bulk_on_the_filter_batches_by_50_after_a_typed_confirmation(
    operator, fleet, google_emulator, django_capture_on_commit_callbacks
):
    active = [d for d in fleet if d.status == "ACTIVE"]
    assert len(active) > 100
    url, job = prepare(operator, "disable", filter="status=ACTIVE&sort=model", scope="filter")
    assert job.total == len(active)
    assert job.selection == "filter:status=ACTIVE&sort=model"
    assert (
        confirm(operator, url, django_capture_on_commit_callbacks, typed_confirmation="12").status_code == 400
    )
    assert confirm(operator, url, django_capture_on_commit_callbacks).status_code == 400
    assert not batch_calls(google_emulator)

    response = confirm(operator, url, django_capture_on_commit_callbacks, typed_confirmation=str(len(active)))
    assert response.status_code == 302
    calls = batch_calls(google_emulator)
    assert len(calls) == math.ceil(len(active) / 50)
    assert all(len(c["body"]["deviceIds"]) <= 50 for c in calls)
    assert sorted(i for c in calls for i in c["body"]["deviceIds"]) == sorted(d.device_id for d in active)
    job.refresh_from_db()
    assert (job.status, job.succeeded) == ("succeeded", len(active))


@pytest.mark.google_emulator(devices=130)  # a seeded domain with deprovisioned devices (50 may have none)
def test_some_devices_fail_in_a_bulk_with_googles_reason(
    operator, fleet, google_emulator, django_capture_on_commit_callbacks
):
    active = [d for d in fleet if d.status == "ACTIVE"][:2]
    deprovisioned = next(d for d in fleet if d.status == "DEPROVISIONED")
    url, job = prepare(operator, "disable", [*active, deprovisioned])
    confirm(operator, url, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert (job.status, job.succeeded, job.failed) == ("partial", 2, 1)
    failed = DeviceActionItem.unscoped.get(job=job, status="failed")
    assert failed.google_device_id == deprovisioned.device_id
    assert "Illegal device state transition from DEPROVISIONED" in failed.message
    deprovisioned.refresh_from_db()
    assert deprovisioned.status == "DEPROVISIONED"
    page = operator.get(reverse("chromeos:device_job", kwargs={"pk": job.pk}), {"result": "failed"})
    assert "Illegal device state transition" in page.content.decode()
    assert [item.google_device_id for item, _ in page.context["rows"]] == [deprovisioned.device_id]


def test_reenable_reports_googles_licence_refusal(
    operator, fleet, google_emulator, django_capture_on_commit_callbacks
):
    disabled = [d for d in fleet if d.status == "DISABLED"][:1]
    assert disabled
    google_emulator.control("POST", "/licenses", {"available": 0})
    url, job = prepare(operator, "reenable", disabled)
    assert "consomme une licence" in operator.get(url).content.decode()
    confirm(operator, url, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert job.status == "failed"
    assert "No available licenses" in DeviceActionItem.unscoped.get(job=job).message

    google_emulator.control("POST", "/licenses", {"available": 5})
    url, job = prepare(operator, "reenable", disabled)
    confirm(operator, url, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert job.status == "succeeded"
    assert emulator_device(google_emulator, disabled[0].device_id)["status"] == "ACTIVE"


def test_deprovision_requires_one_of_googles_reasons(
    operator, fleet, google_emulator, django_capture_on_commit_callbacks
):
    device = next(d for d in fleet if d.status == "ACTIVE")
    url, _job = prepare(operator, "deprovision", [device])
    assert confirm(operator, url, django_capture_on_commit_callbacks).status_code == 400
    bad = confirm(
        operator, url, django_capture_on_commit_callbacks, deprovision_reason="DEPROVISION_REASON_UPGRADE"
    )
    assert bad.status_code == 400  # deprecated by Google: not offered
    assert not batch_calls(google_emulator)
    confirm(operator, url, django_capture_on_commit_callbacks, deprovision_reason=REASON)
    at_google = emulator_device(google_emulator, device.device_id)
    assert (at_google["status"], at_google["deprovisionReason"]) == ("DEPROVISIONED", REASON)
    assert batch_calls(google_emulator)[0]["body"]["deprovisionReason"] == REASON
    device.refresh_from_db()
    assert device.status == "DEPROVISIONED" and device.payload["deprovisionReason"] == REASON


# -- moves --------------------------------------------------------------------------------------------------
@pytest.mark.google_emulator(devices=70)
def test_move_batches_by_50_and_updates_local_rows(
    operator, fleet, google_emulator, django_capture_on_commit_callbacks, tenant
):
    target = "/Lyon/Équipe Réseau"
    chosen = fleet[:60]
    url, job = prepare(operator, "move", chosen)
    page = operator.get(url)
    assert target in page.content.decode()
    confirm(operator, url, django_capture_on_commit_callbacks, org_unit_path=target)
    calls = google_emulator.requests("directory.chromeosdevices.moveDevicesToOu")
    assert [len(c["body"]["deviceIds"]) for c in calls] == [50, 10]
    assert {c["params"]["orgUnitPath"] for c in calls} == {target}
    job.refresh_from_db()
    assert (job.status, job.succeeded) == ("succeeded", 60)
    unit_id = OrgUnit.unscoped.get(tenant=tenant, path=target).org_unit_id.removeprefix("id:")
    for device in chosen:
        device.refresh_from_db()
        assert (device.org_unit_path, device.org_unit_id) == (target, unit_id)
        assert emulator_device(google_emulator, device.device_id)["orgUnitPath"] == target


def test_a_refused_move_batch_is_retried_device_by_device(
    operator, fleet, google_emulator, django_capture_on_commit_callbacks
):
    chosen = fleet[:4]
    url, job = prepare(operator, "move", chosen)
    # Deleted at Google since the last sync: Google refuses the whole batch because of it.
    google_emulator.control("POST", "/devices/delete", {"device_ids": [chosen[1].device_id]})
    confirm(operator, url, django_capture_on_commit_callbacks, org_unit_path="/Paris")
    job.refresh_from_db()
    assert (job.status, job.succeeded, job.failed) == ("partial", 3, 1)
    failed = DeviceActionItem.unscoped.get(job=job, status="failed")
    assert failed.google_device_id == chosen[1].device_id and "unknown deviceId" in failed.message
    assert emulator_device(google_emulator, chosen[0].device_id)["orgUnitPath"] == "/Paris"


def test_move_offers_only_supported_org_units(
    operator, fleet, django_capture_on_commit_callbacks, google_emulator
):
    url, _job = prepare(operator, "move", fleet[:1])
    choices = [value for value, _label in operator.get(url).context["form"].fields["org_unit_path"].choices]
    assert "/Paris" in choices and "/Lyon/Équipe Réseau" in choices
    assert "/Lyon" not in choices  # exists at Google, not backed by LDAP: "non prise en charge"
    for target in ("/Nowhere", "/Lyon"):
        response = confirm(operator, url, django_capture_on_commit_callbacks, org_unit_path=target)
        assert response.status_code == 400
    assert not google_emulator.requests("directory.chromeosdevices.moveDevicesToOu")


# -- annotations --------------------------------------------------------------------------------------------
def test_edit_annotations_of_one_device_from_its_page(
    operator, fleet, google_emulator, django_capture_on_commit_callbacks
):
    device = fleet[0]
    response = operator.post(
        reverse("chromeos:device_action", kwargs={"pk": device.pk}), {"action": "annotate"}
    )
    url = response["Location"]
    page = operator.get(url)
    assert (
        page.context["form"].initial["annotated_user"] == device.annotated_user
    )  # starts from current values
    confirm(
        operator,
        url,
        django_capture_on_commit_callbacks,
        annotate_fields=["annotated_user", "annotated_location", "notes"],
        annotated_user="Zoé Lefèvre",
        annotated_location="Salle des profs",
        notes="",
    )
    at_google = emulator_device(google_emulator, device.device_id)
    assert at_google["annotatedUser"] == "Zoé Lefèvre"
    assert at_google["annotatedLocation"] == "Salle des profs"
    assert "notes" not in at_google
    device.refresh_from_db()
    assert (device.annotated_user, device.annotated_location, device.notes) == (
        "Zoé Lefèvre",
        "Salle des profs",
        "",
    )
    assert "zoe lefevre" in device.search_text  # the search column folds accents
    assert DeviceChange.unscoped.get(device=device).changes["annotated_user"][1] == "Zoé Lefèvre"


def test_bulk_annotation_writes_only_ticked_fields(
    operator, fleet, google_emulator, django_capture_on_commit_callbacks
):
    chosen = fleet[:3]
    before = {d.device_id: emulator_device(google_emulator, d.device_id).get("annotatedUser") for d in chosen}
    url, _job = prepare(operator, "annotate", chosen)
    confirm(
        operator,
        url,
        django_capture_on_commit_callbacks,
        annotate_fields=["annotated_location"],
        annotated_location="Chariot B",
        annotated_user="ignored",
    )
    for device in chosen:
        at_google = emulator_device(google_emulator, device.device_id)
        assert at_google["annotatedLocation"] == "Chariot B"
        assert at_google.get("annotatedUser") == before[device.device_id]
    assert all(
        set(r["body"]) == {"annotatedLocation"}
        for r in google_emulator.requests("directory.chromeosdevices.patch")
    )


def test_annotation_longer_than_google_allows_is_refused_before_google(
    operator, fleet, google_emulator, django_capture_on_commit_callbacks
):
    url, job = prepare(operator, "annotate", fleet[:1])
    response = confirm(
        operator, url, django_capture_on_commit_callbacks, annotate_fields=["notes"], notes="x" * 501
    )
    assert response.status_code == 400
    assert not google_emulator.requests("directory.chromeosdevices.patch")
    job.refresh_from_db()
    assert job.status == "draft"


# -- remote commands ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "action,command_type,extra",
    [
        ("cmd_reboot", "REBOOT", {}),
        ("cmd_screenshot", "TAKE_A_SCREENSHOT", {}),
        ("cmd_set_volume", "SET_VOLUME", {"volume": "35"}),
        ("cmd_wipe_users", "WIPE_USERS", {}),
        ("cmd_remote_powerwash", "REMOTE_POWERWASH", {"acknowledge_reenrollment": "on"}),
    ],
)
def test_each_remote_command_is_issued_and_tracked_to_its_final_state(
    operator, fleet, google_emulator, django_capture_on_commit_callbacks, action, command_type, extra
):
    google_emulator.control("POST", "/commands/behaviour", {"step_seconds": 0})  # final at the first poll
    device = next(d for d in fleet if d.status == "ACTIVE")
    url, job = prepare(operator, action, [device])
    confirm(operator, url, django_capture_on_commit_callbacks, **extra)
    command = DeviceCommand.unscoped.get(device=device)
    assert command.job_id == job.pk and command.command_id
    assert (command.state, command.result) == ("EXECUTED_BY_CLIENT", "SUCCESS")
    assert command.finished_at is not None
    issued = google_emulator.requests("admin.customer.devices.chromeos.issueCommand")
    assert [r["body"]["commandType"] for r in issued] == [command_type]
    if command_type == "SET_VOLUME":
        assert issued[0]["body"]["payload"] == '{"volume": 35}'
    page = operator.get(reverse("chromeos:device_detail", kwargs={"pk": device.pk})).content.decode()
    assert command_type in page and "Exécutée" in page


def test_powerwash_warns_about_reenrollment_and_needs_an_acknowledgement(
    operator, fleet, google_emulator, django_capture_on_commit_callbacks
):
    device = next(d for d in fleet if d.status == "ACTIVE")
    url, _job = prepare(operator, "cmd_remote_powerwash", [device])
    assert "se réinscriront automatiquement" in operator.get(url).content.decode()
    assert confirm(operator, url, django_capture_on_commit_callbacks).status_code == 400
    assert not google_emulator.requests("admin.customer.devices.chromeos.issueCommand")


def test_command_states_are_followed_until_final(
    google_integration, google_emulator, fleet, tenant, admin_user
):
    google_emulator.control("POST", "/commands/behaviour", {"step_seconds": 60, "outcome": "FAILURE"})
    device = next(d for d in fleet if d.status == "ACTIVE")
    with tenant_context(tenant):
        job = services.device_action_prepare(actor=admin_user, action="cmd_reboot", device_pks=[device.pk])
        services.device_action_confirm(job=job, actor=admin_user, params={})
    # Run the job ourselves, leaving the on-commit poll unexecuted, and poll step by step.
    assert services.device_action_job_run(job.pk)
    command = DeviceCommand.unscoped.get(job=job)
    assert command.state == "PENDING"
    assert services.device_commands_poll(job.pk) is False
    google_emulator.control("POST", "/clock/advance", {"seconds": 61})
    assert services.device_commands_poll(job.pk) is False
    command.refresh_from_db()
    assert command.state == "SENT_TO_CLIENT" and command.polls == 2
    google_emulator.control("POST", "/clock/advance", {"seconds": 200})
    assert services.device_commands_poll(job.pk) is True
    command.refresh_from_db()
    assert (command.state, command.result) == ("EXECUTED_BY_CLIENT", "FAILURE")
    assert "failed to execute" in command.result_detail


def test_expired_command_is_final(google_integration, google_emulator, fleet, tenant, admin_user):
    google_emulator.control("POST", "/commands/behaviour", {"step_seconds": 1, "outcome": "EXPIRED"})
    device = next(d for d in fleet if d.status == "ACTIVE")
    with tenant_context(tenant):
        job = services.device_action_prepare(actor=admin_user, action="cmd_reboot", device_pks=[device.pk])
        services.device_action_confirm(job=job, actor=admin_user, params={})
    services.device_action_job_run(job.pk)
    google_emulator.control("POST", "/clock/advance", {"seconds": 5})
    assert services.device_commands_poll(job.pk) is True
    assert DeviceCommand.unscoped.get(job=job).state == "EXPIRED"


def test_command_to_an_inactive_device_is_refused_with_googles_reason(
    operator, fleet, google_emulator, django_capture_on_commit_callbacks
):
    disabled = next(d for d in fleet if d.status == "DISABLED")
    url, job = prepare(operator, "cmd_reboot", [disabled])
    assert "pas actif" in operator.get(url).content.decode()
    confirm(operator, url, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert job.status == "failed"
    command = DeviceCommand.unscoped.get(device=disabled)
    assert command.state == "FAILED_TO_ISSUE" and "not active" in command.result_detail


# -- errors, confirmation rules, isolation ------------------------------------------------------------------
def test_transient_google_errors_are_retried_by_the_client(
    operator, fleet, google_emulator, django_capture_on_commit_callbacks
):
    google_emulator.add_fault(method="admin.customer.devices.chromeos.batchChangeStatus", status=503, count=2)
    device = next(d for d in fleet if d.status == "ACTIVE")
    url, job = prepare(operator, "disable", [device])
    confirm(operator, url, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert job.status == "succeeded"
    assert [r["status"] for r in batch_calls(google_emulator)] == [503, 503, 200]


def test_google_unavailable_for_good_fails_the_job_after_task_retries(
    google_integration, google_emulator, fleet, tenant, admin_user, settings, monkeypatch
):
    settings.GOOGLE_RETRY_ATTEMPTS = 1
    # Eager Celery then plays the task's retries in place instead of raising the first Retry.
    monkeypatch.setitem(device_action_job_run_task.app.conf, "task_eager_propagates", False)
    google_emulator.add_fault(
        method="admin.customer.devices.chromeos.batchChangeStatus", status=503, count=None
    )
    device = next(d for d in fleet if d.status == "ACTIVE")
    with tenant_context(tenant):
        job = services.device_action_prepare(actor=admin_user, action="disable", device_pks=[device.pk])
        services.device_action_confirm(job=job, actor=admin_user, params={})
    device_action_job_run_task.apply(args=(job.pk,))
    job.refresh_from_db()
    assert job.status == "failed"
    assert "indisponible" in job.error
    # The first run plus ACTION_MAX_RETRIES retries, each one call (the client retries nothing here).
    assert len(batch_calls(google_emulator)) == 6
    assert DeviceActionItem.unscoped.get(job=job).status == "failed"


def test_revoked_grant_fails_the_job_and_asks_for_reauthorization(
    operator, fleet, google_emulator, google_integration, django_capture_on_commit_callbacks
):
    google_emulator.control("POST", "/oauth/revoke", {})
    google_emulator.control("POST", "/oauth/expire-access-tokens", {})
    device = next(d for d in fleet if d.status == "ACTIVE")
    url, job = prepare(operator, "disable", [device])
    confirm(operator, url, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert job.status == "failed" and "réautorisation" in job.error
    google_integration.refresh_from_db()
    assert google_integration.status == "reauth_required"
    device.refresh_from_db()
    assert device.status == "ACTIVE"


def test_selection_is_fixed_when_drafted(operator, fleet, django_capture_on_commit_callbacks, tenant):
    url, job = prepare(operator, "cmd_reboot", filter="status=ACTIVE", scope="filter")
    total = job.total
    ChromeOSDeviceFactory(tenant=tenant, status="ACTIVE", device_id="arrived-after")
    page = operator.get(url)
    assert page.context["job"].total == total
    assert not DeviceActionItem.unscoped.filter(job=job, google_device_id="arrived-after").exists()


def test_confirmation_of_more_than_200_devices_shows_200_and_the_count(admin_client_, tenant):
    for n in range(230):
        ChromeOSDeviceFactory(tenant=tenant, serial_number=f"SER{n:04d}")
    url, _job = prepare(admin_client_, "cmd_remote_powerwash", filter="", scope="filter")
    page = admin_client_.get(url)
    assert len(page.context["preview"]) == 200 and page.context["more"] == 30
    html = page.content.decode()
    assert "SER0199" in html and "SER0200" not in html and "30 autres" in html
    assert 'name="typed_confirmation"' in html  # destructive and above 50


def test_typed_confirmation_only_for_destructive_actions_above_50(admin_client_, tenant):
    for _ in range(51):
        ChromeOSDeviceFactory(tenant=tenant)
    url, _job = prepare(admin_client_, "cmd_reboot", filter="", scope="filter")
    assert 'name="typed_confirmation"' not in admin_client_.get(url).content.decode()
    url, _job = prepare(admin_client_, "disable", filter="", scope="filter")
    assert 'name="typed_confirmation"' in admin_client_.get(url).content.decode()


def test_other_tenants_devices_cannot_be_selected(admin_client_, other_tenant, tenant):
    theirs = ChromeOSDeviceFactory(tenant=other_tenant)
    response = admin_client_.post(PREPARE, {"action": "disable", "scope": "selection", "ids": [theirs.pk]})
    assert response.status_code == 302 and response["Location"] == reverse("chromeos:device_list")
    assert not DeviceActionJob.unscoped.exists()


def test_removed_devices_are_never_acted_on(admin_client_, tenant):
    from django.utils import timezone

    gone = ChromeOSDeviceFactory(tenant=tenant, removed_at=timezone.now())
    here = ChromeOSDeviceFactory(tenant=tenant)
    _url, job = prepare(admin_client_, "disable", [gone, here])
    assert list(DeviceActionItem.unscoped.filter(job=job).values_list("device_id", flat=True)) == [here.pk]


def test_expired_draft_cannot_be_confirmed(admin_client_, tenant, django_capture_on_commit_callbacks):
    from datetime import timedelta

    device = ChromeOSDeviceFactory(tenant=tenant)
    url, job = prepare(admin_client_, "cmd_reboot", [device])
    DeviceActionJob.unscoped.filter(pk=job.pk).update(created_at=job.created_at - timedelta(hours=2))
    response = confirm(admin_client_, url, django_capture_on_commit_callbacks)
    assert response.status_code == 400 and "expiré" in response.content.decode()
    job.refresh_from_db()
    assert job.status == "draft"


def test_cancel_a_draft(admin_client_, tenant):
    url, job = prepare(admin_client_, "disable", [ChromeOSDeviceFactory(tenant=tenant)])
    response = admin_client_.post(reverse("chromeos:device_action_cancel", kwargs={"pk": job.pk}))
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == "cancelled"
    assert admin_client_.get(url)["Location"] == reverse("chromeos:device_job", kwargs={"pk": job.pk})


def test_a_confirmed_job_cannot_be_confirmed_twice(
    operator, fleet, google_emulator, django_capture_on_commit_callbacks
):
    device = next(d for d in fleet if d.status == "ACTIVE")
    url, _job = prepare(operator, "disable", [device])
    confirm(operator, url, django_capture_on_commit_callbacks)
    again = confirm(operator, url, django_capture_on_commit_callbacks)
    assert again.status_code == 302
    assert len(batch_calls(google_emulator)) == 1


def test_polling_reschedules_itself_with_growing_delays_until_final(
    google_integration, google_emulator, fleet, tenant, admin_user, monkeypatch
):
    from chromeos.tasks import actions as tasks

    google_emulator.control("POST", "/commands/behaviour", {"step_seconds": 60})
    device = next(d for d in fleet if d.status == "ACTIVE")
    with tenant_context(tenant):
        job = services.device_action_prepare(actor=admin_user, action="cmd_reboot", device_pks=[device.pk])
        services.device_action_confirm(job=job, actor=admin_user, params={})
    services.device_action_job_run(job.pk)
    scheduled: list[tuple[tuple[Any, ...], int]] = []
    monkeypatch.setattr(
        tasks.device_commands_poll_task,
        "apply_async",
        lambda args, countdown: scheduled.append((args, countdown)),
    )
    tasks.device_commands_poll_task(job.pk, 3)
    assert scheduled == [((job.pk, 4), services.command_poll_delay(4))]
    assert all(
        services.command_poll_delay(n) < 2 * 60 * 60 for n in range(1000)
    )  # below the visibility timeout
    tasks.device_commands_poll_task(job.pk, tasks.MAX_POLL_ATTEMPTS)  # the last attempt: no more
    assert len(scheduled) == 1
    google_emulator.control("POST", "/commands/complete", {})
    tasks.device_commands_poll_task(job.pk, 5)  # final now: nothing rescheduled
    assert len(scheduled) == 1
    assert DeviceCommand.unscoped.get(job=job).state == "EXECUTED_BY_CLIENT"
