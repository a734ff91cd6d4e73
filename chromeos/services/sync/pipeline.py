"""A run from start to end (``devices_sync``): lock, OUs, listing into the stage, merge, schedule."""

# SQL below is composed only from model metadata, column-name constants and the run's integer id; every value
# is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import contextlib
import contextvars
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from chromeos.google.client import GoogleClient
from chromeos.google.errors import AuthRevoked, GoogleError
from chromeos.google.explain import error_detail
from chromeos.models import GoogleIntegration, IntegrationStatus, SyncRun, SyncStatus
from chromeos.services.integration import integration_google_refused
from chromeos.services.sync.listing import (
    Listing,
    PageFetcher,
    RetryNotices,
    _count_devices,
    _customer,
    _DeferredClient,
    _org_units,
    _page_size,
    list_device_pages,
)
from chromeos.services.sync.merge import DeviceMerge, HeldBatch, _merge_org_units, _supported_count
from chromeos.services.sync.partitions import PartitionedListing, parallel_listing_wanted
from chromeos.services.sync.runs import (
    FINISHED_STATUSES,
    MAX_LOG_LINES,
    REDELIVERY_LOCK_WAIT,
    SyncAborted,
    SyncCancelled,
    SyncLock,
    _fail,
    _log,
    _log_entry,
    _reap_dead_runs,
    deadline_check,
)
from chromeos.services.sync.schedule import _schedule_after
from chromeos.services.sync.staging import Stage, discard_stale_stages
from ops import metrics
from ops.logs import log_context

# The package's name, as before the split: log filters and dashboards keep matching.
logger = logging.getLogger("chromeos.services.sync")


def _progress_seconds() -> float:
    return float(getattr(settings, "CHROMEOS_SYNC_PROGRESS_SECONDS", 0.25))


# A few changed devices per page wait for more: one transaction per page would cost more than it hides.
IDLE_MERGE_ROWS = 100


def _merge_rows() -> int:
    return max(int(getattr(settings, "CHROMEOS_SYNC_MERGE_ROWS", 3000)), 1)


class MergeThread:
    """Merges the batches on threads of their own, each with its own database connection, while the run's thread
    stages the next pages: PostgreSQL's upserts (most of a first sync's work) run beside the staging and the
    listing instead of between two pages.

    The run's thread keeps the full rows of new or changed devices (``Stage.hold``) and hands them over here a
    batch at a time (``submit``); a merge thread COPYs them into the shared batch table and merges them
    (``DeviceMerge.merge_batch``: its own short transaction, the integration row share-locked, as before), so
    no other connection ever sees them. With ``threads`` > 1 (``CHROMEOS_SYNC_MERGE_THREADS``) batches are merged
    side by side on as many PostgreSQL backends: a batch that lists a device a batch still in flight lists too
    waits for it, so that the last copy listed always wins and two transactions never wait on each other's rows
    (disjoint batches lock nothing in common but the integration row, in share mode). A thread is added only
    when every one is busy at a hand-over. At most ``threads`` batches wait here: memory stays bounded. An error
    here (a removal under way: ``SyncAborted``; PostgreSQL) stops the merging and is raised in the run's thread
    at its next hand-over or at ``close``. Removals are not done here: only the run's final transaction does
    them, after the proven listing.
    """

    def __init__(self, stage: Stage, merge: DeviceMerge, threads: int = 1) -> None:
        self.stage = stage
        self.merge = merge
        self._queue: queue.Queue[_Batch | None] = queue.Queue(maxsize=threads)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        # Batches handed over and not merged yet (their device ids), oldest first; and how many threads wait.
        self._in_flight: list[_Batch] = []
        self._idle = 0
        self._lock = threading.Lock()
        self._most = threads
        self._threads: list[threading.Thread] = []
        self._start_thread()

    def _start_thread(self) -> None:
        """One more merge thread (and, at its first batch, one more PostgreSQL connection), in its own copy of
        the caller's context (the run's log context)."""
        thread = threading.Thread(
            target=contextvars.copy_context().run,
            args=(self._work,),
            name=f"chromeos-sync-merge-{len(self._threads)}",
            daemon=True,
        )
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        try:
            while True:
                with self._lock:
                    self._idle += 1
                item = self._queue.get()
                with self._lock:
                    self._idle -= 1
                if item is None or self._stop.is_set():
                    return
                try:
                    self.merge.merge_batch(item.held)
                    self.merge.analyze_if_stale()
                finally:
                    item.done.set()
        except BaseException as error:
            with self._lock:
                if self._error is None:
                    self._error = error
        finally:
            self._stop.set()
            # This thread's connection ends with it.
            connection.close()

    def _raise(self) -> None:
        with self._lock:
            error, self._error = self._error, None
        if error is not None:
            raise error

    def idle(self) -> bool:
        """A merge thread waits for work: a batch handed over now is merged at once."""
        with self._lock:
            return self._idle > 0 and self._queue.empty()

    def submit(self, rows: list[Any], repeats: bool) -> None:
        """Hand a batch over; waits while ``threads`` batches wait to be merged, or while a batch in flight
        lists one of its devices."""
        batch = _Batch(HeldBatch(self.stage.batch, len(rows), repeats, rows))
        self._in_flight = [b for b in self._in_flight if not b.done.is_set()]
        overlapping = [b for b in self._in_flight if not b.ids.isdisjoint(batch.ids)]
        while True:
            self._raise()
            if self._stop.is_set():
                raise SyncAborted("database_error", error="the merge thread stopped")
            if any(not b.done.wait(timeout=0.2) for b in overlapping):
                continue
            with self._lock:
                # Every thread is busy: one more, up to ``threads``. A tenant whose merges keep pace with the
                # listing (most of them) never opens a second connection.
                more = self._idle == 0 and len(self._threads) < self._most
            if more:
                self._start_thread()
            try:
                self._queue.put(batch, timeout=0.2)
                self._in_flight.append(batch)
                return
            except queue.Full:
                continue

    def close(self, *, abandon: bool = False) -> None:
        """Wait for the batches handed over to be merged (or, ``abandon``, for the ones being merged only), then
        raise what stopped the merging, if anything did."""
        if abandon:
            self._stop.set()
        sent = 0
        while sent < len(self._threads) and any(thread.is_alive() for thread in self._threads):
            try:
                self._queue.put(None, timeout=0.2)
                sent += 1
            except queue.Full:
                continue
        for thread in self._threads:
            thread.join()
        if not abandon:
            self._raise()


