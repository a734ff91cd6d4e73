"""The merge: the staged devices and the listed OUs into the tenant's tables, and the sweep of absent devices
(only after a complete listing, under the deletion guard)."""

# SQL below is composed only from model metadata, column-name constants and the run's integer id; every value
# is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from psycopg.errors import UniqueViolation

from chromeos.models import (
    AssignmentState,
    ChromeOSDevice,
    GoogleIntegration,
    OrgUnit,
    PolicyAssignment,
    SyncRun,
)
from chromeos.services.removal import integration_accepts_writes
from chromeos.services.sync.runs import MSG, SyncAborted, _log
from chromeos.services.sync.staging import (
    ANALYZED_COLUMNS,
    CHANGE_COLUMNS,
    DATA_COLUMNS,
    Stage,
    _text,
    write_batch,
)
from ldap_sync.models import LdapOrgUnit
from ldap_sync.services import google_org_unit_path
from mdm.services import audit_record

DEVICE_TABLE = ChromeOSDevice._meta.db_table
# Advisory lock key (namespace, 0) taken for the length of one ANALYZE of the shared devices table.
ANALYZE_LOCK_NAMESPACE = 0x53594E41  # "SYNA"
# A tenant this large that the statistics count at less than half of it gets the table analyzed (_tenant_unknown).
TENANT_ANALYZE_MIN_ROWS = 5000
CHANGE_TABLE = "chromeos_devicechange"


@dataclass
class MergeResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    candidates: int = 0
    listed: int = 0
    present_before: int = 0


@dataclass
class HeldBatch:
    """Rows held by the run's thread (``Stage.hold``), merged by a merge thread on its own connection: COPYed into
    the shared ``batch`` table inside the merge's transaction (``DeviceMerge.merge_batch(held)``), so that no
    other connection (another merge thread of the same run) ever sees them."""

    batch: str
    pending: int
    batch_repeats: bool
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    def batch_taken(self) -> None:
        self.pending = 0
        self.batch_repeats = False


