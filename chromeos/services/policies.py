"""Assigning Blueprints and apps to Google org units and applying them through the Chrome Policy API.

The life of an assignment (:class:`~chromeos.models.PolicyAssignment`):

1. :func:`policy_assignment_create` — a supported (LDAP-backed, non-root) OU, a ChromeOS Blueprint or a
   distributable app with an install type. Nothing is sent to Google yet: state ``pending``.
2. :func:`policy_preview_apply` — reads what the OU resolves to now (``policies:resolve``) and shows it next to
   what the assignment would set.
3. :func:`policy_assignment_apply_request` → Celery → :func:`policy_assignment_apply`: snapshot what the OU held
   *directly* before the console's first write (the "restore" of step 5), then one ``orgunits:batchModify`` per
   schema namespace. ``applied_values`` records each namespace as Google confirms it.
4. The inventory (``chromeos.selectors.policies``) derives, per device, which assignments reach it through its
   OU and their state.
5. :func:`policy_assignment_unassign_request` → Celery → :func:`policy_assignment_unassign`, either restoring the
   snapshot (``batchModify`` with the old value where the OU had its own value, ``batchInherit`` elsewhere) or
   inheriting from the parent OU everywhere (``batchInherit``). The row is deleted once Google confirmed.

Google's errors, as the client raises them (see ``chromeos/google/errors.py``), and what happens here:

| error                      | assignment                           | task                                         |
|----------------------------|--------------------------------------|----------------------------------------------|
| ``TransientGoogleError``   | back to pending, the error noted     | retried by Celery (1, 5, 15 min), then failed |
| ``QuotaExhausted``         | failed, Google's message             | not retried: the admin applies again later   |
| ``AuthRevoked``            | failed; the integration is marked    | not retried                                  |
|                            | "réautorisation requise" if the      |                                              |
|                            | failing token is still the stored one|                                              |
| ``GooglePermissionDenied`` | failed, Google's message             | not retried                                  |
| ``GoogleNotFound``         | failed (the OU is gone at Google)    | not retried                                  |
| ``GoogleBadRequest``       | failed, Google's reason              | not retried                                  |
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from chromeos.google.client import GoogleClient
from chromeos.google.errors import GoogleError, TransientGoogleError
from chromeos.google.explain import error_detail
from chromeos.models import (
    AssignmentState,
    GoogleIntegration,
    IntegrationStatus,
    OrgUnit,
    PolicyAssignment,
    UnassignMode,
)
from chromeos.policy_schemas import (
    APP_POLICIES,
    SETTINGS_BY_KEY,
    app_install_choices,
    app_target_id,
    blueprint_writes,
    schema_namespace,
)
from chromeos.services.integration import integration_google_refused
from mdm import jobs
from mdm.models import App, Blueprint, Platform, User
from mdm.services import audit_record

logger = logging.getLogger(__name__)

CUSTOMER = "customers/my_customer"
RESOLVE_PAGE_SIZE = 1000
# An apply or a removal still "in progress" after this long lost its worker: the admin may ask again.
STUCK_AFTER = timedelta(minutes=15)
# Celery's waits before retrying an apply or a removal after Google stayed unavailable through the
# client's own backoff; then the assignment fails and the admin retries.
TASK_RETRY_COUNTDOWNS = (60, 5 * 60, 15 * 60)
# A preview is read while the admin waits: fewer retries than a background apply.
PREVIEW_ATTEMPTS = 2

Writes = dict[str, dict[str, Any]]  # {schema: {field: wire value}}


class PolicyError(Exception):
    """A request the console refuses, with a message for the admin."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RetryLater(Exception):
    """Google stayed unavailable: the task should run again after ``countdown`` seconds."""

    def __init__(self, countdown: int) -> None:
        super().__init__(countdown)
        self.countdown = countdown


# -- org units ----------------------------------------------------------------------------------------------
def google_org_unit_id(value: str) -> str:
    """Google spells OU ids ``id:03ph8a2z`` in the Directory API and ``03ph8a2z`` in policy targets."""
    return value.removeprefix("id:")


def org_unit_target(org_unit: OrgUnit) -> str:
    return f"orgunits/{google_org_unit_id(org_unit.org_unit_id)}"


def org_unit_unsupported_reason(org_unit: OrgUnit) -> str | None:
    """Why the console does not manage policies on this OU, or None when it does."""
    if org_unit.missing_since is not None:
        return _(
            "OU disparue : Google ne liste plus cette unité organisationnelle (supprimée ou recréée ailleurs). "
            "Ses affectations sont conservées ici : libérez-les ou recréez l'unité dans Google."
        )
    if org_unit.path == "/":
        return _(
            "Unité racine : Google ne permet pas d'y rétablir l'héritage, une affectation n'y pourrait pas être "
            "retirée. Affectez les configurations aux unités importées depuis l'annuaire LDAP."
        )
    if not org_unit.supported:
        return _(
            "Non prise en charge : seules les unités organisationnelles importées depuis une source LDAP sont "
            "prises en charge ; les unités locales ne le sont pas."
        )
    return None


# -- what an assignment writes --------------------------------------------------------------------------------
def assignment_target_keys(assignment: PolicyAssignment) -> dict[str, str]:
    if assignment.app is None:
        return {}
    app_id = app_target_id(assignment.app)
    if app_id is None:
        raise PolicyError(_("Google ne peut pas distribuer une appli de type fichier."))
    return {"app_id": app_id}


def assignment_desired(assignment: PolicyAssignment) -> Writes:
    """What the assignment sets at Google now (from the Blueprint's current settings)."""
    if assignment.blueprint is not None:
        return blueprint_writes(assignment.blueprint.settings or {})
    policy = APP_POLICIES[assignment.app_context]
    return {policy.schema: {policy.field: policy.values[assignment.install_type]}}


def assignment_is_outdated(assignment: PolicyAssignment) -> bool:
    """Applied, but the Blueprint changed since: Google holds other values than it now asks for."""
    return assignment.state == AssignmentState.APPLIED and assignment_desired(assignment) != (
        assignment.applied_values or {}
    )


