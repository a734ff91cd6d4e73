"""Reads of policy assignments and of the per-device inventory they make.

Why the inventory is derived, not stored: what applies to a device is fully determined by facts the console
already keeps fresh — the device's org unit and its ``lastSync`` (written by every sync) and the assignments
of that OU and its ancestors with their state (written by apply and unassign). A stored per-device table
would copy devices × assignments and need invalidating on four events (sync, apply, unassign, Blueprint edit);
deriving reads the same facts with two indexed queries, is never stale, and disappears with its integration
by construction (devices and assignments cascade from it).

Per device, an assignment of its OU or an ancestor OU is:

* ``failed`` — Google refused it (its reason is shown);
* ``pending`` — not yet confirmed by Google, being removed, or confirmed but the device has not synced its
  policies since (``lastSync`` is Google's "last time the device synced with the policy settings");
* ``applied`` — confirmed by Google and synced by the device since;
* ``overridden`` — every setting it makes is also made by an assignment of an OU closer to the device.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from chromeos.models import AssignmentState, ChromeOSDevice, GoogleIntegration, OrgUnit, PolicyAssignment
from chromeos.services.policies import (
    POLICY_KIND,
    STUCK_AFTER,
    assignment_desired,
    assignment_is_outdated,
    org_unit_unsupported_reason,
    policy_cancel_blocked,
    policy_cancel_refusal,
)
from mdm import jobs

if TYPE_CHECKING:
    from mdm.models import App, Blueprint
    from mdm.services import Usage

BUSY_STATES = (AssignmentState.PENDING, AssignmentState.APPLYING, AssignmentState.REMOVING)


def current_integration() -> GoogleIntegration | None:
    return GoogleIntegration.objects.first()


def assignments() -> QuerySet[PolicyAssignment]:
    return PolicyAssignment.objects.select_related("org_unit", "blueprint", "app", "assigned_by")


def assignment_detail(pk: int) -> PolicyAssignment:
    return assignments().select_related("integration").get(pk=pk)


@dataclass(frozen=True)
class InheritedAssignment:
    """An assignment made on an ancestor OU, as a sub-OU receives it (« hérité de /Parent »)."""

    assignment: PolicyAssignment
    from_path: str


@dataclass
class OrgUnitRow:
    org_unit: OrgUnit
    unsupported_reason: str | None
    assignments: list[PolicyAssignment]
    inherited: list[InheritedAssignment] = field(default_factory=list)
    devices: int = 0  # in this OU itself
    devices_below: int = 0  # in this OU and its sub-OUs: what its assignments reach

    @property
    def depth(self) -> int:
        return 0 if self.org_unit.path == "/" else self.org_unit.path.count("/")

    @property
    def label(self) -> str:
        return self.org_unit.name if self.org_unit.path != "/" else "/"


def _tree_key(path: str) -> list[str]:
    # By segments, not by text: "/a b" must not fall between "/a" and "/a/b".
    return [part.casefold() for part in path.strip("/").split("/")] if path != "/" else []


def org_unit_device_counts(integration: GoogleIntegration) -> dict[str, int]:
    """Current devices per OU path (one grouped query over the (tenant, org_unit_path) index)."""
    rows = (
        ChromeOSDevice.objects.filter(integration=integration, removed_at__isnull=True)
        .order_by()
        .values_list("org_unit_path")
        .annotate(n=Count("id"))
    )
    return {(path or "/"): n for path, n in rows}


def org_unit_rows(integration: GoogleIntegration) -> list[OrgUnitRow]:
    """Every Google OU of the integration as a tree (parents before children), its support, its own
    assignments, those it inherits from its ancestors, and its devices (the overview page)."""
    by_ou: dict[int, list[PolicyAssignment]] = {}
    for assignment in assignments().filter(integration=integration):
        by_ou.setdefault(assignment.org_unit_id, []).append(assignment)
    units = sorted(OrgUnit.objects.filter(integration=integration), key=lambda ou: _tree_key(ou.path))
    by_path = {ou.path: ou for ou in units}
    counts = org_unit_device_counts(integration)
    below: dict[str, int] = {}
    for path, n in counts.items():
        for ancestor in ancestor_paths(path):
            below[ancestor] = below.get(ancestor, 0) + n
    rows = []
    for ou in units:
        inherited = [
            InheritedAssignment(a, parent_path)
            for parent_path in ancestor_paths(ou.path)[1:]
            if parent_path in by_path
            for a in by_ou.get(by_path[parent_path].pk, [])
        ]
        own = by_ou.get(ou.pk, [])
        rows.append(
            OrgUnitRow(
                ou,
                _row_reason(ou, own),
                own,
                inherited=inherited,
                devices=counts.get(ou.path, 0),
                devices_below=below.get(ou.path, 0),
            )
        )
    return rows


def _row_reason(ou: OrgUnit, assigned: list[PolicyAssignment]) -> str | None:
    """An OU that carries assignments but lost its LDAP OU (deleted or renamed in the directory) is not "a local
    OU": say what is true, that what the console wrote there is still applied at Google."""
    reason = org_unit_unsupported_reason(ou)
    if reason and assigned and not ou.supported and ou.missing_since is None and ou.path != "/":
        applied = [a for a in assigned if a.applied_values]
        if applied:
            return _(
                "Unité LDAP disparue ou renommée dans l'annuaire : cette unité n'est plus prise en charge, mais les "
                "règles de ses affectations (%(assignments)s) restent appliquées chez Google. Retirez-les, ou "
                "recréez l'unité dans l'annuaire."
            ) % {"assignments": ", ".join(a.subject_label for a in applied)}
    return reason