class _Batch:
    """One batch handed to the merge threads: what is merged, its device ids (``device_row``'s second column)
    and when it is merged."""

    def __init__(self, held: HeldBatch) -> None:
        self.held = held
        self.ids = frozenset(row[1] for row in held.rows)
        self.done = threading.Event()


def _merge_threads() -> int:
    return max(int(getattr(settings, "CHROMEOS_SYNC_MERGE_THREADS", 2)), 1)


def _merge_thread_wanted() -> bool:
    """A merge thread needs its own connection to see what the run's connection committed: not inside an
    atomic block (tests wrapped in a transaction), where batches are merged by the run's thread as before."""
    return bool(getattr(settings, "CHROMEOS_SYNC_MERGE_THREAD", True)) and not connection.in_atomic_block


ProgressCallback = Callable[[SyncRun], None]


def devices_sync(run: SyncRun, *, progress: ProgressCallback | None = None) -> SyncRun:
    """Run one queued sync (the task's body, and the CLI's). Returns the run, finished; its outcome counted in
    the metrics (ops/metrics.py) and the tenant's alerts re-evaluated."""
    if run.status in FINISHED_STATUSES:
        return _devices_sync(run, progress=progress)  # a redelivery of a finished run: nothing happens
    with log_context(run_id=run.pk):
        try:
            run = _devices_sync(run, progress=progress)
        finally:
            finished = None
            # PostgreSQL down: the task's retry matters, not counting.
            with contextlib.suppress(DatabaseError):
                finished = SyncRun.unscoped.filter(pk=run.pk).first()
            if finished is not None and finished.status in FINISHED_STATUSES:
                metrics.record_sync_run(finished)
                _alerts_evaluate(finished)
                logger.info(
                    "chromeos sync %s: %s",
                    finished.pk,
                    finished.status,
                    extra={
                        "status": finished.status,
                        "trigger": finished.trigger,
                        "devices_seen": finished.devices_seen,
                        "added": finished.added,
                        "updated": finished.updated,
                        "removed": finished.removed,
                    },
                )
    return run


def _alerts_evaluate(run: SyncRun) -> None:
    from ops.alerts import alerts_evaluate

    try:
        alerts_evaluate(run.tenant)
    except Exception:
        # Telling people must never change what the sync did.
        logger.exception("alerts of tenant %s not evaluated", run.tenant_id)


