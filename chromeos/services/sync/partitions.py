"""Listing one tenant's devices in parallel, by org unit, and proving the listing complete.

Google pages a listing one page after the other (each page needs the previous page's token), so a 100,000-device
tenant takes 334 round trips however fast the console stores: ~100 s at 300 ms a page. Listings of disjoint org
units are independent, though, and Google counts each one (``countChromeOsDevices`` with ``orgUnitPath``), so:

1. **Plan** (:func:`plan_partitions`): split the OU tree, top down, into disjoint partitions whose device counts
   add up to the customer's count taken just before. A subtree no bigger than ``chunk`` devices stays one
   partition (``includeChildOrgunits=true``: one listing, and an OU created inside it meanwhile is covered);
   a bigger one is split into its own OU alone (``includeChildOrgunits=false``) and its children's subtrees, each
   counted, recursively. The counts of one level run concurrently; at most ``budget`` counts are spent; a
   level whose counts do not add up to its parent's (Google changed while we counted) gives up: no plan.
2. **List** (:class:`ParallelListing`): ``threads`` threads, each with its own Google client (an httplib2
   ``Http`` is not thread-safe), take partitions largest first, page through each, then count it again. Pages go
   to the run's thread through one bounded queue, as the sequential ``PageFetcher`` does: memory stays flat.
   Every call still passes ``GoogleClient.execute``, hence the quota governor: the threads of a tenant never
   hold more than ``GOOGLE_QUOTA_TENANT_CONCURRENCY`` calls in flight at Google, whatever ``threads`` says.
3. **Prove** (:func:`listing_proof`): the listing is complete only if the partitions' counts before add up to
   the customer's count before, each partition listed exactly as many distinct devices as it counted before
   and after its listing, no device was listed by two partitions, and the partitions' counts after add up to
   the customer's count after, itself equal to the count before. A device moved between OUs while they were
   listed, an OU created outside a listed subtree, a device added or deleted, a count that failed: each breaks
   one of these equations, and the sync then lists again sequentially (never removes on an unproven listing).

Small tenants keep the sequential listing (``CHROMEOS_SYNC_PARALLEL_MIN_DEVICES``, default 10,000, i.e. 34 pages
of 300). A parallel listing has fixed costs: a round or two of counts to plan, one to prove, and a partial last
page per partition. Measured at 300 ms a call (benchmarks/sync.py, 13 OUs): at 3,000 devices it took 0.95× the
sequential listing for 3.5× its calls (45 against 13); at 20,000, 0.33× for 1.6× the calls (110 against 70); at
100,000, 0.34× for 1.1× (370 against 337). Below ~10 s of sequential listing the seconds saved do not pay for calls that every tenant's
syncs share (one OAuth client = one Google project quota).

Settings: ``CHROMEOS_SYNC_LISTING_THREADS`` (default ``GOOGLE_QUOTA_TENANT_CONCURRENCY``, 8; 1 turns parallel
listing off), ``CHROMEOS_SYNC_PARALLEL_MIN_DEVICES`` (10000).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings

from chromeos.google.errors import AuthRevoked, GoogleError

if TYPE_CHECKING:
    from chromeos.google.client import GoogleClient

# A plan spends at most this many counts, whatever the tenant's size: a tenant with thousands of OUs is split
# only along its biggest subtrees.
MAX_PLAN_COUNTS = 128


# -- settings --------------------------------------------------------------------------------------------------
def listing_threads() -> int:
    default = int(getattr(settings, "GOOGLE_QUOTA_TENANT_CONCURRENCY", 8)) or 8
    return max(1, int(getattr(settings, "CHROMEOS_SYNC_LISTING_THREADS", default)))


def parallel_min_devices() -> int:
    return int(getattr(settings, "CHROMEOS_SYNC_PARALLEL_MIN_DEVICES", 10000))


def parallel_listing_wanted(total: int, page_size: int) -> bool:
    """Is this tenant big enough for a parallel listing to pay (see the module's docstring)?"""
    return listing_threads() > 1 and total >= max(parallel_min_devices(), 2 * page_size)


# -- the plan --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Partition:
    """One disjoint share of the fleet: an OU alone, or an OU with its whole subtree."""

    org_unit_id: str  # as Google gives it ("id:03ph8a2z..."): the root has no path the API takes
    path: str
    with_children: bool
    expected: int  # Google's count when planned, before any listing started

    def describe(self) -> str:
        return f"{self.path}{'/**' if self.with_children and self.path != '/' else ''}"


@dataclass
class Plan:
    partitions: list[Partition]
    counts: int  # counts spent planning


# (org unit id, with its children) for each count asked; the answers in the same order.
Counter = Callable[[Sequence[tuple[str, bool]]], list[int]]


@dataclass
class _Unit:
    org_unit_id: str
    path: str
    children: list[_Unit] = field(default_factory=list)


def _tree(units: Iterable[dict[str, Any]]) -> _Unit | None:
    by_path: dict[str, _Unit] = {}
    for unit in units:
        path, org_unit_id = unit.get("orgUnitPath"), unit.get("orgUnitId")
        if isinstance(path, str) and isinstance(org_unit_id, str) and path.startswith("/"):
            by_path.setdefault(path.casefold(), _Unit(org_unit_id, path))
    root = by_path.get("/")
    if root is None:
        return None
    for key, node in by_path.items():
        if node is root:
            continue
        parent = by_path.get(key.rsplit("/", 1)[0] or "/")
        if parent is None:
            return None  # a hole in the tree: its devices would be in no partition
        parent.children.append(node)
    return root


def plan_partitions(
    units: Iterable[dict[str, Any]], total: int, count: Counter, *, chunk: int, budget: int
) -> Plan | None:
    """Disjoint partitions covering the OU tree, their counts adding up to ``total`` (see step 1 above), largest
    first; None when the tree is unusable or Google's counts did not add up (something changed meanwhile)."""
    root = _tree(units)
    if root is None:
        return None
    partitions: list[Partition] = []
    spent = 0
    frontier: list[tuple[_Unit, int]] = [(root, total)]
    while frontier:
        # Biggest subtrees first: when the budget runs out, what is left whole is the smaller part.
        frontier.sort(key=lambda item: -item[1])
        expand: list[tuple[_Unit, int]] = []
        for node, size in frontier:
            cost = 1 + len(node.children)
            if size > chunk and node.children and spent + cost <= budget:
                expand.append((node, size))
                spent += cost
            elif size:
                partitions.append(Partition(node.org_unit_id, node.path, bool(node.children), size))
        if not expand:
            break
        asked: list[tuple[str, bool]] = []
        for node, _size in expand:
            asked.append((node.org_unit_id, False))
            asked.extend((child.org_unit_id, True) for child in node.children)
        answers = count(asked)
        frontier = []
        position = 0
        for node, size in expand:
            own = answers[position]
            below = answers[position + 1 : position + 1 + len(node.children)]
            position += 1 + len(node.children)
            if own + sum(below) != size:
                return None
            if own:
                partitions.append(Partition(node.org_unit_id, node.path, False, own))
            frontier.extend(zip(node.children, below, strict=True))
    partitions.sort(key=lambda p: -p.expected)
    return Plan(partitions, spent)


# -- the proof -------------------------------------------------------------------------------------------------
@dataclass
class PartitionOutcome:
    listed: int = 0  # distinct devices this partition's listing gave
    count_after: int | None = None  # None: not counted (the listing or the count failed)
    done: bool = False


def listing_proof(
    *,
    total_before: int,
    total_after: int,
    partitions: Sequence[Partition],
    outcomes: Sequence[PartitionOutcome],
    shared: int,
) -> list[str]:
    """Why this parallel listing is not proven complete (see step 3 above); empty: it is."""
    reasons: list[str] = []
    if sum(p.expected for p in partitions) != total_before:
        reasons.append(f"partitions counted {sum(p.expected for p in partitions)} of {total_before}")
    if total_after != total_before:
        reasons.append(f"customer count {total_before} then {total_after}")
    if shared:
        reasons.append(f"{shared} devices listed in two org units")
    after_sum = 0
    for partition, outcome in zip(partitions, outcomes, strict=True):
        if not outcome.done or outcome.count_after is None:
            reasons.append(f"{partition.describe()}: not listed to the end")
            continue
        after_sum += outcome.count_after
        if not outcome.listed == partition.expected == outcome.count_after:
            reasons.append(
                f"{partition.describe()}: counted {partition.expected}, listed {outcome.listed}, "
                f"then counted {outcome.count_after}"
            )
    if not reasons and after_sum != total_after:
        reasons.append(f"partitions counted {after_sum} of {total_after} after")
    return reasons


# -- the listing -----------------------------------------------------------------------------------------------
PageLister = Callable[["GoogleClient", Partition], Iterator[list[Any]]]
PartitionCounter = Callable[["GoogleClient", str, bool], int]

_DONE = object()


class ClientPool:
    """One Google client per thread (an httplib2 ``Http`` must not be shared between threads), made on demand
    by ``make_client``; ``clients`` lists them for the caller to save their refreshed tokens afterwards."""

    def __init__(self, make_client: Callable[[], GoogleClient]) -> None:
        self._make_client = make_client
        self._local = threading.local()
        self._lock = threading.Lock()
        self.clients: list[GoogleClient] = []

    def client(self) -> GoogleClient:
        client: GoogleClient | None = getattr(self._local, "client", None)
        if client is None:
            client = self._make_client()
            self._local.client = client
            with self._lock:
                self.clients.append(client)
        return client

    @property
    def quota_waits(self) -> int:
        return sum(c.quota_waits for c in self.clients)

    @property
    def quota_wait_seconds(self) -> float:
        return sum(c.quota_wait_seconds for c in self.clients)


def count_concurrently(
    executor: ThreadPoolExecutor, pool: ClientPool, count: PartitionCounter, asked: Sequence[tuple[str, bool]]
) -> list[int]:
    """Google's counts of several OUs at once, one per thread; the first error is raised."""
    futures = [
        executor.submit(lambda ou, children: count(pool.client(), ou, children), ou, children)
        for ou, children in asked
    ]
    return [future.result() for future in futures]


@dataclass
class _Page:
    index: int
    devices: list[Any]


@dataclass
class _Finished:
    index: int
    count_after: int


class ParallelListing:
    """The partitions' pages, listed by ``threads`` threads, yielded one at a time to the run's thread, which
    alone touches the database. Iterate it, then read ``outcomes`` and ``shared`` for :func:`listing_proof`.

    A Google error in a thread (after the client's retries) ends the iteration with ``failed`` set, not an
    exception: an unproven parallel listing is followed by a sequential one, which raises what it meets. Only a
    refused grant (``AuthRevoked``) is raised at once: nothing would succeed after it.
    """

    def __init__(
        self,
        partitions: Sequence[Partition],
        *,
        pool: ClientPool,
        executor: ThreadPoolExecutor,
        list_pages: PageLister,
        count: PartitionCounter,
        depth: int = 4,
        on_wait: Callable[[], None] | None = None,
    ) -> None:
        self.partitions = list(partitions)
        self._on_wait = on_wait or (lambda: None)
        self.outcomes = [PartitionOutcome() for _ in self.partitions]
        self.shared = 0
        self.failed: GoogleError | None = None
        self._pool = pool
        self._executor = executor
        self._list_pages = list_pages
        self._count = count
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        # Which partition listed each device: a hash of its id (8 bytes, not the id's ~90), so a 100,000-device
        # tenant costs a few MB. A collision can only make the proof fail (a sequential listing follows).
        self._seen: dict[int, int] = {}
        self._distinct = 0
        # Copies of a device its own partition had already listed (Google's offset paging shifted): with none,
        # every device id this listing gave is distinct (a hash collision only counts one too many).
        self.repeats = 0

    def _list(self, index: int) -> None:
        partition = self.partitions[index]
        if self._stop.is_set():
            return
        try:
            client = self._pool.client()
            for devices in self._list_pages(client, partition):
                if not self._put(_Page(index, devices)):
                    return
            after = self._count(client, partition.org_unit_id, partition.with_children)
            self._put(_Finished(index, after))
        except BaseException as error:
            self._put(error)

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _record(self, page: _Page) -> None:
        outcome = self.outcomes[page.index]
        for device in page.devices:
            device_id = device.get("deviceId") if isinstance(device, dict) else None
            if not isinstance(device_id, str):
                continue
            owner = self._seen.setdefault(hash(device_id), page.index)
            if owner != page.index:
                self.shared += 1
            elif len(self._seen) > self._distinct:
                self._distinct += 1  # new; not a second copy from this partition's own paging
                outcome.listed += 1
            else:
                self.repeats += 1

    def __iter__(self) -> Iterator[list[Any]]:
        pending = len(self.partitions)
        for index in range(len(self.partitions)):
            self._executor.submit(self._list, index)
        while pending:
            try:
                item = self._queue.get(timeout=0.5)
            except queue.Empty:
                self._on_wait()  # a thread may be backing off: the run's thread says so meanwhile
                continue
            self._on_wait()
            if isinstance(item, _Page):
                self._record(item)
                yield item.devices
            elif isinstance(item, _Finished):
                self.outcomes[item.index].count_after = item.count_after
                self.outcomes[item.index].done = True
                pending -= 1
            elif isinstance(item, AuthRevoked):
                raise item
            elif isinstance(item, GoogleError):
                self.failed = item
                return
            else:
                raise item

    def close(self) -> None:
        """Stop the threads after their current request (the executor's owner waits for them)."""
        self._stop.set()


# -- one run's parallel listing, start to end ------------------------------------------------------------------
def count_partition(client: GoogleClient, customer: str, org_unit_id: str, with_children: bool) -> int:
    """Google's count of one OU (with its subtree or not)."""
    request = (
        client.directory()
        .customer()
        .devices()
        .chromeos()
        .countChromeOsDevices(
            customerId=customer, orgUnitPath=org_unit_id, includeChildOrgunits=with_children
        )
    )
    return int(client.execute(request).get("count", 0))


class PartitionedListing:
    """Plan, list and prove one tenant's devices in parallel (steps 1-3 of the module's docstring).

    ``on_wait`` is called by the run's thread while it waits for pages (and after planning): the threads'
    clients' backoffs are told there (``listing.RetryNotices``).

    ``plan()`` says whether to go parallel (else ``reason`` says why not); iterating yields the pages; ``proof``
    (given Google's count after) says why the listing is not proven, empty when it is. ``close()`` stops and joins
    the threads: call it in a ``finally``, then save the clients' tokens (``pool.clients``) from the run's thread.
    """

    def __init__(
        self,
        *,
        customer: str,
        units: Iterable[dict[str, Any]],
        total_before: int,
        page_size: int,
        make_client: Callable[[], GoogleClient],
        list_pages: PageLister,
        threads: int | None = None,
        on_wait: Callable[[], None] | None = None,
    ) -> None:
        self.customer = customer
        self.on_wait = on_wait
        self.units = list(units)
        self.total_before = total_before
        self.page_size = page_size
        self.threads = threads or listing_threads()
        self.pool = ClientPool(make_client)
        self.list_pages = list_pages
        self.partitions: list[Partition] = []
        self.plan_counts = 0
        self.reason = ""
        self.listing: ParallelListing | None = None
        self._executor = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="chromeos-sync-list")

    def _count(self, client: GoogleClient, org_unit_id: str, with_children: bool) -> int:
        return count_partition(client, self.customer, org_unit_id, with_children)

    def plan(self) -> bool:
        pages = -(-self.total_before // self.page_size)
        # Partitions of about half a thread's share: the largest-first queue then evens the threads out.
        chunk = max(self.page_size, -(-self.total_before // (2 * self.threads)))
        budget = min(MAX_PLAN_COUNTS, max(2 * self.threads, pages))
        try:
            plan = plan_partitions(
                self.units,
                self.total_before,
                lambda asked: count_concurrently(self._executor, self.pool, self._count, asked),
                chunk=chunk,
                budget=budget,
            )
        except AuthRevoked:
            raise
        except GoogleError as error:
            self.reason = f"count failed: {error}"
            return False
        if plan is None:
            self.reason = "the org units' counts do not add up to the customer's"
            return False
        self.plan_counts = plan.counts
        self.partitions = plan.partitions
        if len(plan.partitions) < 2:
            self.reason = "one org unit holds the devices"
            return False
        return True

    def __iter__(self) -> Iterator[list[Any]]:
        self.listing = ParallelListing(
            self.partitions,
            pool=self.pool,
            executor=self._executor,
            list_pages=self.list_pages,
            count=self._count,
            on_wait=self.on_wait,
        )
        return iter(self.listing)

    @property
    def repeats(self) -> int | None:
        """Copies of devices their partition had listed already (None: not listed)."""
        return self.listing.repeats if self.listing is not None else None

    def proof(self, total_after: int) -> list[str]:
        if self.listing is None:
            return ["not listed"]
        if self.listing.failed is not None:
            return [f"Google error: {self.listing.failed}"]
        return listing_proof(
            total_before=self.total_before,
            total_after=total_after,
            partitions=self.partitions,
            outcomes=self.listing.outcomes,
            shared=self.listing.shared,
        )

    def close(self) -> None:
        if self.listing is not None:
            self.listing.close()
        self._executor.shutdown(wait=True, cancel_futures=True)