def applied_settings(assignment: PolicyAssignment) -> list[tuple[str, str]]:
    """What Google holds from this assignment, in words: (setting, value as a state)."""
    from chromeos.policy_schemas import APP_POLICIES, BLUEPRINT_SETTINGS

    rows = []
    for schema, values in sorted((assignment.applied_values or {}).items()):
        for field_name, value in sorted(values.items()):
            if assignment.app is not None and assignment.app_context in APP_POLICIES:
                policy = APP_POLICIES[assignment.app_context]
                rows.append(
                    (
                        str(
                            _("Type d'installation (%(context)s)")
                            % {"context": assignment.get_app_context_display()}
                        ),
                        policy.display(value),
                    )
                )
                continue
            setting = next(
                (s for s in BLUEPRINT_SETTINGS if s.schema == schema and s.field == field_name), None
            )
            rows.append(
                (str(setting.label), setting.display(value))
                if setting
                else (f"{schema}.{field_name}", str(value))
            )
    return rows


def ancestor_paths(path: str) -> list[str]:
    """``/a/b`` → ``["/a/b", "/a", "/"]``: the OUs whose policies a device of ``path`` inherits, nearest first."""
    path = "/" + path.strip("/") if path and path != "/" else "/"
    chain = [path]
    while chain[-1] != "/":
        chain.append(chain[-1].rsplit("/", 1)[0] or "/")
    return chain


def subtree_q(paths: list[str], column: str = "org_unit_path") -> Q:
    """Devices in any of these OUs or below (the ``(tenant, org_unit_path text_pattern_ops)`` index answers it)."""
    q = Q(pk__in=[])
    for path in paths:
        if path == "/":
            return Q()
        q |= Q(**{column: path}) | Q(**{f"{column}__startswith": path + "/"})
    return q


# -- per-device state -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InventoryEntry:
    assignment: PolicyAssignment
    via: str  # the OU path the assignment is made on
    inherited: bool  # made on an ancestor of the device's OU
    state: str  # applied / pending / failed / overridden
    detail: str
    outdated: bool = False

    @property
    def state_label(self) -> str:
        return {
            "applied": _("Appliquée"),
            "pending": _("En attente"),
            "failed": _("Échec"),
            "overridden": _("Remplacée"),
        }[self.state]


def device_state(assignment: PolicyAssignment, device: ChromeOSDevice) -> tuple[str, str]:
    """(state, detail) of one assignment on one device that it reaches."""
    state = assignment.state
    if state in (AssignmentState.FAILED, AssignmentState.REMOVAL_FAILED):
        return "failed", assignment.google_error
    if state in (AssignmentState.PENDING, AssignmentState.APPLYING):
        if assignment.google_error:
            return "pending", assignment.google_error
        return "pending", _("Pas encore appliquée chez Google.")
    if state == AssignmentState.REMOVING:
        return "pending", _("Retrait en cours chez Google.")
    if device.last_sync and assignment.applied_at and device.last_sync >= assignment.applied_at:
        return "applied", ""
    return "pending", _("Appliquée chez Google ; en attente de la prochaine synchronisation du périphérique.")


