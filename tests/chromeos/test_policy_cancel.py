"""« Annuler » on an assignment: an apply or a removal that no worker took yet is withdrawn (nothing reaches
Google, the assignment gets back its state, the late task does nothing); once a worker took it, refused with
the reason. Against the emulator over HTTP, tasks run inline."""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.urls import reverse

from chromeos.models import AssignmentState, OrgUnit, PolicyAssignment, UnassignMode
from chromeos.services import policies as services
from chromeos.tasks.policies import policy_assignment_apply_task, policy_assignment_unassign_task
from mdm.jobs import publication_pending
from mdm.models import AuditEvent, Role
from tests.chromeos.policies_helpers import google_policies, mirror_org_units
from tests.factories import BlueprintFactory

BATCH_MODIFY = "chromepolicy.customers.policies.orgunits.batchModify"
BATCH_INHERIT = "chromepolicy.customers.policies.orgunits.batchInherit"
BROKER = "La file des tâches est indisponible"
SENT = "Des paramètres ont déjà été envoyés à Google"


@pytest.fixture
def ous(google_integration: Any, google_emulator: Any, in_tenant: Any) -> dict[str, OrgUnit]:
    return mirror_org_units(google_integration, google_emulator)


@pytest.fixture
def assignment(google_integration: Any, ous: Any, admin_user: Any, tenant: Any) -> PolicyAssignment:
    blueprint = BlueprintFactory(tenant=tenant, name="Postes", settings={"guest_mode": False})
    return services.policy_assignment_create(
        integration=google_integration, org_unit=ous["/Paris"], blueprint=blueprint, actor=admin_user
    )


def _fresh(assignment: PolicyAssignment) -> PolicyAssignment:
    return PolicyAssignment.objects.get(pk=assignment.pk)


def test_an_apply_no_worker_took_is_withdrawn_and_its_task_does_nothing(
    assignment, admin_user, google_emulator, django_capture_on_commit_callbacks
):
    google_emulator.control("DELETE", "/requests")
    with django_capture_on_commit_callbacks(execute=False):  # the broker never delivered it
        services.policy_assignment_apply_request(assignment=assignment, actor=admin_user)
    assert publication_pending(services.POLICY_KIND, assignment.pk)
    assert services.policy_cancel_refusal(_fresh(assignment)) is None

    cancelled = services.policy_assignment_cancel(assignment=_fresh(assignment), actor=admin_user)
    assert cancelled.state == AssignmentState.PENDING and cancelled.apply_requested_at is None
    assert not publication_pending(services.POLICY_KIND, assignment.pk)
    # The message was delivered anyway (published before the cancel): the task finds the request withdrawn.
    assert policy_assignment_apply_task.apply(args=[assignment.pk]).get() == "skipped"
    assert google_emulator.requests(BATCH_MODIFY) == []
    assert google_policies(google_emulator, "/Paris") == {}
    assert _fresh(assignment).state == AssignmentState.PENDING
    event = AuditEvent.objects.get(action="policy.cancel")
    assert event.actor == admin_user and event.details["was"] == "pending"