def _devices_sync(run: SyncRun, *, progress: ProgressCallback | None = None) -> SyncRun:
    """Run one queued sync. Returns the run, finished.

    A run found RUNNING was interrupted (its worker died and the message came back): it is marked failed and a
    new run continues its work, so the history tells the truth.
    """
    run = SyncRun.unscoped.select_related("integration", "tenant").get(pk=run.pk)
    if run.status in FINISHED_STATUSES:
        return run
    lock = SyncLock(run.tenant_id)
    # A RUNNING run handed to us again is a redelivery after its worker died: PostgreSQL may take a moment to
    # notice the dead session and free its lock.
    if not lock.acquire(wait_seconds=REDELIVERY_LOCK_WAIT if run.status == SyncStatus.RUNNING else 0.0):
        if run.status == SyncStatus.QUEUED:
            run.status = SyncStatus.SKIPPED
            run.finished_at = timezone.now()
            SyncRun.unscoped.filter(pk=run.pk, status=SyncStatus.QUEUED).update(
                status=run.status, finished_at=run.finished_at
            )
            _log(run, "info", "lock_busy")
        return run
    stage: Stage | None = None
    try:
        integration = run.integration
        _reap_dead_runs(integration, except_pk=run.pk)
        # Staged rows of runs that died (this tenant's, just reaped, or any other's) go.
        discard_stale_stages()
        if run.status == SyncStatus.RUNNING:
            interrupted = run
            _fail(interrupted, "reaped", number=interrupted.pk)
            run = SyncRun.unscoped.create(
                tenant_id=interrupted.tenant_id,
                integration=integration,
                trigger=interrupted.trigger,
                requested_by=interrupted.requested_by,
                removal_allowance=interrupted.removal_allowance,
            )
            run = SyncRun.unscoped.select_related("integration", "tenant").get(pk=run.pk)
            run.log = [_log_entry("info", "resumed", number=interrupted.pk)]
        integration.refresh_from_db()
        if integration.status != IntegrationStatus.ACTIVE:
            run.status = SyncStatus.SKIPPED
            run.finished_at = timezone.now()
            SyncRun.unscoped.filter(pk=run.pk, status=SyncStatus.QUEUED).update(
                status=run.status, finished_at=run.finished_at
            )
            _log(run, "warning", "not_active", status=integration.get_status_display())
            return run
        run.status = SyncStatus.RUNNING
        run.started_at = run.heartbeat_at = timezone.now()
        run.log = [*run.log, _log_entry("info", "started", trigger=run.get_trigger_display())]
        # Only a run still queued starts: one cancelled since we read it stays cancelled, untouched.
        if not SyncRun.unscoped.filter(pk=run.pk, status=SyncStatus.QUEUED).update(
            status=run.status, started_at=run.started_at, heartbeat_at=run.heartbeat_at, log=run.log
        ):
            run.refresh_from_db()
            return run
        stage = Stage(run)
        _run(run, integration, lock, stage, progress)
    except GoogleError as error:
        if isinstance(error, AuthRevoked):
            _mark_reauth_required(run, error)
        else:
            _fail(run, "google_error", error=error_detail(error)[:500])
    except SyncCancelled:
        _cancel_stopped(run)
    except SyncAborted as abort:
        _fail(run, abort.key, **abort.params)
    except DatabaseError as error:
        # PostgreSQL may be the thing that is down: record if we can, and let the task retry later.
        with contextlib.suppress(DatabaseError):
            _fail(run, "database_error", error=str(error)[:500])
        raise
    except Exception as error:
        _fail(run, "internal_error", error=f"{type(error).__name__}: {error}"[:500])
        raise
    finally:
        if stage is not None:
            stage.drop()
        lock.release()
    return run