def _merge_work_mem() -> None:
    """Raise ``work_mem`` for the merge's transaction (``CHROMEOS_SYNC_MERGE_WORK_MEM``). The device search index
    (GIN, trigrams) takes inserts into a pending list; the insert that finds it past 16 MB merges it into the index,
    accumulating keys in ``work_mem`` (PostgreSQL's ``ginInsertCleanup``: ``maintenance_work_mem`` only for
    VACUUM): with the default 4 MB it flushes several times per clean-up, each flush walking the index for every
    key it holds. Measured on a first sync of 100,000 devices (benchmarks/sync.py, perf): the index's share of
    PostgreSQL's CPU 6.9 → 5.6 s. One clean-up runs at a time per index (it takes the index's metapage lock), so
    this much memory is used by one backend at a time for it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('work_mem', %s, true)",
            [getattr(settings, "CHROMEOS_SYNC_MERGE_WORK_MEM", "64MB")],
        )


def history_sql(batch: str) -> str:
    """The history of a batch (``%(tenant)s``, ``%(run)s``): what changed in each stored device it lists again.

    The stored row is found by a LATERAL … LIMIT 1 on both keys of the (tenant, device_id) index. That is one
    probe per batch row only if the statistics know the tenant: see ``DeviceMerge.analyze_if_stale``.
    """
    change_pairs = ", ".join(
        f"'{c}', CASE WHEN d.{c} IS DISTINCT FROM s.{c} THEN jsonb_build_array(d.{c}, s.{c}) END"
        for c in CHANGE_COLUMNS
    )
    change_filter = " OR ".join(f"d.{c} IS DISTINCT FROM s.{c}" for c in CHANGE_COLUMNS)
    return f"""
        INSERT INTO {CHANGE_TABLE} (tenant_id, device_id, sync_run_id, changes, at)
        SELECT d.tenant_id, d.id, %(run)s,
               jsonb_strip_nulls(jsonb_build_object({change_pairs},
                   'removed', CASE WHEN d.removed_at IS NOT NULL THEN jsonb_build_array(true, false) END)),
               now()
        FROM {batch} s CROSS JOIN LATERAL (
            SELECT * FROM {DEVICE_TABLE} WHERE tenant_id = %(tenant)s AND device_id = s.device_id LIMIT 1
        ) AS d
        WHERE s.run_id = %(run)s AND (d.etag IS DISTINCT FROM s.etag OR d.removed_at IS NOT NULL)
          AND ({change_filter} OR d.removed_at IS NOT NULL)
    """


class DeviceMerge:
    """The devices of one run into the tenant's table: new and changed ones batch by batch while the listing
    runs (``merge_batch``, each in its own short transaction), the rest and the sweep at the end (``finish``,
    inside the run's final transaction).

    Only adds and updates happen before the end, so a listing that fails or is cut short leaves every device it
    did not reach as it was, and removes nothing: removals need the whole, proven listing (``finish``).
    """

    def __init__(self, stage: Stage, integration: GoogleIntegration, run: SyncRun) -> None:
        self.stage = stage
        self.integration = integration
        self.run = run
        self.result = MergeResult()
        self.params = {"tenant": integration.tenant_id, "integration": integration.pk, "run": run.pk}
        with connection.cursor() as cursor:
            # Counted before this run writes anything: the deletion guard's share is of the fleet as it was.
            cursor.execute(
                f"SELECT count(*) FROM {DEVICE_TABLE} WHERE tenant_id = %(tenant)s AND removed_at IS NULL",
                self.params,
            )
            self.result.present_before = cursor.fetchone()[0]
            # A tenant without a single row (its first sync, or one after a removal): every device this run lists
            # is new until one conflicts (``_copy_new``), so batches go straight into the table.
            self.new_tenant = False
            if not self.result.present_before:
                cursor.execute(
                    f"SELECT NOT EXISTS (SELECT 1 FROM {DEVICE_TABLE} WHERE tenant_id = %(tenant)s)",
                    self.params,
                )
                self.new_tenant = bool(cursor.fetchone()[0])
        # Rows and changes since the devices table's statistics were last brought up to date by this run.
        self.analyzed_rows = self.result.present_before
        self.analyzed_changes = 0
        self.analyzed = False
        # Merge threads (pipeline.MergeThread) add to ``result`` and analyze side by side.
        self._counting = threading.Lock()
        self._analyzing = threading.Lock()

    def analyze_if_stale(self, *, final: bool = False) -> None:
        """ANALYZE the devices table when this run changed it much since its statistics were taken.

        Autovacuum analyzes later; until then plans would use stale statistics. During the listing this matters
        most: stats taken on an empty table (a first sync into a fresh table) make the planner read each of the
        page's look-ups (``Stage.write_page``) as a scan of the whole, growing table. So while listing, the table
        is analyzed each time this run doubled it (a few times per first sync, in the time Google makes us wait);
        at the end, after 10 % of changes as before, unless the listing already analyzed (the statistics then
        are within a factor of two and the planner scales row counts by the table's current size).
        """
        # One merge thread of this run at a time: another one analyzing now makes this check needless.
        if not self._analyzing.acquire(blocking=False):
            return
        try:
            self._analyze_if_stale(final=final)
        finally:
            self._analyzing.release()

    def _analyze_if_stale(self, *, final: bool) -> None:
        with self._counting:
            changes = self.result.added + self.result.removed - self.analyzed_changes
        base = max(self.analyzed_rows, 1000)
        if changes <= (base // 10 if final and not self.analyzed else base):
            return
        # The table is every tenant's (found by benchmarks/fleet.py: 1,000 tenants onboarding at once queued on
        # one another's ANALYZE, 13 of 16 sync slots waiting 2–28 s). What this run changed matters only if it
        # is a large share of the whole table as its statistics know it; and one ANALYZE at a time is enough:
        # if another sync is analyzing, this run goes on and checks again at its next batch.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [DEVICE_TABLE])
            known = cursor.fetchone()[0]
            if known <= 0 or changes * 10 > known or self._tenant_unknown(cursor):
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s, 0)", [ANALYZE_LOCK_NAMESPACE])
                if not cursor.fetchone()[0]:
                    return
                cursor.execute(f"ANALYZE {DEVICE_TABLE} ({', '.join(ANALYZED_COLUMNS)})")
        self.analyzed = True
        self.analyzed_rows += changes
        self.analyzed_changes += changes

    def _tenant_unknown(self, cursor: Any) -> bool:
        """A large tenant the statistics have not counted: its rows are estimated at less than half of what it
        holds. Found by ``benchmarks/fleet.py``: a 50,000-device tenant's first sync into a table of 1,000
        tenants, analyzed before that tenant had rows, was small against the whole table, so never analyzed; the
        planner, counting the tenant at 1 row, read all its rows for each row of the history's look-up
        (``history_sql``): 28 s per batch of 3,000. The device list of that tenant was planned as badly."""
        with self._counting:
            holds = self.result.present_before + self.result.added
        if holds < TENANT_ANALYZE_MIN_ROWS:
            return False
        cursor.execute(
            f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {DEVICE_TABLE} WHERE tenant_id = %s",
            [self.integration.tenant_id],
        )
        plan = cursor.fetchone()[0]
        if isinstance(plan, str):
            plan = json.loads(plan)
        return float(plan[0]["Plan"]["Plan Rows"]) * 2 < holds

    def merge_batch(self, held: HeldBatch | None = None) -> None:
        """Merge what was staged since the last batch, between two pages (or ``held``: rows the merge thread
        COPYed into its own batch table). A removal under way wins: the integration row is share-locked for the
        transaction (``integration_accepts_writes``), so the removal waits for this write and deletes it, or
        this write sees the removal and the run stops."""
        if not (held or self.stage).pending:
            return
        with transaction.atomic():
            if not integration_accepts_writes(self.integration.pk):
                raise SyncAborted("integration_gone")
            _merge_work_mem()
            if held is not None and held.rows:
                if self.new_tenant and not held.batch_repeats and self._copy_new(held.rows):
                    held.batch_taken()
                    return
                write_batch(self.run.pk, held.rows)
            self._upsert_batch(held)

    def _copy_new(self, rows: list[tuple[Any, ...]]) -> bool:
        """COPY a held batch (``device_row``s) straight into the devices table, in a savepoint of the merge's
        transaction: for a tenant that had no row when the run started, nothing is stored yet to compare with, so
        the batch table, the history's look-up and the upsert are all skipped (a first sync of 100,000 devices:
        ~4.5 of PostgreSQL's 26 core-seconds, benchmarks/sync.py). A device already stored (Google listed it twice,
        in a batch merged before) breaks the unique key: the savepoint is rolled back, False is returned and the
        batch takes the upsert; so do the rest of the run's batches."""
        columns = ("tenant_id", "integration_id", "device_id", "etag", *DATA_COLUMNS, "payload")
        tenant, integration, run = self.params["tenant"], self.params["integration"], self.params["run"]
        try:
            with transaction.atomic(), connection.cursor() as django_cursor:
                cursor = django_cursor.cursor  # psycopg's own cursor: COPY is not in Django's API
                cursor.execute("SELECT now()")
                now = cursor.fetchone()[0]
                with cursor.copy(
                    f"COPY {DEVICE_TABLE} ({', '.join(columns)}, first_seen_at, last_seen_at, last_seen_run_id) "
                    "FROM STDIN"
                ) as copy:
                    for row in rows:
                        copy.write_row((tenant, integration, row[1], row[2], *row[4:], now, now, run))
        except UniqueViolation:
            self.new_tenant = False
            return False
        with self._counting:
            self.result.added += len(rows)
        return True

    def _upsert_batch(self, held: HeldBatch | None = None) -> None:
        """History, then one upsert of the batch's devices; the batch is emptied in the same transaction."""
        stage: Stage | HeldBatch = held or self.stage
        set_columns = ", ".join(f"{c} = EXCLUDED.{c}" for c in DATA_COLUMNS)
        with connection.cursor() as cursor:
            if stage.batch_repeats:
                # A device listed twice since the last batch: its last copy wins. Rare (Google's paging shifted
                # under a change), and done on the narrow columns so that the upsert never sorts payloads.
                cursor.execute(
                    f"DELETE FROM {stage.batch} AS s USING {stage.batch} AS t "
                    "WHERE s.run_id = %(run)s AND t.run_id = %(run)s AND s.device_id = t.device_id "
                    "AND s.seq < t.seq",
                    self.params,
                )
            cursor.execute(history_sql(stage.batch), self.params)
            cursor.execute(
                f"""
                WITH upserted AS (
                    INSERT INTO {DEVICE_TABLE} AS d (tenant_id, integration_id, device_id, etag, {", ".join(DATA_COLUMNS)},
                        payload, first_seen_at, last_seen_at, last_seen_run_id, removed_at)
                    SELECT %(tenant)s, %(integration)s, s.device_id, s.etag, {", ".join("s." + c for c in DATA_COLUMNS)},
                        s.payload, now(), now(), %(run)s, NULL
                    FROM {stage.batch} s WHERE s.run_id = %(run)s
                    ON CONFLICT (tenant_id, device_id) DO UPDATE SET
                        etag = EXCLUDED.etag, {set_columns}, payload = EXCLUDED.payload,
                        integration_id = EXCLUDED.integration_id, last_seen_at = EXCLUDED.last_seen_at,
                        last_seen_run_id = EXCLUDED.last_seen_run_id, removed_at = NULL
                    WHERE d.etag IS DISTINCT FROM EXCLUDED.etag OR d.removed_at IS NOT NULL
                        OR d.integration_id IS DISTINCT FROM EXCLUDED.integration_id
                    RETURNING (xmax = 0) AS inserted
                )
                SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM upserted
                """,
                self.params,
            )
            added, updated = cursor.fetchone()
            # The shared batch table: only this run's rows (UNLOGGED: the DELETE writes no WAL; autovacuum
            # reclaims the space).
            cursor.execute(f"DELETE FROM {stage.batch} WHERE run_id = %(run)s", self.params)
        stage.batch_taken()
        with self._counting:
            self.result.added += added
            self.result.updated += updated

    def finish(self, *, listed: int, may_remove: Callable[[int, int], bool]) -> MergeResult:
        """Inside the run's final transaction: the last batch, then the sweep if ``may_remove(candidates,
        present)``. ``listed``: the distinct devices staged (the caller counted them)."""
        result = self.result
        if self.stage.pending:
            self._upsert_batch()
        result.listed = listed
        result.unchanged = max(result.listed - result.added - result.updated, 0)
        if not result.present_before:
            # No device was present when the run started: every one present now was listed by it (the tenant's
            # lock keeps other runs out), so none can be absent; no look-up of the listing's ids.
            return result
        table = self.stage.table
        with connection.cursor() as cursor:
            absent = (
                f"FROM {DEVICE_TABLE} d WHERE d.tenant_id = %(tenant)s AND d.removed_at IS NULL "
                f"AND NOT EXISTS (SELECT 1 FROM {table} s WHERE s.run_id = %(run)s AND s.device_id = d.device_id)"
            )
            cursor.execute(f"SELECT count(*) {absent}", self.params)
            result.candidates = cursor.fetchone()[0]
            if result.candidates and may_remove(result.candidates, result.present_before):
                cursor.execute(
                    f"""
                    WITH gone AS (
                        UPDATE {DEVICE_TABLE} AS target SET removed_at = now()
                        FROM (SELECT d.id {absent}) AS absent WHERE target.id = absent.id
                        RETURNING target.id, target.tenant_id
                    ), history AS (
                        INSERT INTO {CHANGE_TABLE} (tenant_id, device_id, sync_run_id, changes, at)
                        SELECT tenant_id, id, %(run)s, '{{"removed": [false, true]}}'::jsonb, now() FROM gone
                    )
                    SELECT count(*) FROM gone
                    """,
                    self.params,
                )
                result.removed = cursor.fetchone()[0]
        return result


def _merge_org_units(integration: GoogleIntegration, run: SyncRun, units: list[dict[str, Any]]) -> int:
    """Upsert the OUs Google listed (a complete answer: orgunits.list is not paged) and link each to the
    tenant's LDAP OU of the same path (matched case-insensitively, as Google compares paths).

    An OU is matched by Google's id, then by path: an OU deleted and recreated in Google with the same path
    (a new id) keeps its row, hence its assignments. An OU Google no longer lists is deleted, unless
    assignments target it: then it is kept as "OU disparue" (``missing_since``) with them, for an admin to
    release. Both are said in the run's log and the audit trail.
    """
    ldap_ids = _ldap_org_unit_ids(integration.tenant_id)
    existing = {ou.org_unit_id: ou for ou in OrgUnit.unscoped.filter(integration=integration)}
    listed_ids = {_strip_id(unit["orgUnitId"]) for unit in units}
    unlisted_by_path = {ou.path.casefold(): ou for ou_id, ou in existing.items() if ou_id not in listed_ids}
    seen: set[str] = set()
    to_create: list[OrgUnit] = []
    to_update: list[OrgUnit] = []
    fields = [
        "org_unit_id",
        "path",
        "name",
        "parent_org_unit_id",
        "description",
        "last_seen_run_id",
        "ldap_org_unit",
        "missing_since",
    ]
    for unit in units:
        org_unit_id = _strip_id(unit["orgUnitId"])
        if org_unit_id in seen:
            continue
        seen.add(org_unit_id)
        values: dict[str, Any] = {
            "path": _text(unit.get("orgUnitPath"), 1024),
            "name": _text(unit.get("name"), 255),
            "parent_org_unit_id": _strip_id(_text(unit.get("parentOrgUnitId"), 64)),
            "description": _text(unit.get("description"), None),
            "last_seen_run_id": run.pk,
            "missing_since": None,
        }
        values["ldap_org_unit_id"] = ldap_ids.get(values["path"].casefold())
        ou = existing.get(org_unit_id)
        recreated = False
        if ou is None and (previous := unlisted_by_path.pop(values["path"].casefold(), None)) is not None:
            recreated = True
            ou = previous
            _org_unit_recreated(integration, run, previous, org_unit_id)
            del existing[previous.org_unit_id]
            ou.org_unit_id = org_unit_id
            existing[org_unit_id] = ou
        if ou is None:
            to_create.append(
                OrgUnit(
                    tenant_id=integration.tenant_id,
                    integration=integration,
                    org_unit_id=org_unit_id,
                    **values,
                )
            )
        elif recreated or any(
            getattr(ou, key) != value for key, value in values.items() if key != "last_seen_run_id"
        ):
            # Only an OU that changed is written (with the run that saw the change): rewriting every OU at every
            # run was most of a small tenant's no-change WAL in benchmarks/fleet.py (issue 18).
            for key, value in values.items():
                setattr(ou, key, value)
            to_update.append(ou)
    OrgUnit.unscoped.bulk_update(to_update, fields, batch_size=2000)
    OrgUnit.unscoped.bulk_create(to_create, batch_size=2000)
    gone = [ou for ou_id, ou in existing.items() if ou_id not in seen]
    assigned = set(
        PolicyAssignment.unscoped.filter(org_unit__in=[ou.pk for ou in gone]).values_list(
            "org_unit_id", flat=True
        )
    )
    for ou in gone:
        if ou.pk in assigned and ou.missing_since is None:
            _org_unit_missing(integration, run, ou)
    OrgUnit.unscoped.filter(pk__in=[ou.pk for ou in gone if ou.pk not in assigned]).delete()
    return len(seen)


def _assignment_summary(ou: OrgUnit) -> list[dict[str, str]]:
    return [
        {
            "assignment": a.subject_label,
            "state": a.state,
            "schemas": ", ".join(sorted(a.applied_values or {})),
        }
        for a in PolicyAssignment.unscoped.filter(org_unit=ou).select_related("blueprint", "app")
    ]


def _org_unit_recreated(integration: GoogleIntegration, run: SyncRun, ou: OrgUnit, new_id: str) -> None:
    """Google's new OU holds none of what the console wrote on the old one: its assignments are kept but go
    back to "en attente" (nothing applied), for the admin to apply them again."""
    assignments = _assignment_summary(ou)
    PolicyAssignment.unscoped.filter(org_unit=ou).update(
        state=AssignmentState.PENDING,
        applied_values={},
        previous_values={},
        applied_at=None,
        # Idle until the admin applies it again (not an apply in progress, that the reaper would fail).
        apply_requested_at=None,
        google_error=str(MSG["ou_recreated_assignment"]),
        updated_at=timezone.now(),
    )
    _log(run, "warning", "ou_recreated", path=ou.path, old=ou.org_unit_id, new=new_id, count=len(assignments))
    audit_record(
        tenant=integration.tenant,
        actor=None,
        action="chromeos.org_unit.recreated",
        target=ou.path,
        details={"old_id": ou.org_unit_id, "new_id": new_id, "assignments": assignments, "run_id": run.pk},
    )


def _org_unit_missing(integration: GoogleIntegration, run: SyncRun, ou: OrgUnit) -> None:
    assignments = _assignment_summary(ou)
    OrgUnit.unscoped.filter(pk=ou.pk).update(missing_since=timezone.now())
    _log(
        run,
        "warning",
        "ou_missing",
        path=ou.path,
        assignments="; ".join(a["assignment"] for a in assignments),
    )
    audit_record(
        tenant=integration.tenant,
        actor=None,
        action="chromeos.org_unit.missing",
        target=ou.path,
        details={"org_unit_id": ou.org_unit_id, "assignments": assignments, "run_id": run.pk},
    )


def _strip_id(value: str) -> str:
    return value[3:] if value.startswith("id:") else value


def _ldap_org_unit_ids(tenant_id: int) -> dict[str, int]:
    """casefolded Google path → id of the tenant's LDAP OUs that were added to the console. The console's paths
    escape ``\\`` and ``/`` in names, Google's do not: an OU named ``Équipe \\ Réseau`` is matched by its Google
    path; one with a ``/`` in a name has none."""
    rows = LdapOrgUnit.unscoped.filter(tenant_id=tenant_id, added=True).values_list("path", "id")
    ids: dict[str, int] = {}
    for path, pk in rows:
        google_path = google_org_unit_path(path)
        if google_path is not None:
            ids[google_path.casefold()] = pk
    return ids


def _supported_count(units: list[dict[str, Any]], tenant_id: int) -> int:
    ldap_paths = _ldap_org_unit_ids(tenant_id)
    return sum(1 for u in units if str(u.get("orgUnitPath", "")).casefold() in ldap_paths)
