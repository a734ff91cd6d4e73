"""The table of the fault suite: every kind of background job, said once.

Each row (:class:`Kind`) knows, for its job kind:

* how to build the little world it needs (``build``) and start one job through the console's own service
  (``start``: the row is written and its message goes through the outbox, as when an admin clicks);
* how to read its state, and which states are ends (``ended``: done, failed or cancelled) and successes;
* what "applied at Google" means in the emulator's request log (``applied``: per item, how many writes
  Google answered 2xx), and whether re-sending the same write is harmless (``idempotent``);
* what nothing but an admin's decision may remove (``kept``: counts of rows read before and after);
* which Google call does its work (``google_method``: where the Google faults are aimed) and how to slow that
  call so that a kill lands in the middle of the job (``slow``);
* how to make its dead-worker detection short in the reaping process (``shorten``: minutes in production).

The tests (``test_google_faults.py``, ``test_broker_faults.py``, ``test_worker_kills.py``) take every row of
:data:`KINDS` against every fault: one row each, no copies.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
from django.utils import timezone

from chromeos.models import (
    AssignmentState,
    ChromeOSDevice,
    DeviceActionItem,
    DeviceActionJob,
    GoogleIntegration,
    OrgUnit,
    PolicyAssignment,
    RemovalRun,
    RemovalStatus,
    SyncRun,
    SyncTrigger,
    UnassignMode,
)
from chromeos.services import devices as device_services
from chromeos.services import policies as policy_services
from google_emulator.testing import EmulatorHandle
from mdm.models import Tenant, User
from mdm.tenancy import tenant_context
from tests.factories import BlueprintFactory

LIST = "directory.chromeosdevices.list"
PATCH = "directory.chromeosdevices.patch"
ISSUE_COMMAND = "admin.customer.devices.chromeos.issueCommand"
BATCH_MODIFY = "chromepolicy.customers.policies.orgunits.batchModify"
BATCH_INHERIT = "chromepolicy.customers.policies.orgunits.batchInherit"
REVOKE = "oauth2.revoke"
# Every call that changes something at Google: a job of one kind must not send another kind's writes.
WRITES = (
    PATCH,
    ISSUE_COMMAND,
    BATCH_MODIFY,
    BATCH_INHERIT,
    "admin.customer.devices.chromeos.batchChangeStatus",
    "directory.chromeosdevices.moveDevicesToOu",
)

BLUEPRINT_SETTINGS = {
    "guest_mode": False,
    "sign_in_restriction": "DEVICE_ALLOW_NEW_USERS_ENUM_RESTRICTED_LIST",
    "sign_in_allowlist": ["*@example.com"],
    "incognito_mode": "INCOGNITO_MODE_AVAILABILITY_ENUM_UNAVAILABLE",
    "managed_guest_incognito_mode": "INCOGNITO_MODE_AVAILABILITY_ENUM_FORCED",
}
DEVICES_PER_JOB = 40


@dataclass
class World:
    """What one job of one kind runs against, and the request log's position when it started."""

    request: pytest.FixtureRequest
    tenant: Tenant
    admin: User
    emulator: EmulatorHandle
    integration: GoogleIntegration | None = None
    devices: list[ChromeOSDevice] = field(default_factory=list)
    assignment_pk: int | None = None
    directory: Any = None
    log_start: int = 0

    def mark(self) -> None:
        """From now on, the request log counts for this job (what setting the world up sent does not)."""
        self.log_start = len(self.emulator.requests())

    def requests(self, method: str) -> list[dict[str, Any]]:
        return [r for r in self.emulator.requests()[self.log_start :] if r["method"] == method]


def _ok(entry: dict[str, Any]) -> bool:
    return 200 <= int(entry["status"]) < 300


