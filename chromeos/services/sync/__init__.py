"""The ChromeOS sync: a tenant's Google OUs and ChromeOS devices, brought into the console.

A run (``devices_sync``), in order:

1. **Lock.** A per-tenant advisory lock (``SyncLock``, an ``mdm.locks.SharedAdvisoryLock``) on the worker
   process's one lock connection (shared by its syncs), held for the whole run and checked before each merge
   and the final step. If the process dies, the lock dies with its connection,
   so "RUNNING but nobody holds the lock" always means "dead": that is how stale runs are recognised
   (``sync_run_is_alive``), without guessing from clocks.
   The loser of the lock race does nothing and says so in its run's log.
2. **OUs.** ``orgunits.list`` (every OU, the root included), matched by path to the tenant's LDAP OUs.
3. **Devices.** ``countChromeOsDevices``, then every page of ``chromeosdevices.list`` (projection FULL, the
   largest page size the API takes), fetched by a background thread one or two pages ahead (``PageFetcher``),
   each page streamed with ``COPY`` into the staging tables every run shares (UNLOGGED, rows keyed by run id:
   not WAL-logged, and no table created per run): every device's id into the listing table, and the columns and payload of the new or changed
   ones (their etag differs from the stored row, one indexed look-up per page) into a batch table. So a
   no-change re-sync writes almost nothing.
   A tenant of more than a few pages is listed in parallel, by disjoint OU partitions whose Google counts add
   up (``partitions``); unless that listing is proven complete, it is listed again in sequence.
4. **Merge while listing.** Whenever the next page is not there yet (Google is being waited for), or once
   ``CHROMEOS_SYNC_MERGE_ROWS`` rows are staged, the batch is merged in its own short transaction: share-lock
   the integration row (a removal that won the race leaves nothing to write into: ``integration_accepts_writes``),
   record ``DeviceChange`` rows, upsert the devices with one ``INSERT ... ON CONFLICT (tenant_id, device_id)
   DO UPDATE ... WHERE etag IS DISTINCT FROM``. Adds and updates only: storing hides behind Google's latency,
   and the first sync ends right after the last page.
5. **End.** Google's count again, then ONE short transaction: lock the integration row, upsert OUs, merge
   the last batch, then mark removed the devices absent from the listing — only if every page was fetched
   and the listing adds up (distinct devices listed = Google's count before = Google's count after), and
   only if that removes at most ``deletion_guard_percent`` of the tenant's devices (else the run is GUARDED
   and an admin confirms: ``sync_confirm_removals``). The run's final state commits in that transaction.

A failure, or a listing cut short, keeps what the merges already wrote (devices as Google listed them) and
removes nothing: every device not reached stays as it was.

Settings: ``CHROMEOS_SYNC_INTERVAL_SECONDS`` (3600), ``CHROMEOS_SYNC_PAGE_SIZE`` (300, the discovery
document's maximum; a 400 on it falls back to Google's default of 100), ``CHROMEOS_SYNC_QUEUED_TIMEOUT_SECONDS``
(1800: a queued run never picked up is given up), ``CHROMEOS_SYNC_PROGRESS_SECONDS`` (0.25: how often progress
is written to the run row), ``CHROMEOS_SYNC_LISTING_THREADS`` (``GOOGLE_QUOTA_TENANT_CONCURRENCY``: threads of a
parallel listing, 1 = never parallel), ``CHROMEOS_SYNC_PARALLEL_MIN_DEVICES`` (10000: smaller tenants list in
sequence), ``CHROMEOS_SYNC_MERGE_ROWS`` (3000: the largest batch of staged new or changed devices before it is
merged, when Google answers faster than the store).

The package follows those steps, one module each:

- ``runs``: the run rows and the lock (requesting, confirming removals, the run's log, reaping dead runs);
- ``listing``: reading Google (OUs, the device count, every page of devices). The run iterates ``PageFetcher``
  (pages of devices in) and asks ``ready()`` (is the next page already here?);
- ``partitions``: the parallel listing by OU (its plan, its threads, the proof that it is complete);
- ``staging``: a Google device as a row, and the run's rows in the shared UNLOGGED staging tables (``Stage``);
- ``merge``: the staged devices (``DeviceMerge``: batches while listing, the sweep and its guard at the
  end) and the listed OUs into the tenant's tables;
- ``schedule``: each tenant's slot in the hour, beat's dispatcher, the next slot after a run;
- ``pipeline``: ``devices_sync``, a run from start to end, calling the others in order.

Other code imports from ``chromeos.services.sync``; the names below are its interface.
"""

from chromeos.services.sync.listing import FALLBACK_PAGE_SIZE, Listing, PageFetcher, list_device_pages
from chromeos.services.sync.merge import DeviceMerge, MergeResult
from chromeos.services.sync.pipeline import ProgressCallback, devices_sync
from chromeos.services.sync.runs import (
    ACTIVE_STATUSES,
    COMPLETED_STATUSES,
    FINISHED_STATUSES,
    LOCK_NAMESPACE,
    MAX_LOG_LINES,
    MSG,
    SYNC_KIND,
    SYNC_TASK,
    SyncAborted,
    SyncCancelled,
    SyncLock,
    SyncNotAllowed,
    sync_active_run,
    sync_cancel,
    sync_confirm_removals,
    sync_lock_held,
    sync_request,
    sync_run_is_alive,
    sync_runs_reap,
)
from chromeos.services.sync.schedule import next_slot, sync_dispatch, sync_interval, sync_offset_for
from chromeos.services.sync.staging import (
    ANALYZED_COLUMNS,
    CHANGE_COLUMNS,
    DATA_COLUMNS,
    STAGE_COLUMNS,
    STRING_COLUMNS,
    Stage,
    device_row,
)

__all__ = [
    "ACTIVE_STATUSES",
    "ANALYZED_COLUMNS",
    "CHANGE_COLUMNS",
    "COMPLETED_STATUSES",
    "DATA_COLUMNS",
    "FALLBACK_PAGE_SIZE",
    "FINISHED_STATUSES",
    "LOCK_NAMESPACE",
    "MAX_LOG_LINES",
    "MSG",
    "STAGE_COLUMNS",
    "STRING_COLUMNS",
    "SYNC_KIND",
    "SYNC_TASK",
    "DeviceMerge",
    "Listing",
    "MergeResult",
    "PageFetcher",
    "ProgressCallback",
    "Stage",
    "SyncAborted",
    "SyncCancelled",
    "SyncLock",
    "SyncNotAllowed",
    "device_row",
    "devices_sync",
    "list_device_pages",
    "next_slot",
    "sync_active_run",
    "sync_cancel",
    "sync_confirm_removals",
    "sync_dispatch",
    "sync_interval",
    "sync_lock_held",
    "sync_offset_for",
    "sync_request",
    "sync_run_is_alive",
    "sync_runs_reap",
]