def _blueprint_conflicts(assignment: PolicyAssignment, writes: Writes) -> list[str]:
    """Labels of settings another Blueprint on the same OU already sets (the two would overwrite each other)."""
    others = PolicyAssignment.objects.filter(org_unit=assignment.org_unit, blueprint__isnull=False).exclude(
        pk=assignment.pk
    )
    clashes = []
    for other in others.select_related("blueprint"):
        assert other.blueprint is not None
        theirs = blueprint_writes(other.blueprint.settings or {})
        for setting in SETTINGS_BY_KEY.values():
            if setting.field in writes.get(setting.schema, {}) and setting.field in theirs.get(
                setting.schema, {}
            ):
                clashes.append(f"{setting.label} ({other.blueprint.name})")
    return clashes


# -- create ---------------------------------------------------------------------------------------------------
def policy_assignment_create(
    *,
    integration: GoogleIntegration,
    org_unit: OrgUnit,
    actor: User,
    blueprint: Blueprint | None = None,
    app: App | None = None,
    app_context: str = "",
    install_type: str = "",
) -> PolicyAssignment:
    if integration.status != IntegrationStatus.ACTIVE:
        raise PolicyError(_("L'intégration Google n'est pas active."))
    if org_unit.integration_id != integration.pk:
        raise PolicyError(_("Cette unité organisationnelle n'appartient pas à l'intégration."))
    reason = org_unit_unsupported_reason(org_unit)
    if reason:
        raise PolicyError(reason)
    if (blueprint is None) == (app is None):
        raise PolicyError(_("Choisissez une configuration ou une appli."))
    assignment = PolicyAssignment(
        tenant=integration.tenant, integration=integration, org_unit=org_unit, assigned_by=actor
    )
    if blueprint is not None:
        if blueprint.platform != Platform.CHROMEOS:
            raise PolicyError(_("Seules les configurations ChromeOS s'appliquent aux unités Google."))
        writes = blueprint_writes(blueprint.settings or {})
        if not writes:
            raise PolicyError(_("Cette configuration ne définit aucun paramètre ChromeOS."))
        assignment.blueprint = blueprint
        if PolicyAssignment.objects.filter(org_unit=org_unit, blueprint=blueprint).exists():
            raise PolicyError(_("Cette configuration est déjà affectée à cette unité."))
        clashes = _blueprint_conflicts(assignment, writes)
        if clashes:
            raise PolicyError(
                _("Une autre configuration affectée à cette unité définit déjà : %(settings)s.")
                % {"settings": ", ".join(clashes)}
            )
    else:
        assert app is not None
        if app_context not in APP_POLICIES:
            raise PolicyError(_("Contexte d'installation inconnu."))
        allowed = dict(app_install_choices(app, app_context))
        if not allowed:
            raise PolicyError(_("Google ne peut pas distribuer cette appli dans ce contexte."))
        if install_type not in allowed:
            raise PolicyError(_("Ce type d'installation n'est pas possible dans ce contexte."))
        if PolicyAssignment.objects.filter(org_unit=org_unit, app=app, app_context=app_context).exists():
            raise PolicyError(_("Cette appli est déjà affectée à cette unité dans ce contexte."))
        assignment.app, assignment.app_context, assignment.install_type = app, app_context, install_type
    with transaction.atomic():
        assignment.save()
        audit_record(
            tenant=integration.tenant,
            actor=actor,
            action="policy.assign",
            target=str(assignment),
            details=_audit_details(assignment),
        )
    return assignment