def _claims(assignment: PolicyAssignment) -> set[tuple[Any, ...]]:
    """What an assignment decides at its OU: (schema, field) pairs, per app for app schemas."""
    app_key = assignment.app_id if assignment.app_id is not None else None
    return {
        (schema, fld, app_key) for schema, values in assignment_desired(assignment).items() for fld in values
    }


def inventory_entries(device: ChromeOSDevice, reaching: list[PolicyAssignment]) -> list[InventoryEntry]:
    """Entries for the assignments that reach a device, nearest OU first, marking the overridden ones."""
    order = {path: depth for depth, path in enumerate(ancestor_paths(device.org_unit_path))}
    reaching = sorted(reaching, key=lambda a: (order.get(a.org_unit.path, 99), a.pk))
    claimed: set[tuple[Any, ...]] = set()
    entries = []
    for assignment in reaching:
        claims = _claims(assignment)
        overridden = bool(claims) and claims <= claimed
        claimed |= claims
        if overridden:
            state, detail = (
                "overridden",
                _("Une affectation d'une unité plus proche du périphérique la remplace."),
            )
        else:
            state, detail = device_state(assignment, device)
        entries.append(
            InventoryEntry(
                assignment=assignment,
                via=assignment.org_unit.path,
                inherited=assignment.org_unit.path != (device.org_unit_path or "/"),
                state=state,
                detail=detail,
                outdated=assignment_is_outdated(assignment),
            )
        )
    return entries


def device_policy_inventory(device: ChromeOSDevice) -> list[InventoryEntry]:
    """Which Blueprints and apps apply to a device through its OU (and the OU's ancestors), with their state."""
    reaching = list(
        assignments().filter(
            integration_id=device.integration_id, org_unit__path__in=ancestor_paths(device.org_unit_path)
        )
    )
    return inventory_entries(device, reaching)


# -- reports per Blueprint / app ------------------------------------------------------------------------------
def subject_assignments(
    *, blueprint: Blueprint | None = None, app: App | None = None
) -> list[PolicyAssignment]:
    qs = assignments()
    qs = qs.filter(blueprint=blueprint) if blueprint is not None else qs.filter(app=app)
    return list(qs.order_by("org_unit__path", "app_context", "pk"))


def subject_devices(subject_assignments: list[PolicyAssignment]) -> QuerySet[ChromeOSDevice]:
    """The current devices that the assignments reach (their OUs and sub-OUs)."""
    if not subject_assignments:
        return ChromeOSDevice.objects.none()
    integration_ids = {a.integration_id for a in subject_assignments}
    paths = sorted({a.org_unit.path for a in subject_assignments})
    return (
        ChromeOSDevice.objects.filter(integration_id__in=integration_ids, removed_at__isnull=True)
        .filter(subtree_q(paths))
        .order_by("serial_number", "pk")
    )


@dataclass(frozen=True)
class DeviceReportRow:
    device: ChromeOSDevice
    entries: list[InventoryEntry]


def device_report_rows(
    devices: list[ChromeOSDevice], subject_assignments: list[PolicyAssignment]
) -> list[DeviceReportRow]:
    """For a page of devices: the subject's assignments reaching each (nearest first) and their state."""
    if not devices:
        return []
    # Every assignment on the OUs of this page's devices: a closer assignment of another Blueprint can
    # override the subject's on a device.
    paths = {p for d in devices for p in ancestor_paths(d.org_unit_path)}
    nearby = list(
        assignments().filter(org_unit__path__in=paths, integration_id__in={d.integration_id for d in devices})
    )
    subject_ids = {a.pk for a in subject_assignments}
    rows = []
    for device in devices:
        chain = set(ancestor_paths(device.org_unit_path))
        reaching = [
            a for a in nearby if a.org_unit.path in chain and a.integration_id == device.integration_id
        ]
        entries = [e for e in inventory_entries(device, reaching) if e.assignment.pk in subject_ids]
        rows.append(DeviceReportRow(device, entries))
    return rows