def _run(
    run: SyncRun,
    integration: GoogleIntegration,
    lock: SyncLock,
    stage: Stage,
    progress: ProgressCallback | None,
) -> None:
    started = time.monotonic()
    client = GoogleClient(integration)
    units = _org_units(client, integration)
    run.org_units = len(units)
    # Written with the count below: one write of the run's row (and of its whole log) instead of three. A
    # failure of the count writes the log with the run's failure (``_fail`` takes ``run.log``).
    _log(
        run,
        "info",
        "org_units",
        write=False,
        count=len(units),
        supported=_supported_count(units, integration.tenant_id),
    )

    count_before = _count_devices(client, integration)
    run.expected_devices = count_before
    _log(run, "info", "expected", write=False, count=count_before)
    # A cancelled run's log is the canceller's (``_log``): then the counts alone.
    if (
        not SyncRun.unscoped.filter(pk=run.pk)
        .exclude(status=SyncStatus.CANCELLED)
        .update(org_units=run.org_units, expected_devices=count_before, log=run.log)
    ):
        SyncRun.unscoped.filter(pk=run.pk).update(org_units=run.org_units, expected_devices=count_before)

    stage.create()
    listing = Listing()
    merge = DeviceMerge(stage, integration, run)
    merge_rows = _merge_rows()
    idle_rows = min(merge_rows, IDLE_MERGE_ROWS)

    # Batches are merged on a thread of their own while this one stages (or here, between pages, inside an
    # atomic block: see _merge_thread_wanted).
    merger = MergeThread(stage, merge, _merge_threads()) if _merge_thread_wanted() else None
    stage.hold = merger is not None

    def store(devices: list[Any], next_page_ready: bool) -> None:
        deadline_check(started)
        stage.write_page(devices, run.tenant_id, listing, look_up=not merge.new_tenant)
        # The store hides behind Google's latency: new and changed devices are merged while the fetch thread
        # waits for the next page (nothing is waiting yet), or once a batch is large (Google is faster than the
        # store: merging in batches keeps the staged rows, hence memory and the final step, bounded). A merge
        # thread with nothing to do takes what is held at once: PostgreSQL keeps pace with the listing, and what
        # is left to merge after the last page stays small.
        if (
            stage.pending >= merge_rows
            or (stage.pending >= idle_rows and not next_page_ready)
            or (merger is not None and stage.pending >= idle_rows and merger.idle())
        ):
            if not lock.held():
                raise SyncAborted("database_error", error="lost the sync lock")
            if merger is not None:
                merger.submit(*stage.take_held())
            else:
                merge.merge_batch()
                merge.analyze_if_stale()
        _progress(run, listing, progress)

    try:
        fetch_clients: list[GoogleClient] = []
        count_after: int | None = None
        if parallel_listing_wanted(count_before, _page_size()):
            # Pages come from several threads at once: merged in batches of CHROMEOS_SYNC_MERGE_ROWS.
            count_after = _list_in_parallel(
                run, integration, client, units, count_before, lambda devices: store(devices, True), listing
            )
            if count_after is None:
                # Not proven: what was staged goes (what was merged stays: devices as Google listed them, never a
                # removal), the sequential listing starts afresh.
                stage.create()
                listing = Listing()
        if count_after is None:
            fetcher = PageFetcher(
                integration,
                on_retry=lambda seconds: _log(run, "warning", "google_retry", seconds=round(seconds)),
            )
            fetch_clients.append(fetcher.client)
            try:
                for devices in fetcher:
                    for size, smaller in fetcher.take_fallbacks():
                        _log(run, "warning", "page_size_fallback", size=size, fallback=smaller)
                    store(devices, fetcher.ready())
            finally:
                fetcher.close()
            # Asked by the fetch thread once the last page came (None only if the listing did not end normally).
            count_after = fetcher.count_after
            if count_after is None:
                count_after = _count_devices(client, integration)
        _log(
            run,
            "info",
            "listed",
            devices=listing.devices,
            pages=listing.pages,
            seconds=round(time.monotonic() - started, 1),
        )
        quota_waits = client.quota_waits + sum(c.quota_waits for c in fetch_clients)
        if quota_waits:
            waited = client.quota_wait_seconds + sum(c.quota_wait_seconds for c in fetch_clients)
            _log(run, "info", "quota_waits", count=quota_waits, seconds=round(waited, 1))
        if listing.skipped:
            _log(run, "warning", "skipped_devices", count=listing.skipped)
        deadline_check(started)
        if not lock.held():
            raise SyncAborted("database_error", error="lost the sync lock")

        guard_percent = integration.deletion_guard_percent
        allowance = run.removal_allowance
        decision: dict[str, Any] = {}

        def may_remove(candidates: int, present: int) -> bool:
            decision["candidates"] = candidates
            if not complete:
                return False
            if allowance is not None and candidates <= allowance:
                return True
            if decision.get("held_since") is not None:
                # The guard is a state: removals held back by an earlier run wait for an admin, whoever started
                # this run and whatever share of a (maybe grown) fleet they are now.
                decision["guarded"] = decision["held"] = True
                decision["percent"] = round(candidates * 100 / max(present, 1), 1)
                return False
            if candidates * 100 > present * guard_percent:
                decision["guarded"] = True
                decision["percent"] = round(candidates * 100 / max(present, 1), 1)
                return False
            return True

        if merger is not None:
            # The last batch, and every batch handed over, merged before the run's final transaction.
            if stage.pending:
                merger.submit(*stage.take_held())
            merger.close()
        if not listing.distinct:
            stage.analyze()
        with transaction.atomic():
            # The run's row is locked for the merge: a cancel that comes now waits for it and finds it finished;
            # one that came first stops it here, before any removal.
            seen = (
                SyncRun.unscoped.select_for_update()
                .filter(pk=run.pk)
                .values_list("status", flat=True)
                .first()
            )
            if seen == SyncStatus.CANCELLED:
                raise SyncCancelled
            locked = GoogleIntegration.unscoped.select_for_update().filter(pk=integration.pk).first()
            if locked is None or locked.status != IntegrationStatus.ACTIVE:
                raise SyncAborted("integration_gone")
            decision["held_since"] = locked.removals_held_since
            _merge_org_units(locked, run, units)
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT count(*) FROM {stage.table} WHERE run_id = %s", [run.pk])
                listed = cursor.fetchone()[0]
            complete = listed == count_before == count_after
            result = merge.finish(listed=listed, may_remove=may_remove)
            # The lines below are written with the run's outcome (``run.save`` at the end of this transaction).
            if allowance is not None:
                _log(run, "info", "confirmed", write=False, allowance=allowance)
            if not complete:
                status = SyncStatus.PARTIAL
                _log(
                    run,
                    "warning",
                    "incomplete",
                    write=False,
                    listed=listed,
                    before=count_before,
                    after=count_after,
                )
            elif decision.get("held"):
                status = SyncStatus.GUARDED
                _log(
                    run,
                    "warning",
                    "held",
                    write=False,
                    count=result.candidates,
                    # Written by the worker, read by the tenant: in the tenant's zone, not the worker's.
                    since=timezone.localtime(decision["held_since"], run.tenant.tzinfo).strftime(
                        "%Y-%m-%d %H:%M"
                    ),
                )
            elif decision.get("guarded"):
                status = SyncStatus.GUARDED
                _log(
                    run,
                    "warning",
                    "guarded",
                    write=False,
                    count=result.candidates,
                    percent=decision["percent"],
                    threshold=guard_percent,
                )
            else:
                status = SyncStatus.SUCCEEDED
            if status == SyncStatus.GUARDED and locked.removals_held_since is None:
                locked.removals_held_since = timezone.now()
                locked.save(update_fields=["removals_held_since", "updated_at"])
            elif status == SyncStatus.SUCCEEDED and locked.removals_held_since is not None:
                # Confirmed and applied, or every absent device came back: nothing is held any more.
                _log(run, "info", "held_released", write=False, removed=result.removed)
                locked.removals_held_since = None
                locked.save(update_fields=["removals_held_since", "updated_at"])
            _log(
                run,
                "info",
                "merged",
                write=False,
                added=result.added,
                updated=result.updated,
                unchanged=result.unchanged,
                removed=result.removed,
            )
            finished = timezone.now()
            elapsed = round(time.monotonic() - started, 1)
            run.log = [*run.log, _log_entry("info", "finished", seconds=elapsed)][-MAX_LOG_LINES:]
            run.status = status
            run.finished_at = run.heartbeat_at = finished
            run.added, run.updated, run.unchanged, run.removed = (
                result.added,
                result.updated,
                result.unchanged,
                result.removed,
            )
            run.pending_removals = result.candidates if status == SyncStatus.GUARDED else 0
            run.save(
                update_fields=[
                    "status",
                    "finished_at",
                    "heartbeat_at",
                    "pages",
                    "devices_seen",
                    "devices_skipped",
                    "added",
                    "updated",
                    "unchanged",
                    "removed",
                    "pending_removals",
                    "org_units",
                    "expected_devices",
                    "log",
                ]
            )
            _schedule_after(locked, run, finished)
        merge.analyze_if_stale(final=True)
        if progress is not None:
            progress(run)
    except BaseException as error:
        if merger is not None:
            if isinstance(error, GoogleError) and not isinstance(error, AuthRevoked):
                # Google failed mid-listing: what was read and handed over is stored, as between pages before
                # (adds and updates only); the listing's error is the one reported.
                with contextlib.suppress(Exception):
                    merger.close()
            else:
                # Cancelled, aborted, the grant refused: the batch being merged ends, no other starts.
                merger.close(abandon=True)
        raise