class Kind:
    name: ClassVar[str]
    # The ``kind`` of its outbox messages (mdm.jobs.enqueue).
    outbox_kind: ClassVar[str]
    # About how long one job of this kind lasts here, slowed down (seconds): where a kill may land.
    kill_window: ClassVar[float] = 2.0
    google_method: ClassVar[str | None] = None
    # Re-sending the same write after a timeout changes nothing at Google (a PATCH of the same value...).
    idempotent: ClassVar[bool] = True
    ended: ClassVar[frozenset[str]]
    succeeded: ClassVar[frozenset[str]]
    # A delay on its Google calls (ms) so that a job lasts long enough for a kill to land inside it.
    slow_ms: ClassVar[int] = 0

    def build(self, request: pytest.FixtureRequest) -> World:
        tenant = request.getfixturevalue("tenant")
        admin = request.getfixturevalue("admin_user")
        emulator = request.getfixturevalue("google_emulator")
        integration = request.getfixturevalue("google_integration")
        return World(request=request, tenant=tenant, admin=admin, emulator=emulator, integration=integration)

    def start(self, world: World) -> int:
        raise NotImplementedError

    def state(self, world: World, pk: int) -> str:
        raise NotImplementedError

    def reason(self, world: World, pk: int) -> str:
        raise NotImplementedError

    def items(self, world: World) -> int:
        """How many items the job applies at Google (0: it writes nothing there)."""
        return 0

    def applied(self, world: World) -> Counter[str]:
        """Per item, how many of its writes Google accepted since the job started."""
        return Counter()

    def kept(self, world: World) -> dict[str, int]:
        """Counts of what nothing but an admin's decision may remove."""
        tenant = world.tenant
        return {
            "devices": ChromeOSDevice.unscoped.filter(tenant=tenant, removed_at__isnull=True).count(),
            "org_units": OrgUnit.unscoped.filter(tenant=tenant).count(),
            "assignments": PolicyAssignment.unscoped.filter(tenant=tenant).count(),
        }

    def expected_kept(self, world: World, before: dict[str, int], state: str) -> dict[str, int]:
        """What ``kept`` must read after the job ended in ``state`` (by default: everything still there)."""
        return before

    def shorten(self, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        """Dead-worker detection in seconds instead of minutes, in the reaping (test) process only."""

    def last_attempt(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Make the task's first run its last one (its retries wait minutes on Celery's countdowns)."""


# -- ChromeOS sync ---------------------------------------------------------------------------------------------
class ChromeOSSync(Kind):
    name = "chromeos_sync"
    outbox_kind = "chromeos.syncrun"
    kill_window = 2.0
    google_method = LIST
    ended = frozenset({"succeeded", "partial", "guarded", "failed", "skipped"})
    succeeded = frozenset({"succeeded"})
    slow_ms = 300

    def build(self, request: pytest.FixtureRequest) -> World:
        world = super().build(request)
        request.getfixturevalue("settings").CHROMEOS_SYNC_PAGE_SIZE = 10
        from tests.chromeos.test_device_actions import mirror_fleet

        assert world.integration is not None
        world.devices = mirror_fleet(world.emulator, world.integration)
        return world

    def shorten(self, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        # A RUNNING run is dead as soon as its lock is free; a QUEUED one a worker took and died with.
        settings.CHROMEOS_SYNC_QUEUED_TIMEOUT_SECONDS = 3

    def start(self, world: World) -> int:
        from chromeos.services.sync import sync_request

        assert world.integration is not None
        run, created = sync_request(integration=world.integration, trigger=SyncTrigger.MANUAL)
        assert created
        return run.pk

    def state(self, world: World, pk: int) -> str:
        return SyncRun.unscoped.get(pk=pk).status

    def reason(self, world: World, pk: int) -> str:
        return SyncRun.unscoped.get(pk=pk).error


# -- LDAP sync -------------------------------------------------------------------------------------------------
class LdapSync(Kind):
    name = "ldap_sync"
    outbox_kind = "ldap_sync.ldapsyncrun"
    # The demo directory (320 people) is read and applied in well under a second here.
    kill_window = 0.6
    ended = frozenset({"succeeded", "partial", "guarded", "failed", "skipped"})
    succeeded = frozenset({"succeeded"})

    def build(self, request: pytest.FixtureRequest) -> World:
        from ldap_sync import services
        from ldap_sync.models import LdapSyncRun

        tenant = request.getfixturevalue("tenant")
        admin = request.getfixturevalue("admin_user")
        emulator = request.getfixturevalue("google_emulator")
        directory = request.getfixturevalue("make_directory")(tenant)
        world = World(request=request, tenant=tenant, admin=admin, emulator=emulator, directory=directory)
        # A first import, so that a run killed later has rows it could wrongly remove.
        first = LdapSyncRun.unscoped.create(tenant=tenant, directory=directory, trigger=SyncTrigger.MANUAL)
        assert services.ldap_sync_run(run=first).run.status == "succeeded"
        return world

    def shorten(self, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        settings.LDAP_SYNC_QUEUED_TIMEOUT_SECONDS = 3

    def start(self, world: World) -> int:
        from ldap_sync.services import sync_request

        return int(sync_request(directory=world.directory, trigger=SyncTrigger.MANUAL, actor=world.admin).pk)

    def state(self, world: World, pk: int) -> str:
        from ldap_sync.models import LdapSyncRun

        return LdapSyncRun.unscoped.get(pk=pk).status

    def reason(self, world: World, pk: int) -> str:
        from ldap_sync.models import LdapSyncRun

        return LdapSyncRun.unscoped.get(pk=pk).error

    def kept(self, world: World) -> dict[str, int]:
        from ldap_sync.models import LdapOrgUnit, LdapUser

        return {
            "ldap_org_units": LdapOrgUnit.unscoped.filter(tenant=world.tenant).count(),
            "ldap_users": LdapUser.unscoped.filter(tenant=world.tenant).count(),
        }


# -- device jobs -----------------------------------------------------------------------------------------------
class DeviceJob(Kind):
    outbox_kind = device_services.JOB_KIND
    kill_window = 2.0
    action: ClassVar[str]
    params: ClassVar[dict[str, Any]] = {}
    ended = frozenset({"succeeded", "partial", "failed", "cancelled"})
    succeeded = frozenset({"succeeded"})
    slow_ms = 40

    def build(self, request: pytest.FixtureRequest) -> World:
        world = super().build(request)
        from tests.chromeos.test_device_actions import mirror_fleet

        assert world.integration is not None
        fleet = mirror_fleet(world.emulator, world.integration)
        world.devices = [d for d in fleet if d.status == "ACTIVE"][:DEVICES_PER_JOB]
        return world

    def start(self, world: World) -> int:
        with tenant_context(world.tenant):
            job = device_services.device_action_prepare(
                actor=world.admin, action=self.action, device_pks=[d.pk for d in world.devices]
            )
            device_services.device_action_confirm(job=job, actor=world.admin, params=dict(self.params))
        return job.pk

    def state(self, world: World, pk: int) -> str:
        return DeviceActionJob.unscoped.get(pk=pk).status

    def reason(self, world: World, pk: int) -> str:
        job = DeviceActionJob.unscoped.get(pk=pk)
        items = DeviceActionItem.unscoped.filter(job=job).exclude(message="")
        messages = [job.error, *items.values_list("message", flat=True)[:3]]
        return " | ".join(m for m in messages if m)

    def items(self, world: World) -> int:
        return len(world.devices)

    def last_attempt(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr("chromeos.tasks.actions.ACTION_MAX_RETRIES", 0)


class DeviceAnnotate(DeviceJob):
    name = "device_annotate"
    action = "annotate"
    params = {"annotations": {"annotated_location": "Salle 12"}}
    google_method = PATCH

    def applied(self, world: World) -> Counter[str]:
        return Counter(r["path"].rsplit("/", 1)[-1].split("?")[0] for r in world.requests(PATCH) if _ok(r))

    def shorten(self, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        settings.JOB_HEARTBEAT_TIMEOUT_SECONDS = 2


class DeviceReboot(DeviceJob):
    name = "device_reboot"
    action = "cmd_reboot"
    google_method = ISSUE_COMMAND
    idempotent = False  # each issueCommand is one more reboot

    def applied(self, world: World) -> Counter[str]:
        return Counter(
            r["path"].split("/chromeos/", 1)[1].split(":", 1)[0]
            for r in world.requests(ISSUE_COMMAND)
            if _ok(r)
        )

    def shorten(self, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        settings.JOB_HEARTBEAT_TIMEOUT_SECONDS = 2


# -- policy jobs -----------------------------------------------------------------------------------------------
def _policy_writes(world: World, method: str) -> Counter[str]:
    found: Counter[str] = Counter()
    for entry in world.requests(method):
        if not _ok(entry):
            continue
        for request in entry["body"]["requests"]:
            key = request["policyTargetKey"]["targetResource"]
            schema = request.get("policySchema") or request["policyValue"]["policySchema"]
            found[f"{key} {schema}"] += 1
    return found


class PolicyJob(Kind):
    outbox_kind = policy_services.POLICY_KIND
    kill_window = 1.5
    ended = frozenset({"applied", "failed", "removal_failed", "gone"})
    slow_ms = 400

    def build(self, request: pytest.FixtureRequest) -> World:
        world = super().build(request)
        from tests.chromeos.policies_helpers import mirror_org_units

        assert world.integration is not None
        with tenant_context(world.tenant):
            ous = mirror_org_units(world.integration, world.emulator)
            blueprint = BlueprintFactory(
                tenant=world.tenant, name="Postes partagés", settings=dict(BLUEPRINT_SETTINGS)
            )
            assignment = policy_services.policy_assignment_create(
                integration=world.integration, org_unit=ous["/Paris"], blueprint=blueprint, actor=world.admin
            )
        world.assignment_pk = assignment.pk
        return world

    def assignment(self, world: World) -> PolicyAssignment | None:
        return (
            PolicyAssignment.unscoped.select_related("integration", "org_unit", "blueprint", "app", "tenant")
            .filter(pk=world.assignment_pk)
            .first()
        )

    def state(self, world: World, pk: int) -> str:
        assignment = PolicyAssignment.unscoped.filter(pk=pk).first()
        return assignment.state if assignment else "gone"

    def reason(self, world: World, pk: int) -> str:
        assignment = PolicyAssignment.unscoped.filter(pk=pk).first()
        return assignment.google_error if assignment else ""

    def items(self, world: World) -> int:
        return len(BLUEPRINT_SETTINGS) - 1  # the allow-list and the restriction are one schema

    def last_attempt(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr("chromeos.tasks.policies.MAX_RETRIES", 0)

    def shorten(self, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        from datetime import timedelta

        monkeypatch.setattr(policy_services, "REAP_AFTER", timedelta(seconds=2))


class PolicyApply(PolicyJob):
    name = "policy_apply"
    google_method = BATCH_MODIFY
    succeeded = frozenset({"applied"})

    def start(self, world: World) -> int:
        assignment = self.assignment(world)
        assert assignment is not None
        with tenant_context(world.tenant):
            policy_services.policy_assignment_apply_request(assignment=assignment, actor=world.admin)
        return assignment.pk

    def applied(self, world: World) -> Counter[str]:
        return _policy_writes(world, BATCH_MODIFY)


class PolicyUnassign(PolicyJob):
    name = "policy_unassign"
    google_method = BATCH_INHERIT
    succeeded = frozenset({"gone"})

    def build(self, request: pytest.FixtureRequest) -> World:
        world = super().build(request)
        assignment = self.assignment(world)
        assert assignment is not None
        # Applied beforehand, in this process: there must be something at Google to undo.
        PolicyAssignment.unscoped.filter(pk=assignment.pk).update(
            state=AssignmentState.PENDING, apply_requested_at=timezone.now()
        )
        with tenant_context(world.tenant):
            applied = policy_services.policy_assignment_apply(assignment.pk)
        assert applied is not None and applied.state == AssignmentState.APPLIED, applied
        return world

    def start(self, world: World) -> int:
        assignment = self.assignment(world)
        assert assignment is not None
        with tenant_context(world.tenant):
            deleted = policy_services.policy_assignment_unassign_request(
                assignment=assignment, mode=UnassignMode.INHERIT, actor=world.admin
            )
        assert not deleted
        return assignment.pk

    def applied(self, world: World) -> Counter[str]:
        return _policy_writes(world, BATCH_INHERIT)

    def expected_kept(self, world: World, before: dict[str, int], state: str) -> dict[str, int]:
        # The admin asked for this one assignment to go: it goes once Google confirmed, and only it.
        return {**before, "assignments": before["assignments"] - (state == "gone")}


# -- removal ---------------------------------------------------------------------------------------------------
class Removal(Kind):
    name = "removal"
    outbox_kind = "chromeos.removalrun"
    slow_ms = 800
    kill_window = 1.5
    google_method = REVOKE
    ended = frozenset({RemovalStatus.SUCCEEDED, RemovalStatus.FAILED})
    succeeded = frozenset({RemovalStatus.SUCCEEDED})

    def build(self, request: pytest.FixtureRequest) -> World:
        world = super().build(request)
        from tests.chromeos.test_device_actions import mirror_fleet

        assert world.integration is not None
        world.devices = mirror_fleet(world.emulator, world.integration)
        return world

    def start(self, world: World) -> int:
        from chromeos.services.removal import removal_request

        with tenant_context(world.tenant):
            return removal_request(tenant=world.tenant, actor=world.admin).pk

    def state(self, world: World, pk: int) -> str:
        return RemovalRun.unscoped.get(pk=pk).status

    def reason(self, world: World, pk: int) -> str:
        return RemovalRun.unscoped.get(pk=pk).error

    def kept(self, world: World) -> dict[str, int]:
        return {
            **super().kept(world),
            "integration": GoogleIntegration.unscoped.filter(tenant=world.tenant).count(),
        }

    def expected_kept(self, world: World, before: dict[str, int], state: str) -> dict[str, int]:
        # The admin asked for the removal: all of it goes when it succeeds, nothing of it otherwise.
        return dict.fromkeys(before, 0) if state == RemovalStatus.SUCCEEDED else before

    def applied(self, world: World) -> Counter[str]:
        return Counter("grant" for r in world.requests(REVOKE) if _ok(r))

    def shorten(self, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        settings.JOB_HEARTBEAT_TIMEOUT_SECONDS = 2
        settings.REMOVAL_QUEUED_TIMEOUT_SECONDS = 3

    def items(self, world: World) -> int:
        return 1


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        ChromeOSSync(),
        LdapSync(),
        DeviceAnnotate(),
        DeviceReboot(),
        PolicyApply(),
        PolicyUnassign(),
        Removal(),
    )
}
GOOGLE_KINDS = [name for name, kind in KINDS.items() if kind.google_method]


def other_writes(world: World, kind: Kind) -> list[str]:
    """Writes at Google that are not this kind's (a sync, an LDAP sync or a removal writes nothing there)."""
    own = {kind.google_method}
    return [m for m in WRITES if m not in own and any(_ok(r) for r in world.requests(m))]


def wait_until_ended(kind: Kind, world: World, pk: int, bound: float, *, reap: bool = True) -> str:
    """Beat's reaper every half second (and the outbox's grace already over) until the job ended, for at most
    ``bound`` seconds: "every job ends within a bounded time"."""
    from datetime import timedelta

    from django.utils import timezone

    from mdm.jobs import OUTBOX_GRACE, jobs_reap, outbox_flush
    from tests.processes import wait_for

    def ended() -> str | None:
        if reap:
            # The outbox's grace (15 s, for the on-commit publish) is not waited for; the reapers run at the
            # true time, with the detection delays ``Kind.shorten`` set.
            outbox_flush(timezone.now() + OUTBOX_GRACE + timedelta(seconds=1))
            jobs_reap()
        state = kind.state(world, pk)
        return state if state in kind.ended else None

    return str(wait_for(ended, bound, f"the {kind.name} job #{pk} to end", interval=0.5))