def assignment_device_counts(assignment: PolicyAssignment) -> dict[str, int]:
    """Devices the assignment reaches, and how many synced their policies since it was applied."""
    devices = ChromeOSDevice.objects.filter(
        integration_id=assignment.integration_id, removed_at__isnull=True
    ).filter(subtree_q([assignment.org_unit.path]))
    total = devices.count()
    synced = 0
    if assignment.state == AssignmentState.APPLIED and assignment.applied_at:
        synced = devices.filter(last_sync__gte=assignment.applied_at).count()
    return {"total": total, "synced": synced}


def assignment_busy(assignment: PolicyAssignment) -> bool:
    """Google is working on it. A new assignment is PENDING too, but idle until its apply is requested; and an
    operation whose worker was lost (nothing happened for STUCK_AFTER) lets the admin ask again."""
    if assignment.state not in BUSY_STATES:
        return False
    if assignment.state == AssignmentState.PENDING and assignment.apply_requested_at is None:
        return False
    return not (assignment.updated_at and timezone.now() - assignment.updated_at > STUCK_AFTER)


def assignment_job(assignment: PolicyAssignment) -> dict[str, Any]:
    """What the state panel says of the apply or removal requested last: busy (polled), « Annuler » offered,
    why it is not, and whether its message still waits for the broker."""
    cancel_blocked = policy_cancel_blocked(assignment)
    can_cancel = policy_cancel_refusal(assignment) is None
    return {
        "busy": assignment_busy(assignment),
        "can_cancel": can_cancel,
        "cancel_blocked": cancel_blocked,
        # Not taken by a worker yet is exactly « can be cancelled ».
        "waits_for_broker": jobs.waits_for_broker(POLICY_KIND, assignment.pk, queued=can_cancel),
    }


def any_busy(rows: list[PolicyAssignment]) -> bool:
    return any(assignment_busy(a) for a in rows)


def subject_usages(subject: Blueprint | App) -> list[Usage]:
    """The OU assignments of a Blueprint or an app, as ``mdm.services.subject_usages`` lists them (any state:
    one still being removed holds Google values too)."""
    from mdm.models import Blueprint
    from mdm.services import Usage

    lookup = {"blueprint": subject} if isinstance(subject, Blueprint) else {"app": subject}
    rows = PolicyAssignment.unscoped.filter(tenant_id=subject.tenant_id, **lookup).select_related("org_unit")
    return [
        Usage(
            label=_("ChromeOS : %(ou)s (%(state)s)")
            % {"ou": row.org_unit.path, "state": row.get_state_display()}
            if row.blueprint_id
            else _("ChromeOS : %(ou)s, %(install)s, %(context)s (%(state)s)")
            % {
                "ou": row.org_unit.path,
                "install": row.get_install_type_display(),
                "context": row.get_app_context_display(),
                "state": row.get_state_display(),
            },
            url=reverse("chromeos:policy_assignment", args=[row.pk]),
        )
        for row in rows
    ]


# -- the inventory of a Blueprint or an app, as counts per state -------------------------------------------------
INVENTORY_STATES = ("applied", "pending", "failed", "overridden")


def inventory_state_label(state: str) -> str:
    return {
        "applied": _("Appliquée"),
        "pending": _("En attente"),
        "failed": _("Échec"),
        "overridden": _("Remplacée"),
    }[state]


@dataclass
class InventoryGroup:
    """The devices of one OU that one assignment of the subject reaches, counted per state."""

    org_unit_path: str  # where the devices are
    assignment: PolicyAssignment  # made on this OU or an ancestor
    total: int
    counts: dict[str, int]
    detail: str
    # Which of the OU's devices are in each state (a device's state only depends on its lastSync here).
    device_q: dict[str, Q]

    @property
    def via(self) -> str:
        return self.assignment.org_unit.path

    @property
    def inherited(self) -> bool:
        return self.via != self.org_unit_path

    @property
    def cells(self) -> list[tuple[str, int]]:
        return [(state, self.counts.get(state, 0)) for state in INVENTORY_STATES]


@dataclass(frozen=True)
class InventoryFilter:
    state: str = ""  # one of INVENTORY_STATES, or every state
    org_unit: str = ""  # the devices' OU, sub-OUs included

    @property
    def active(self) -> bool:
        return bool(self.state or self.org_unit)

    def matches(self, group: InventoryGroup) -> bool:
        if self.org_unit and self.org_unit != "/":
            path = self.org_unit.rstrip("/")
            if group.org_unit_path != path and not group.org_unit_path.startswith(path + "/"):
                return False
        return not self.state or group.counts.get(self.state, 0) > 0