def _list_in_parallel(
    run: SyncRun,
    integration: GoogleIntegration,
    client: GoogleClient,
    units: list[dict[str, Any]],
    count_before: int,
    store: Callable[[list[Any]], None],
    listing: Listing,
) -> int | None:
    """List by OU partitions at once (``chromeos.services.sync.partitions``), each page to ``store``. Returns Google's
    count after, when the listing is proven complete (``listing.distinct`` then says whether no device came
    twice); None when it is not, or could not be planned: the caller then lists again, sequentially. The
    threads' quota waits are added to ``client``'s."""
    started = time.monotonic()
    # The threads' backoffs reach the run's log as the sequential listing's do.
    notices = RetryNotices(lambda seconds: _log(run, "warning", "google_retry", seconds=round(seconds)))
    parallel = PartitionedListing(
        customer=_customer(integration),
        units=units,
        total_before=count_before,
        page_size=_page_size(),
        make_client=lambda: _DeferredClient(integration, sleep=notices.sleep),
        list_pages=lambda c, partition: list_device_pages(
            c, integration, org_unit=partition.org_unit_id, with_children=partition.with_children
        ),
        on_wait=notices.tell,
    )
    try:
        planned = parallel.plan()
        notices.tell()
        if not planned:
            _log(run, "info", "parallel_unplanned", reason=parallel.reason)
            return None
        for devices in parallel:
            store(devices)
    finally:
        parallel.close()
        notices.tell()
        # The threads are gone: their refreshed tokens are saved from the run's thread.
        for fetch_client in parallel.pool.clients:
            cast(_DeferredClient, fetch_client).save_tokens()
            client.quota_waits += fetch_client.quota_waits
            client.quota_wait_seconds += fetch_client.quota_wait_seconds
    count_after = _count_devices(client, integration)
    reasons = parallel.proof(count_after)
    if reasons:
        _log(run, "warning", "parallel_unproven", reason="; ".join(reasons[:5])[:500])
        return None
    listing.distinct = parallel.repeats == 0
    _log(
        run,
        "info",
        "parallel_listed",
        partitions=len(parallel.partitions),
        threads=parallel.threads,
        counts=parallel.plan_counts + len(parallel.partitions) + 2,
        seconds=round(time.monotonic() - started, 1),
    )
    return count_after