def _audit_details(assignment: PolicyAssignment, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {"assignment_id": assignment.pk, "org_unit": assignment.org_unit.path}
    if assignment.blueprint is not None:
        details["blueprint_id"] = assignment.blueprint_id
        details["blueprint"] = assignment.blueprint.name
    if assignment.app is not None:
        details.update(
            app_id=assignment.app_id,
            app=assignment.app.name,
            app_context=assignment.app_context,
            install_type=assignment.install_type,
        )
    details.update(extra)
    return details


# -- Google calls ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Resolved:
    """A schema's effective value at an OU and the OU it comes from (bare Google id)."""

    value: dict[str, Any]
    source_org_unit_id: str


def policies_resolve(
    client: GoogleClient,
    target: str,
    schemas: Iterable[str],
    target_keys: dict[str, str],
    *,
    attempts: int | None = None,
) -> dict[str, Resolved]:
    """The effective value of each schema at ``target``: one paginated ``resolve`` per namespace."""
    wanted = set(schemas)
    found: dict[str, Resolved] = {}
    policies = client.chrome_policy().customers().policies()
    key: dict[str, Any] = {"targetResource": target}
    if target_keys:
        key["additionalTargetKeys"] = target_keys
    for namespace in sorted({schema_namespace(s) for s in wanted}):
        body: dict[str, Any] = {"policySchemaFilter": f"{namespace}.*", "policyTargetKey": key}
        body["pageSize"] = RESOLVE_PAGE_SIZE
        while True:
            page = client.execute(policies.resolve(customer=CUSTOMER, body=body), attempts=attempts)
            for entry in page.get("resolvedPolicies", []):
                value = entry.get("value") or {}
                schema = value.get("policySchema")
                keys = (entry.get("targetKey") or {}).get("additionalTargetKeys") or {}
                if schema in wanted and keys == target_keys:
                    source = (entry.get("sourceKey") or {}).get("targetResource", "")
                    found[schema] = Resolved(dict(value.get("value") or {}), source.removeprefix("orgunits/"))
            if not page.get("nextPageToken"):
                break
            body = {**body, "pageToken": page["nextPageToken"]}
    return found


def _by_namespace(schemas: Iterable[str]) -> list[list[str]]:
    """Schemas grouped per namespace: Google takes one namespace per batch call."""
    groups: dict[str, list[str]] = {}
    for schema in sorted(schemas):
        groups.setdefault(schema_namespace(schema), []).append(schema)
    return [groups[n] for n in sorted(groups)]


def _policy_key(target: str, target_keys: dict[str, str]) -> dict[str, Any]:
    key: dict[str, Any] = {"targetResource": target}
    if target_keys:
        key["additionalTargetKeys"] = dict(target_keys)
    return key


def _batch_modify(client: GoogleClient, target: str, target_keys: dict[str, str], writes: Writes) -> None:
    requests = [
        {
            "policyTargetKey": _policy_key(target, target_keys),
            "policyValue": {"policySchema": schema, "value": values},
            # A FieldMask travels as a comma-separated string in JSON.
            "updateMask": ",".join(sorted(values)),
        }
        for schema, values in sorted(writes.items())
    ]
    orgunits = client.chrome_policy().customers().policies().orgunits()
    client.execute(orgunits.batchModify(customer=CUSTOMER, body={"requests": requests}))


def _batch_inherit(
    client: GoogleClient, target: str, target_keys: dict[str, str], schemas: list[str]
) -> None:
    requests = [
        {"policyTargetKey": _policy_key(target, target_keys), "policySchema": s} for s in sorted(schemas)
    ]
    orgunits = client.chrome_policy().customers().policies().orgunits()
    client.execute(orgunits.batchInherit(customer=CUSTOMER, body={"requests": requests}))


def _snapshot(resolved: Resolved | None, org_unit: OrgUnit) -> dict[str, Any]:
    """What to remember of an OU's value before the console writes over it: only its own value restores."""
    direct = resolved is not None and resolved.source_org_unit_id == google_org_unit_id(org_unit.org_unit_id)
    return {"direct": direct, "value": resolved.value if direct and resolved else None}


@dataclass
class RevertPlan:
    """How to undo what the console wrote: values to write back, schemas to inherit."""

    modify: Writes = field(default_factory=dict)
    inherit: list[str] = field(default_factory=list)


def revert_plan(assignment: PolicyAssignment, schemas: Iterable[str], mode: str) -> RevertPlan:
    plan = RevertPlan()
    for schema in sorted(schemas):
        before = (assignment.previous_values or {}).get(schema) or {}
        if mode == UnassignMode.RESTORE and before.get("direct") and before.get("value"):
            # Fields the console set that the old value did not have stay as set: Google's updateMask cannot
            # clear one field, and inheriting the schema would drop the old value restored here.
            plan.modify[schema] = dict(before["value"])
        else:
            plan.inherit.append(schema)
    return plan


def _run_revert(
    client: GoogleClient,
    assignment: PolicyAssignment,
    plan: RevertPlan,
    on_done: Callable[[list[str]], None],
) -> None:
    _send_revert(
        client, org_unit_target(assignment.org_unit), assignment_target_keys(assignment), plan, on_done
    )


def _send_revert(
    client: GoogleClient,
    target: str,
    keys: dict[str, str],
    plan: RevertPlan,
    on_done: Callable[[list[str]], None],
) -> None:
    for group in _by_namespace(plan.inherit):
        _batch_inherit(client, target, keys, group)
        on_done(group)
    for group in _by_namespace(plan.modify):
        _batch_modify(client, target, keys, {s: plan.modify[s] for s in group})
        on_done(group)


# -- apply ----------------------------------------------------------------------------------------------------
POLICY_KIND = "chromeos.policyassignment"


# Past this, an apply or a removal still in progress (no task retry lasts this long: 1, 5, 15 min) lost its
# worker: the reaper fails it with the reason, and the admin decides (nothing is sent to Google again by itself).
REAP_AFTER = 2 * STUCK_AFTER


def policy_jobs_reap(now: datetime) -> int:
    """The reaper of policy jobs (registered in ``mdm.jobs``)."""
    # PENDING with an apply requested: its message was taken by a worker that died before claiming it (or lost
    # with the broker), or its task retry waited on a worker that died; no retry waits this long.
    in_progress = Q(state__in=(AssignmentState.APPLYING, AssignmentState.REMOVING)) | Q(
        state=AssignmentState.PENDING, apply_requested_at__isnull=False
    )
    stale = PolicyAssignment.unscoped.filter(in_progress, updated_at__lt=now - REAP_AFTER).select_related(
        "tenant", "org_unit", "blueprint", "app"
    )
    reaped = 0
    for assignment in stale[:500]:
        if jobs.publication_pending(POLICY_KIND, assignment.pk):
            continue  # waiting for the broker, not dead
        removing = assignment.state == AssignmentState.REMOVING
        message = _(
            "Interrompu : le worker s'est arrêté pendant l'opération chez Google (résultat incertain). "
            "Relancez-la."
        )
        done = PolicyAssignment.unscoped.filter(pk=assignment.pk, state=assignment.state).update(
            state=AssignmentState.REMOVAL_FAILED if removing else AssignmentState.FAILED,
            google_error=message,
            updated_at=now,
        )
        if done:
            reaped += 1
            audit_record(
                tenant=assignment.tenant,
                actor=None,
                action="policy.unassign_failed" if removing else "policy.apply_failed",
                target=str(assignment),
                details=_audit_details(assignment, error=message),
            )
    return reaped


def _is_stuck(assignment: PolicyAssignment) -> bool:
    return assignment.updated_at is not None and timezone.now() - assignment.updated_at > STUCK_AFTER


def policy_assignment_apply_request(*, assignment: PolicyAssignment, actor: User) -> PolicyAssignment:
    """The admin confirmed the preview: queue the apply (on commit)."""
    from chromeos.tasks.policies import policy_assignment_apply_task

    busy = assignment.state in (AssignmentState.APPLYING, AssignmentState.REMOVING)
    if busy and not _is_stuck(assignment):
        raise PolicyError(_("Une opération est déjà en cours sur cette affectation."))
    if assignment.state == AssignmentState.REMOVAL_FAILED:
        raise PolicyError(_("Le retrait de cette affectation a échoué : retirez-la de nouveau."))
    if assignment.integration.status != IntegrationStatus.ACTIVE:
        raise PolicyError(_("L'intégration Google n'est pas active."))
    reason = org_unit_unsupported_reason(assignment.org_unit)
    if reason:
        raise PolicyError(reason)
    with transaction.atomic():
        if not (assignment.state == AssignmentState.PENDING and assignment.apply_requested_at is not None):
            # A new request (asking again for one still queued or waiting for its retry keeps its marker).
            _request_begins(assignment)
        assignment.state = AssignmentState.PENDING
        assignment.apply_requested_at = timezone.now()
        assignment.save(
            update_fields=[
                "state",
                "apply_requested_at",
                "request_state_before",
                "request_taken_at",
                "updated_at",
            ]
        )
        audit_record(
            tenant=assignment.tenant,
            actor=actor,
            action="policy.apply",
            target=str(assignment),
            details=_audit_details(assignment),
        )
        pk = assignment.pk
        jobs.enqueue(policy_assignment_apply_task.name, pk, kind=POLICY_KIND, object_id=pk)
    return assignment


def _request_begins(assignment: PolicyAssignment) -> None:
    """Record the state before a new apply or removal request, what « Annuler » puts back. A request made while
    another operation was in flight (a stuck one, or an apply not finished) counts as taken: settings may
    already be at Google, so it cannot be withdrawn."""
    in_flight = assignment.state in (AssignmentState.APPLYING, AssignmentState.REMOVING) or (
        assignment.state == AssignmentState.PENDING and assignment.apply_requested_at is not None
    )
    assignment.request_state_before = assignment.state
    assignment.request_taken_at = timezone.now() if in_flight else None


def _claim(pk: int, from_states: tuple[str, ...], to_state: str) -> PolicyAssignment | None:
    """Move the assignment to ``to_state`` if it is in one of ``from_states``; None if another run has it, or if
    its request was withdrawn (« Annuler »: pending again with no apply requested). The first claim of a request
    marks it taken, under the row lock the cancel takes too: after that the request can no longer be withdrawn."""
    with transaction.atomic():
        assignment = (
            PolicyAssignment.unscoped.select_for_update(of=("self",))
            .select_related("integration", "org_unit", "blueprint", "app", "tenant")
            .filter(pk=pk)
            .first()
        )
        if assignment is None or assignment.state not in from_states:
            return None
        if assignment.state == AssignmentState.PENDING and assignment.apply_requested_at is None:
            return None
        assignment.state = to_state
        assignment.request_taken_at = assignment.request_taken_at or timezone.now()
        assignment.save(update_fields=["state", "request_taken_at", "updated_at"])
        return assignment


# -- cancel ---------------------------------------------------------------------------------------------------
def _request_open(assignment: PolicyAssignment) -> bool:
    return assignment.state in (AssignmentState.APPLYING, AssignmentState.REMOVING) or (
        assignment.state == AssignmentState.PENDING and assignment.apply_requested_at is not None
    )


def policy_cancel_refusal(assignment: PolicyAssignment) -> str | None:
    """Why the apply or removal requested last cannot be withdrawn, or None when it can: no worker took it, so
    nothing of it was sent to Google."""
    if not _request_open(assignment):
        return _("Aucune application ni aucun retrait en cours : rien à annuler.")
    if assignment.request_taken_at is not None:
        return _(
            "Des paramètres ont déjà été envoyés à Google : laissez l'application aller au bout, puis retirez "
            "l'affectation."
        )
    return None


def _locked_assignment(pk: int) -> PolicyAssignment | None:
    """The assignment, row-locked for the caller's transaction (its OU, Blueprint, app and tenant read with it),
    or None if it is gone."""
    return (
        PolicyAssignment.objects.select_for_update(of=("self",))
        .select_related("org_unit", "blueprint", "app", "tenant")
        .filter(pk=pk)
        .first()
    )


def policy_cancel_blocked(assignment: PolicyAssignment) -> str | None:
    """The reason the page shows instead of « Annuler » while a request runs that can no longer be withdrawn."""
    return policy_cancel_refusal(assignment) if _request_open(assignment) else None


def policy_assignment_cancel(*, assignment: PolicyAssignment, actor: User) -> PolicyAssignment:
    """« Annuler »: withdraw the apply or removal requested last, if no worker took it (nothing sent to Google).
    The assignment gets back the state it had before the request; the queued task, when it runs, finds the
    request withdrawn under the same row lock and does nothing. Audited."""
    with transaction.atomic():
        locked = _locked_assignment(assignment.pk)
        if locked is None:
            raise PolicyError(_("Aucune application ni aucun retrait en cours : rien à annuler."))
        refusal = policy_cancel_refusal(locked)
        if refusal:
            raise PolicyError(refusal)
        was = locked.state
        before = locked.request_state_before
        if before not in (
            AssignmentState.PENDING,
            AssignmentState.APPLIED,
            AssignmentState.FAILED,
            AssignmentState.REMOVAL_FAILED,
        ):
            before = AssignmentState.PENDING
        locked.state = before
        locked.apply_requested_at = None
        locked.removal_mode = ""
        locked.request_state_before = ""
        locked.save(
            update_fields=[
                "state",
                "apply_requested_at",
                "removal_mode",
                "request_state_before",
                "updated_at",
            ]
        )
        # The message may still wait for the broker: it would only find the request withdrawn.
        jobs.outbox_discard(POLICY_KIND, locked.pk)
        audit_record(
            tenant=locked.tenant,
            actor=actor,
            action="policy.cancel",
            target=str(locked),
            details=_audit_details(locked, was=was, back_to=before),
        )
    return locked


def _save(assignment: PolicyAssignment, *fields: str) -> None:
    # update(), not save(): the row may be gone (integration removed meanwhile); then there is nothing to write.
    values = {f: getattr(assignment, f) for f in fields}
    PolicyAssignment.unscoped.filter(pk=assignment.pk).update(updated_at=timezone.now(), **values)


def policy_assignment_apply(assignment_id: int, *, final_attempt: bool = True) -> PolicyAssignment | None:
    """Write the assignment's values at Google (the task's body). Raises :class:`RetryLater` to be retried."""
    assignment = _claim(
        assignment_id, (AssignmentState.PENDING, AssignmentState.APPLYING), AssignmentState.APPLYING
    )
    if assignment is None:
        logger.info("policy apply skipped: assignment %s not pending", assignment_id)
        return None
    try:
        _apply(assignment)
    except PolicyError as exc:
        return _finish_failed(assignment, exc.message, action="policy.apply_failed")
    except TransientGoogleError as exc:
        return _transient(assignment, exc, final_attempt, AssignmentState.PENDING, "policy.apply_failed")
    except GoogleError as exc:
        integration_google_refused(integration=assignment.integration, error=exc)
        return _finish_failed(assignment, _google_message(exc), action="policy.apply_failed")
    assignment.state = AssignmentState.APPLIED
    assignment.applied_at = timezone.now()
    assignment.google_error = ""
    _save(assignment, "state", "applied_at", "google_error")
    audit_record(
        tenant=assignment.tenant,
        actor=None,
        action="policy.applied",
        target=str(assignment),
        details=_audit_details(assignment, schemas=sorted(assignment.applied_values)),
    )
    return assignment


def _apply(assignment: PolicyAssignment) -> None:
    if assignment.integration.status != IntegrationStatus.ACTIVE:
        raise PolicyError(_("L'intégration Google n'est pas active."))
    reason = org_unit_unsupported_reason(assignment.org_unit)
    if reason:
        raise PolicyError(reason)
    if assignment.blueprint is not None and assignment.blueprint.platform != Platform.CHROMEOS:
        raise PolicyError(_("Seules les configurations ChromeOS s'appliquent aux unités Google."))
    desired = assignment_desired(assignment)
    if not desired:
        raise PolicyError(_("Cette configuration ne définit aucun paramètre ChromeOS."))
    if assignment.blueprint is not None:
        clashes = _blueprint_conflicts(assignment, desired)
        if clashes:
            raise PolicyError(
                _("Une autre configuration affectée à cette unité définit déjà : %(settings)s.")
                % {"settings": ", ".join(clashes)}
            )
    client = GoogleClient(assignment.integration)
    target, keys = org_unit_target(assignment.org_unit), assignment_target_keys(assignment)
    applied: Writes = dict(assignment.applied_values or {})

    # Remember what the OU held before the console's first write to each schema, and save it before writing:
    # a run that dies after Google accepted a batch must not snapshot the console's own value next time.
    unknown = [s for s in desired if s not in (assignment.previous_values or {})]
    if unknown:
        current = policies_resolve(client, target, unknown, keys)
        assignment.previous_values = {
            **(assignment.previous_values or {}),
            **{s: _snapshot(current.get(s), assignment.org_unit) for s in unknown},
        }
        _save(assignment, "previous_values")

    # Schemas the console wrote that the Blueprint no longer sets, or no longer sets whole: put back what was
    # there before, then write the current values.
    stale = [s for s, values in applied.items() if not set(values) <= set(desired.get(s, {}))]
    if stale:

        def reverted(schemas: list[str]) -> None:
            for schema in schemas:
                applied.pop(schema, None)
            assignment.applied_values = dict(applied)
            _save(assignment, "applied_values")

        _run_revert(client, assignment, revert_plan(assignment, stale, UnassignMode.RESTORE), reverted)

    for group in _by_namespace(desired):
        _batch_modify(client, target, keys, {s: desired[s] for s in group})
        applied.update({s: desired[s] for s in group})
        assignment.applied_values = dict(applied)
        _save(assignment, "applied_values")


def _google_message(exc: GoogleError) -> str:
    return error_detail(exc)[:2000]


def _finish_failed(assignment: PolicyAssignment, message: str, *, action: str) -> PolicyAssignment:
    removing = action == "policy.unassign_failed"
    assignment.state = AssignmentState.REMOVAL_FAILED if removing else AssignmentState.FAILED
    assignment.google_error = message
    _save(assignment, "state", "google_error")
    logger.warning("policy %s assignment=%s: %s", action, assignment.pk, message)
    audit_record(
        tenant=assignment.tenant,
        actor=None,
        action=action,
        target=str(assignment),
        details=_audit_details(assignment, error=message[:500]),
    )
    return assignment


def _transient(
    assignment: PolicyAssignment,
    exc: TransientGoogleError,
    final_attempt: bool,
    retry_state: str,
    action: str,
) -> PolicyAssignment:
    if final_attempt:
        return _finish_failed(assignment, _google_message(exc), action=action)
    assignment.state = retry_state
    assignment.google_error = _(
        "Google est momentanément indisponible ; nouvel essai automatique. (%(error)s)"
    ) % {"error": _google_message(exc)}
    _save(assignment, "state", "google_error")
    raise RetryLater(0)


# -- the integration removed ------------------------------------------------------------------------------------
def policy_assignments_restore_all(
    integration: GoogleIntegration, *, on_each: Callable[[], None] | None = None
) -> list[dict[str, str]]:
    """Before a removal revokes the grant: put every OU the console wrote policies on back to inherited from its
    parent (what the console can no longer see or undo afterwards). Never raises: the outcome per assignment is
    returned for the removal's report. ``on_each`` runs after each assignment (the removal's heartbeat)."""
    client = GoogleClient(integration)
    report: list[dict[str, str]] = []
    assignments = (
        PolicyAssignment.unscoped.filter(integration=integration)
        .exclude(applied_values={})
        .select_related("org_unit", "blueprint", "app", "tenant")
        .order_by("org_unit__path", "id")
    )
    for assignment in assignments:
        entry = {"assignment": assignment.subject_label, "org_unit": assignment.org_unit.path}
        try:
            plan = revert_plan(assignment, list(assignment.applied_values), UnassignMode.INHERIT)
            _run_revert(client, assignment, plan, lambda _schemas: None)
        except (GoogleError, PolicyError) as exc:
            message = exc.message if isinstance(exc, PolicyError) else _google_message(exc)
            report.append({**entry, "outcome": "failed", "detail": message[:500]})
        else:
            report.append({**entry, "outcome": "restored", "detail": ""})
        if on_each is not None:
            on_each()
    return report


# -- an OU that disappeared from Google -------------------------------------------------------------------------
def policy_assignment_release(*, assignment: PolicyAssignment, actor: User) -> None:
    """Forget an assignment whose OU disappeared from Google ("OU disparue"): nothing is sent to Google (the OU
    and what was set on it are gone there). The OU's row goes with its last assignment. Audited."""
    with transaction.atomic():
        locked = _locked_assignment(assignment.pk)
        if locked is None:
            return
        org_unit = locked.org_unit
        if org_unit.missing_since is None:
            raise PolicyError(
                _(
                    "Cette unité organisationnelle existe chez Google : retirez l'affectation (Google rétablit les valeurs)."
                )
            )
        details = _audit_details(
            locked, schemas=sorted(locked.applied_values or {}), reason="org_unit_missing"
        )
        label = str(locked)
        locked.delete()
        if not PolicyAssignment.objects.filter(org_unit=org_unit).exists():
            OrgUnit.unscoped.filter(pk=org_unit.pk, missing_since__isnull=False).delete()
        audit_record(
            tenant=locked.tenant, actor=actor, action="policy.release", target=label, details=details
        )


def retarget_reason(assignment: PolicyAssignment) -> str | None:
    """Why the assignment may be moved to another OU (its OU disappeared from Google, or lost its LDAP OU),
    or None when it may not (its OU is managed: unassign and assign instead)."""
    org_unit = assignment.org_unit
    if org_unit.missing_since is not None:
        return _("OU disparue : Google ne liste plus l'unité %(path)s.") % {"path": org_unit.path}
    if not org_unit.supported and org_unit.path != "/":
        return _(
            "L'unité LDAP de %(path)s a disparu ou a été renommée dans l'annuaire : elle n'est plus prise en charge."
        ) % {"path": org_unit.path}
    return None


def retarget_choices(assignment: PolicyAssignment) -> list[OrgUnit]:
    """Existing, supported OUs of the integration that could take the assignment instead."""
    qs = OrgUnit.objects.filter(
        integration_id=assignment.integration_id, ldap_org_unit__isnull=False, missing_since__isnull=True
    ).exclude(pk=assignment.org_unit_id)
    # One subquery, not two conditions on the relation: exclude() would match them on different rows.
    if assignment.blueprint_id is not None:
        taken = PolicyAssignment.objects.filter(blueprint_id=assignment.blueprint_id)
    else:
        taken = PolicyAssignment.objects.filter(app_id=assignment.app_id, app_context=assignment.app_context)
    qs = qs.exclude(pk__in=taken.values("org_unit_id"))
    return [ou for ou in qs.order_by("path") if ou.path != "/"]


def policy_assignment_retarget(
    *, assignment: PolicyAssignment, org_unit: OrgUnit, actor: User
) -> PolicyAssignment:
    """« Réaffecter »: move an assignment whose OU disappeared (from Google, or from the LDAP directory) to another
    existing OU. The new OU gets a new assignment, pending: the admin previews it and applies it as any other
    (nothing is written at Google from here). The old OU is released: forgotten when Google no longer has it;
    when it still exists at Google, what the console wrote there is put back (an unassign, « restore »). Audited
    as one ``policy.retarget`` event, with the events of the creation and of the release."""
    if retarget_reason(assignment) is None:
        raise PolicyError(
            _(
                "Cette unité organisationnelle est prise en charge : retirez l'affectation puis affectez la "
                "configuration à l'autre unité."
            )
        )
    if assignment.state in (AssignmentState.APPLYING, AssignmentState.REMOVING) and not _is_stuck(assignment):
        raise PolicyError(_("Une opération est déjà en cours sur cette affectation."))
    if org_unit.pk not in {ou.pk for ou in retarget_choices(assignment)}:
        raise PolicyError(
            _(
                "Choisissez une autre unité organisationnelle prise en charge, qui n'a pas déjà cette "
                "configuration ou cette appli."
            )
        )
    old = assignment.org_unit
    with transaction.atomic():
        moved = policy_assignment_create(
            integration=assignment.integration,
            org_unit=org_unit,
            actor=actor,
            blueprint=assignment.blueprint,
            app=assignment.app,
            app_context=assignment.app_context,
            install_type=assignment.install_type,
        )
        details = _audit_details(
            assignment,
            from_org_unit=old.path,
            to_org_unit=org_unit.path,
            new_assignment_id=moved.pk,
            schemas=sorted(assignment.applied_values or {}),
        )
        if old.missing_since is not None:
            policy_assignment_release(assignment=assignment, actor=actor)
        else:
            policy_assignment_unassign_request(assignment=assignment, mode=UnassignMode.RESTORE, actor=actor)
        audit_record(
            tenant=assignment.tenant,
            actor=actor,
            action="policy.retarget",
            target=str(moved),
            details=details,
        )
    return moved


# -- unassign -------------------------------------------------------------------------------------------------
def policy_assignment_unassign_request(*, assignment: PolicyAssignment, mode: str, actor: User) -> bool:
    """Start removing an assignment. Returns True if it was deleted at once (nothing to undo at Google)."""
    from chromeos.tasks.policies import policy_assignment_unassign_task

    if mode not in UnassignMode.values:
        raise PolicyError(_("Choisissez comment retirer l'affectation."))
    busy = assignment.state in (AssignmentState.APPLYING, AssignmentState.REMOVING)
    if busy and not _is_stuck(assignment):
        raise PolicyError(_("Une opération est déjà en cours sur cette affectation."))
    with transaction.atomic():
        details = _audit_details(assignment, mode=mode, schemas=sorted(assignment.applied_values or {}))
        if not assignment.applied_values:
            # Google holds nothing of this assignment: forget it here.
            assignment.delete()
            audit_record(
                tenant=assignment.tenant,
                actor=actor,
                action="policy.unassign",
                target=str(assignment),
                details=details,
            )
            return True
        if assignment.integration.status != IntegrationStatus.ACTIVE:
            raise PolicyError(_("L'intégration Google n'est pas active."))
        _request_begins(assignment)
        assignment.state = AssignmentState.REMOVING
        assignment.removal_mode = mode
        assignment.save(
            update_fields=["state", "removal_mode", "request_state_before", "request_taken_at", "updated_at"]
        )
        audit_record(
            tenant=assignment.tenant,
            actor=actor,
            action="policy.unassign",
            target=str(assignment),
            details=details,
        )
        pk = assignment.pk
        jobs.enqueue(policy_assignment_unassign_task.name, pk, kind=POLICY_KIND, object_id=pk)
    return False


def policy_assignment_unassign(assignment_id: int, *, final_attempt: bool = True) -> PolicyAssignment | None:
    """Undo at Google what the assignment wrote, then delete it (the task's body)."""
    assignment = _claim(assignment_id, (AssignmentState.REMOVING,), AssignmentState.REMOVING)
    if assignment is None:
        logger.info("policy unassign skipped: assignment %s not being removed", assignment_id)
        return None
    try:
        if assignment.integration.status != IntegrationStatus.ACTIVE:
            raise PolicyError(_("L'intégration Google n'est pas active."))
        applied = dict(assignment.applied_values or {})

        def undone(schemas: list[str]) -> None:
            for schema in schemas:
                applied.pop(schema, None)
            assignment.applied_values = dict(applied)
            _save(assignment, "applied_values")

        plan = revert_plan(assignment, list(applied), assignment.removal_mode or UnassignMode.INHERIT)
        _run_revert(GoogleClient(assignment.integration), assignment, plan, undone)
    except PolicyError as exc:
        return _finish_failed(assignment, exc.message, action="policy.unassign_failed")
    except TransientGoogleError as exc:
        return _transient(assignment, exc, final_attempt, AssignmentState.REMOVING, "policy.unassign_failed")
    except GoogleError as exc:
        integration_google_refused(integration=assignment.integration, error=exc)
        return _finish_failed(assignment, _google_message(exc), action="policy.unassign_failed")
    label, details = str(assignment), _audit_details(assignment, mode=assignment.removal_mode)
    PolicyAssignment.unscoped.filter(pk=assignment.pk).delete()
    audit_record(
        tenant=assignment.tenant, actor=None, action="policy.unassigned", target=label, details=details
    )
    return assignment


# -- a Blueprint or an app deleted ----------------------------------------------------------------------------
REVERT_KIND = "chromeos.policyrevert"


def policy_assignments_revert_on_delete(*, blueprint: Blueprint | None = None, app: App | None = None) -> int:
    """The Blueprint or app is being deleted, and its assignments with it (CASCADE): queue, on commit, putting
    back at Google what those assignments wrote ("restore"), since no row will be left to unassign from.

    Returns how many reverts were queued. Called from a ``pre_delete`` signal (see ``ChromeosConfig.ready``).
    """
    from chromeos.tasks.policies import policy_revert_detached_task

    qs = PolicyAssignment.unscoped.select_related("org_unit", "app", "blueprint", "tenant")
    qs = qs.filter(blueprint=blueprint) if blueprint is not None else qs.filter(app=app)
    queued = 0
    for assignment in qs.exclude(applied_values={}):
        try:
            keys = assignment_target_keys(assignment)
        except PolicyError:
            continue  # an app Google cannot address: nothing of it can be at Google
        plan = revert_plan(assignment, list(assignment.applied_values), UnassignMode.RESTORE)
        job = {
            "integration_id": assignment.integration_id,
            "target": org_unit_target(assignment.org_unit),
            "keys": keys,
            "modify": plan.modify,
            "inherit": plan.inherit,
            "label": str(assignment),
            "details": _audit_details(assignment, mode=UnassignMode.RESTORE, reason="subject_deleted"),
        }
        # Through the outbox: the assignment row goes with this transaction, so a revert the broker refused
        # would be lost for good (and the caller would get the broker's error after its commit).
        jobs.enqueue(policy_revert_detached_task.name, job, kind=REVERT_KIND, object_id=assignment.pk)
        queued += 1
    return queued


def policy_revert_detached(job: dict[str, Any]) -> bool:
    """Send a revert prepared by :func:`policy_assignments_revert_on_delete`. Returns whether Google took it."""
    integration = GoogleIntegration.unscoped.select_related("tenant").filter(pk=job["integration_id"]).first()
    if integration is None:
        return False  # the integration went away too: nothing to undo at Google from here
    plan = RevertPlan(modify=job["modify"], inherit=job["inherit"])
    try:
        if integration.status != IntegrationStatus.ACTIVE:
            raise PolicyError(_("L'intégration Google n'est pas active."))
        _send_revert(GoogleClient(integration), job["target"], job["keys"], plan, lambda _schemas: None)
    except (GoogleError, PolicyError) as exc:
        if isinstance(exc, GoogleError):
            integration_google_refused(integration=integration, error=exc)
        message = exc.message if isinstance(exc, PolicyError) else _google_message(exc)
        audit_record(
            tenant=integration.tenant,
            actor=None,
            action="policy.unassign_failed",
            target=job["label"],
            details={**job["details"], "error": message[:500]},
        )
        return False
    audit_record(
        tenant=integration.tenant,
        actor=None,
        action="policy.unassigned",
        target=job["label"],
        details=job["details"],
    )
    return True


# -- previews -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ValueView:
    """A value as the preview shows it, with where it comes from."""

    text: str
    source: str


@dataclass(frozen=True)
class PreviewRow:
    label: str
    schema: str
    field: str
    current: ValueView
    new: ValueView
    restore: ValueView | None = None

    @property
    def changed(self) -> bool:
        return self.current.text != self.new.text or self.current.source != self.new.source


@dataclass
class Preview:
    rows: list[PreviewRow]
    error: str = ""

    @property
    def changes(self) -> int:
        return sum(1 for r in self.rows if r.changed)


def _display(assignment: PolicyAssignment, schema: str, field_name: str, value: Any) -> tuple[str, str]:
    """(label of the setting, the value in words)."""
    if assignment.app is not None:
        policy = APP_POLICIES[assignment.app_context]
        return str(
            _("Type d'installation (%(context)s)") % {"context": assignment.get_app_context_display()}
        ), (policy.display(value))
    for setting in SETTINGS_BY_KEY.values():
        if setting.schema == schema and setting.field == field_name:
            return str(setting.label), setting.display(value)
    return f"{schema}.{field_name}", str(value) if value is not None else str(_("Non défini"))


def _source_label(resolved: Resolved | None, org_unit: OrgUnit, paths: dict[str, str]) -> str:
    if resolved is None:
        return str(_("valeur par défaut de Google"))
    if resolved.source_org_unit_id == google_org_unit_id(org_unit.org_unit_id):
        return str(_("définie sur cette unité"))
    path = paths.get(resolved.source_org_unit_id, resolved.source_org_unit_id)
    return str(_("héritée de %(path)s") % {"path": path})


def _org_unit_paths(org_unit: OrgUnit) -> dict[str, str]:
    units = OrgUnit.objects.filter(integration_id=org_unit.integration_id).values_list("org_unit_id", "path")
    return {google_org_unit_id(ou_id): path for ou_id, path in units}


def _parent(org_unit: OrgUnit) -> OrgUnit | None:
    if not org_unit.parent_org_unit_id:
        return None
    parent_id = google_org_unit_id(org_unit.parent_org_unit_id)
    return (
        OrgUnit.objects.filter(
            integration_id=org_unit.integration_id, org_unit_id__in=[parent_id, f"id:{parent_id}"]
        )
        .order_by("pk")
        .first()
    )


def _parent_target(org_unit: OrgUnit) -> str | None:
    if not org_unit.parent_org_unit_id:
        return None
    return f"orgunits/{google_org_unit_id(org_unit.parent_org_unit_id)}"


def _preview_blocker(assignment: PolicyAssignment) -> str | None:
    """Why no preview can be read from Google now (then Google is not called at all)."""
    if assignment.integration.status != IntegrationStatus.ACTIVE:
        return _("L'intégration Google n'est pas active.")
    return org_unit_unsupported_reason(assignment.org_unit)


def policy_preview_apply(assignment: PolicyAssignment) -> Preview:
    """What the OU resolves to now, next to what applying the assignment would set."""
    blocker = _preview_blocker(assignment)
    if blocker:
        return Preview(rows=[], error=blocker)
    desired = assignment_desired(assignment)
    org_unit = assignment.org_unit
    try:
        client = GoogleClient(assignment.integration)
        keys = assignment_target_keys(assignment)
        current = policies_resolve(
            client, org_unit_target(org_unit), desired, keys, attempts=PREVIEW_ATTEMPTS
        )
    except (GoogleError, PolicyError) as exc:
        if isinstance(exc, GoogleError):
            integration_google_refused(integration=assignment.integration, error=exc)
        return Preview(rows=[], error=_preview_error(exc))
    paths = _org_unit_paths(org_unit)
    here = str(_("définie sur cette unité"))
    rows = []
    for schema, values in sorted(desired.items()):
        resolved = current.get(schema)
        for field_name, new_value in sorted(values.items()):
            old = resolved.value.get(field_name) if resolved else None
            label, old_text = _display(assignment, schema, field_name, old)
            _label, new_text = _display(assignment, schema, field_name, new_value)
            source = (
                _source_label(resolved, org_unit, paths)
                if old is not None
                else str(_("valeur par défaut de Google"))
            )
            rows.append(
                PreviewRow(label, schema, field_name, ValueView(old_text, source), ValueView(new_text, here))
            )
    return Preview(rows=rows)


def policy_preview_unassign(assignment: PolicyAssignment) -> Preview:
    """For each value the assignment wrote: now, after "inherit" (``new``) and after "restore" (``restore``)."""
    if assignment.integration.status != IntegrationStatus.ACTIVE:
        return Preview(rows=[], error=_("L'intégration Google n'est pas active."))
    applied: Writes = assignment.applied_values or {}
    org_unit = assignment.org_unit
    keys = assignment_target_keys(assignment)
    try:
        client = GoogleClient(assignment.integration)
        current = policies_resolve(
            client, org_unit_target(org_unit), applied, keys, attempts=PREVIEW_ATTEMPTS
        )
        parent_target = _parent_target(org_unit)
        inherited = (
            policies_resolve(client, parent_target, applied, keys, attempts=PREVIEW_ATTEMPTS)
            if parent_target
            else {}
        )
    except (GoogleError, PolicyError) as exc:
        if isinstance(exc, GoogleError):
            integration_google_refused(integration=assignment.integration, error=exc)
        return Preview(rows=[], error=_preview_error(exc))
    paths = _org_unit_paths(org_unit)
    parent = _parent(org_unit)
    rows = []
    for schema, values in sorted(applied.items()):
        before = (assignment.previous_values or {}).get(schema) or {}
        for field_name in sorted(values):
            now = current.get(schema)
            now_value = now.value.get(field_name) if now else None
            label, now_text = _display(assignment, schema, field_name, now_value)
            from_parent = inherited.get(schema)
            parent_value = from_parent.value.get(field_name) if from_parent else None
            _label, parent_text = _display(assignment, schema, field_name, parent_value)
            if parent_value is None:
                parent_source = str(_("valeur par défaut de Google"))
            else:
                source_path = paths.get(from_parent.source_org_unit_id if from_parent else "", "")
                parent_source = str(
                    _("héritée de %(path)s") % {"path": source_path or (parent.path if parent else "")}
                )
            if before.get("direct") and (before.get("value") or {}).get(field_name) is not None:
                _label, restored = _display(assignment, schema, field_name, before["value"][field_name])
                restore = ValueView(restored, str(_("définie sur cette unité")))
            elif before.get("direct") and before.get("value"):
                # The old value did not set this field: it keeps the console's value (see revert_plan).
                restore = ValueView(now_text, str(_("définie sur cette unité")))
            else:
                restore = ValueView(parent_text, parent_source)
            now_source = (
                _source_label(now, org_unit, paths)
                if now_value is not None
                else str(_("valeur par défaut de Google"))
            )
            rows.append(
                PreviewRow(
                    label,
                    schema,
                    field_name,
                    ValueView(now_text, now_source),
                    ValueView(parent_text, parent_source),
                    restore,
                )
            )
    return Preview(rows=rows)


def _preview_error(exc: Exception) -> str:
    if isinstance(exc, PolicyError):
        return exc.message
    assert isinstance(exc, GoogleError)
    return _("Google n'a pas pu donner les valeurs actuelles : %(error)s") % {"error": _google_message(exc)}