def inventory_filter(state: str | None, org_unit: str | None) -> InventoryFilter:
    """From the page's query: unknown states and odd paths filter nothing rather than fail."""
    state = state if state in INVENTORY_STATES else ""
    path = (org_unit or "").strip()[:1024]
    if path and not path.startswith("/"):
        path = "/" + path
    return InventoryFilter(state=state or "", org_unit=path)


def inventory_groups(subject_assignments: list[PolicyAssignment]) -> list[InventoryGroup]:
    """Per device OU and per assignment of the subject: how many devices are applied, pending, failed or
    overridden. Three queries whatever the fleet's size: the devices grouped by OU (with, per applied assignment,
    how many synced their policies since), and the assignments of those OUs' ancestors (overrides)."""
    if not subject_assignments:
        return []
    applied_at = {
        a.pk: a.applied_at
        for a in subject_assignments
        if a.state == AssignmentState.APPLIED and a.applied_at is not None
    }
    synced = {f"synced_{pk}": Count("id", filter=Q(last_sync__gte=when)) for pk, when in applied_at.items()}
    by_path: list[dict[str, Any]] = [
        dict(row)
        for row in subject_devices(subject_assignments)
        .order_by()
        .values("org_unit_path", "integration_id")
        .annotate(total=Count("id"), **synced)
    ]
    if not by_path:
        return []
    paths = {p for row in by_path for p in ancestor_paths(row["org_unit_path"])}
    nearby = list(
        assignments().filter(
            org_unit__path__in=paths, integration_id__in={row["integration_id"] for row in by_path}
        )
    )
    subject_ids = {a.pk for a in subject_assignments}
    groups = []
    for row in by_path:
        path = row["org_unit_path"] or "/"
        chain = set(ancestor_paths(path))
        reaching = [
            a for a in nearby if a.org_unit.path in chain and a.integration_id == row["integration_id"]
        ]
        probe = ChromeOSDevice(org_unit_path=path, integration_id=row["integration_id"])  # never synced
        here = Q(integration_id=row["integration_id"], org_unit_path=row["org_unit_path"])
        for entry in inventory_entries(probe, reaching):
            if entry.assignment.pk not in subject_ids:
                continue
            total = row["total"]
            pk = entry.assignment.pk
            if entry.state == "pending" and pk in applied_at:
                # Confirmed by Google: applied on the devices that synced their policies since.
                done = row[f"synced_{pk}"]
                counts = {"applied": done, "pending": total - done}
                after = Q(last_sync__gte=applied_at[pk])
                device_q = {"applied": here & after, "pending": here & ~after}  # ~ keeps the never-synced
                detail = entry.detail if total - done else ""
            else:
                counts = {entry.state: total}
                device_q = {entry.state: here}
                detail = entry.detail
            groups.append(InventoryGroup(path, entry.assignment, total, counts, detail, device_q))
    groups.sort(key=lambda g: (_tree_key(g.via), _tree_key(g.org_unit_path)))
    return groups


def inventory_totals(groups: list[InventoryGroup]) -> dict[str, int]:
    totals = dict.fromkeys(INVENTORY_STATES, 0)
    for group in groups:
        for state, n in group.counts.items():
            totals[state] += n
    return totals


def inventory_devices(
    subject_assignments: list[PolicyAssignment], groups: list[InventoryGroup], flt: InventoryFilter
) -> QuerySet[ChromeOSDevice]:
    """The devices the filter picks out of the groups (the list below the counts, and the CSV export)."""
    q = Q(pk__in=[])
    for group in groups:
        if not flt.matches(group):
            continue
        for state, state_q in group.device_q.items():
            if not flt.state or state == flt.state:
                q |= state_q
    return subject_devices(subject_assignments).filter(q)


def inventory_rows(
    devices: list[ChromeOSDevice], subject_assignments: list[PolicyAssignment], flt: InventoryFilter
) -> list[DeviceReportRow]:
    """The devices' entries for the subject, only those in the filtered state."""
    rows = device_report_rows(devices, subject_assignments)
    if flt.state:
        rows = [DeviceReportRow(r.device, [e for e in r.entries if e.state == flt.state]) for r in rows]
    return rows