def test_a_reapply_withdrawn_leaves_the_assignment_applied(
    assignment, admin_user, google_emulator, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.policy_assignment_apply_request(assignment=assignment, actor=admin_user)
    applied = _fresh(assignment)
    assert applied.state == AssignmentState.APPLIED
    google_emulator.control("DELETE", "/requests")
    with django_capture_on_commit_callbacks(execute=False):
        services.policy_assignment_apply_request(assignment=applied, actor=admin_user)
    back = services.policy_assignment_cancel(assignment=_fresh(assignment), actor=admin_user)
    assert back.state == AssignmentState.APPLIED and back.applied_at == applied.applied_at
    assert policy_assignment_apply_task.apply(args=[assignment.pk]).get() == "skipped"
    assert google_emulator.requests(BATCH_MODIFY) == []


def test_a_removal_no_worker_took_is_withdrawn(
    assignment, admin_user, google_emulator, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.policy_assignment_apply_request(assignment=assignment, actor=admin_user)
    google_emulator.control("DELETE", "/requests")
    with django_capture_on_commit_callbacks(execute=False):
        services.policy_assignment_unassign_request(
            assignment=_fresh(assignment), mode=UnassignMode.INHERIT, actor=admin_user
        )
    back = services.policy_assignment_cancel(assignment=_fresh(assignment), actor=admin_user)
    assert back.state == AssignmentState.APPLIED and back.removal_mode == ""
    assert policy_assignment_unassign_task.apply(args=[assignment.pk]).get() == "skipped"
    assert google_emulator.requests(BATCH_INHERIT) == [] and google_emulator.requests(BATCH_MODIFY) == []
    assert google_policies(google_emulator, "/Paris")["chrome.devices.GuestMode"] == {
        "guestModeEnabled": False
    }


def test_refused_once_an_attempt_wrote_to_google(
    assignment, admin_user, google_emulator, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        services.policy_assignment_apply_request(assignment=assignment, actor=admin_user)
    # The worker takes it, Google stays unavailable: back to pending, waiting for the task's retry.
    google_emulator.add_fault(method=BATCH_MODIFY, status=503, count=None)
    with pytest.raises(services.RetryLater):
        services.policy_assignment_apply(assignment.pk, final_attempt=False)
    waiting = _fresh(assignment)
    assert waiting.state == AssignmentState.PENDING and waiting.apply_requested_at is not None
    assert SENT in (services.policy_cancel_refusal(waiting) or "")
    with pytest.raises(services.PolicyError, match=SENT):
        services.policy_assignment_cancel(assignment=waiting, actor=admin_user)
    assert _fresh(assignment).apply_requested_at is not None
    assert not AuditEvent.objects.filter(action="policy.cancel").exists()
    # Asking again keeps the marker: the new request is not cancellable either.
    services.policy_assignment_apply_request(assignment=_fresh(assignment), actor=admin_user)
    assert SENT in (services.policy_cancel_refusal(_fresh(assignment)) or "")


def test_nothing_to_cancel_on_an_idle_assignment(assignment, admin_user):
    with pytest.raises(services.PolicyError, match="rien à annuler"):
        services.policy_assignment_cancel(assignment=assignment, actor=admin_user)


def test_cancel_view_operator_ok_read_only_403_other_tenant_404(
    assignment,
    admin_user,
    client_for,
    make_user,
    other_tenant,
    google_emulator,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=False):
        services.policy_assignment_apply_request(assignment=assignment, actor=admin_user)
    url = reverse("chromeos:policy_cancel", kwargs={"pk": assignment.pk})
    page = reverse("chromeos:policy_assignment", kwargs={"pk": assignment.pk})
    read_only = client_for(make_user(assignment.tenant, Role.READ_ONLY))
    assert 'id="assignment-cancel"' not in read_only.get(page).content.decode()
    assert read_only.post(url).status_code == 403
    assert client_for(make_user(other_tenant, Role.ADMIN)).post(url).status_code == 404
    operator = client_for(make_user(assignment.tenant, Role.OPERATOR))
    shown = operator.get(page).content.decode()
    assert 'id="assignment-cancel"' in shown and f'action="{url}"' in shown
    # Its message waits in the outbox: the page says why it waits.
    assert 'id="assignment-broker"' in shown and BROKER in html.unescape(shown)
    response = operator.post(url)
    assert response.status_code == 302
    assert _fresh(assignment).apply_requested_at is None
    again = operator.post(url, follow=True)
    assert again.status_code == 200 and "rien à annuler" in html.unescape(again.content.decode())
    assert operator.get(url).status_code == 302


def test_the_page_says_why_it_cannot_be_cancelled_once_sent(
    assignment, admin_user, client_for, google_emulator, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        services.policy_assignment_apply_request(assignment=assignment, actor=admin_user)
    google_emulator.add_fault(method=BATCH_MODIFY, status=503, count=None)
    with pytest.raises(services.RetryLater):
        services.policy_assignment_apply(assignment.pk, final_attempt=False)
    page = client_for(admin_user).get(reverse("chromeos:policy_assignment", kwargs={"pk": assignment.pk}))
    text = html.unescape(page.content.decode())
    assert page.status_code == 200 and 'id="assignment-cancel"' not in text
    assert (
        "Des paramètres ont déjà été envoyés à Google : laissez l'application aller au bout, puis retirez "
        "l'affectation." in text
    )
    refused = client_for(admin_user).post(
        reverse("chromeos:policy_cancel", kwargs={"pk": assignment.pk}), follow=True
    )
    assert refused.status_code == 200 and SENT in html.unescape(refused.content.decode())