def _progress(run: SyncRun, listing: Listing, progress: ProgressCallback | None) -> None:
    run.pages, run.devices_seen, run.devices_skipped = listing.pages, listing.devices, listing.skipped
    now = time.monotonic()
    if now - listing.progress_written >= _progress_seconds():
        listing.progress_written = now
        run.heartbeat_at = timezone.now()
        # Written only while the run is running: the same statement is the check for a cancel, between pages.
        if (
            not SyncRun.unscoped.filter(pk=run.pk, status=SyncStatus.RUNNING).update(
                pages=run.pages,
                devices_seen=run.devices_seen,
                devices_skipped=run.devices_skipped,
                heartbeat_at=run.heartbeat_at,
            )
            and SyncRun.unscoped.filter(pk=run.pk, status=SyncStatus.CANCELLED).exists()
        ):
            # (A row that is gone was deleted by a removal: the revoked grant or the merge's check stops the run.)
            raise SyncCancelled
    if progress is not None:
        progress(run)


def _cancel_stopped(run: SyncRun) -> None:
    """The worker noticed the cancel: its last line goes after the canceller's, the counts of what it did stay."""
    pages, devices_seen = run.pages, run.devices_seen
    fresh = SyncRun.unscoped.filter(pk=run.pk).first()
    if fresh is None:
        return
    run.refresh_from_db()
    if run.status != SyncStatus.CANCELLED:
        # Not a cancel after all (reaped meanwhile, say): the state it has is the truth.
        return
    run.log = [*run.log, _log_entry("info", "cancel_stopped", pages=pages)][-MAX_LOG_LINES:]
    SyncRun.unscoped.filter(pk=run.pk).update(
        log=run.log, pages=max(pages, run.pages), devices_seen=max(devices_seen, run.devices_seen)
    )
    logger.info("sync tenant=%s run=%s stopped: cancelled", run.tenant_id, run.pk)


def _mark_reauth_required(run: SyncRun, error: AuthRevoked) -> None:
    """Google refused the grant: pause the hourly sync, ask for re-authorization (if the grant that failed is
    still the stored one); nothing is deleted."""
    _fail(run, "auth_revoked", reason=error.reason or "invalid_grant")
    integration_google_refused(integration=run.integration, error=error)
