"""The ChromeOS sync: a tenant's Google OUs and ChromeOS devices, brought into the console.

A run (``devices_sync``), in order:

1. **Lock.** A per-tenant advisory lock (``SyncLock``, an ``mdm.locks.AdvisoryLock``) on a dedicated
   connection that lives exactly as long as the run. If the process dies, the lock dies with its connection,
   so "RUNNING but nobody holds the lock" always means "dead": that is how stale runs are recognised
   (``sync_run_is_alive``), without guessing from clocks.
   The loser of the lock race does nothing and says so in its run's log.
2. **OUs.** ``orgunits.list`` (every OU, the root included), matched by path to the tenant's LDAP OUs.
3. **Devices.** ``countChromeOsDevices``, then every page of ``chromeosdevices.list`` (projection FULL, the
   largest page size the API takes), each page streamed with ``COPY`` into a TEMP staging table (not
   WAL-logged, private to the run's connection). New or changed devices (their etag differs from the stored
   row, one indexed look-up per page) carry their columns and payload; unchanged ones carry only their id, so
   a no-change re-sync writes almost nothing. No transaction is open while Google is being paged.
   A tenant of more than a few pages is listed in parallel, by disjoint OU partitions whose Google counts add
   up (``partitions``); unless that listing is proven complete, it is thrown away and listed again in sequence.
4. **Merge.** Google's count again, then ONE short transaction: lock the integration row (a removal that
   won the race leaves nothing to write into), upsert OUs, record ``DeviceChange`` rows, upsert new and
   changed devices with one ``INSERT ... ON CONFLICT (tenant_id, device_id) DO UPDATE ... WHERE etag IS
   DISTINCT FROM``, then mark removed the devices absent from the listing — only if every page was fetched
   and the listing adds up (distinct devices listed = Google's count before = Google's count after), and
   only if that removes at most ``deletion_guard_percent`` of the tenant's devices (else the run is GUARDED
   and an admin confirms: ``sync_confirm_removals``). The run's final state commits in that transaction.

Any failure before the merge leaves the stored devices exactly as they were.

Settings: ``CHROMEOS_SYNC_INTERVAL_SECONDS`` (3600), ``CHROMEOS_SYNC_PAGE_SIZE`` (300, the discovery
document's maximum; a 400 on it falls back to Google's default of 100), ``CHROMEOS_SYNC_QUEUED_TIMEOUT_SECONDS``
(1800: a queued run never picked up is given up), ``CHROMEOS_SYNC_PROGRESS_SECONDS`` (0.25: how often progress
is written to the run row), ``CHROMEOS_SYNC_LISTING_THREADS`` (``GOOGLE_QUOTA_TENANT_CONCURRENCY``: threads of a
parallel listing, 1 = never parallel), ``CHROMEOS_SYNC_PARALLEL_MIN_DEVICES`` (10000: smaller tenants list in
sequence).

The package follows those steps, one module each:

- ``runs``: the run rows and the lock (requesting, confirming removals, the run's log, reaping dead runs);
- ``listing``: reading Google (OUs, the device count, every page of devices, ``PageFetcher``'s fetch thread);
- ``partitions``: the parallel listing by OU (its plan, its threads, the proof that it is complete);
- ``staging``: a Google device as a row, and the run's TEMP staging table (``Stage``);
- ``merge``: the staged devices and the listed OUs into the tenant's tables, the sweep and its guard;
- ``schedule``: each tenant's slot in the hour, beat's dispatcher, the next slot after a run;
- ``pipeline``: ``devices_sync``, a run from start to end, calling the others in order.

Other code imports from ``chromeos.services.sync``; the names below are its interface.
"""

from chromeos.services.sync.listing import FALLBACK_PAGE_SIZE, Listing, PageFetcher, list_device_pages
from chromeos.services.sync.merge import MergeResult
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
    SyncLock,
    SyncNotAllowed,
    sync_active_run,
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
    "Listing",
    "MergeResult",
    "PageFetcher",
    "ProgressCallback",
    "Stage",
    "SyncAborted",
    "SyncLock",
    "SyncNotAllowed",
    "device_row",
    "devices_sync",
    "list_device_pages",
    "next_slot",
    "sync_active_run",
    "sync_confirm_removals",
    "sync_dispatch",
    "sync_interval",
    "sync_lock_held",
    "sync_offset_for",
    "sync_request",
    "sync_run_is_alive",
    "sync_runs_reap",
]
