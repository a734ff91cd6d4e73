"""Listing Google: the OUs, the device count, and every page of devices (``list_device_pages``), fetched by
``PageFetcher`` in a background thread that hands the pages to the run's thread.

The seam with the rest of the run: the run iterates ``PageFetcher`` (pages of devices; a device may come twice,
the last copy wins) and asks ``ready()`` whether the next page is already here (when it is not, the run merges
what it staged while Google is being waited for). The parallel listing (``partitions.py``) is the other source
of pages, merged in batches.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from chromeos.google.client import GoogleClient
from chromeos.google.errors import GoogleBadRequest
from chromeos.models import GoogleIntegration

FALLBACK_PAGE_SIZE = 100  # Google's documented default for chromeosdevices.list


def _page_size() -> int:
    return int(getattr(settings, "CHROMEOS_SYNC_PAGE_SIZE", 300))


@dataclass
class Listing:
    pages: int = 0
    devices: int = 0
    skipped: int = 0
    fresh: int = 0
    # No device id came twice (a proven parallel listing that met none): the end's removal of duplicates
    # (``Stage.analyze``) has nothing to do. False: not known.
    distinct: bool = False
    # When the progress was last written: the listing's start (the run's row was just written), never 0.0,
    # which made the first page's write depend on the machine's uptime (time.monotonic() under an hour or not).
    progress_written: float = field(default_factory=time.monotonic)


class _DeferredClient(GoogleClient):
    """The client of the fetch thread, which must not touch the database (its writes would go through another
    connection, outside the run's): refreshed tokens are saved by the run's thread (``save_tokens``) and a
    refused grant is handled there (``devices_sync``)."""

    def persist_tokens(self) -> None:
        return

    def save_tokens(self) -> None:
        GoogleClient.persist_tokens(self)


class RetryNotices:
    """Google's backoffs in listing threads, told to the run's thread, which alone writes the run's log.

    A listing thread's client sleeps through ``sleep`` (its backoff), which leaves the wait here; the run's
    thread calls ``tell`` whenever it waits for or takes a page: the progress stops, the log says why. Shared by
    the sequential ``PageFetcher`` and the parallel listing's threads (``pipeline._list_in_parallel``).
    """

    def __init__(self, on_retry: Callable[[float], None] | None = None) -> None:
        self._retries: queue.SimpleQueue[float] = queue.SimpleQueue()
        self._on_retry = on_retry

    def sleep(self, seconds: float) -> None:
        self._retries.put(seconds)
        time.sleep(seconds)

    def tell(self) -> None:
        while self._on_retry is not None:
            try:
                seconds = self._retries.get_nowait()
            except queue.Empty:
                return
            self._on_retry(seconds)


_DONE = object()


class PageFetcher:
    """Pages Google in a background thread, one or two pages ahead of the run's thread, which stages them.

    Parsing Google's JSON (the fetch) and waiting on PostgreSQL (the COPY) then overlap; the bounded queue keeps
    memory flat whatever the number of devices. Errors in the thread are raised in the run's thread.

    After the last page the thread asks Google's count again (``count_after``), while the run's thread stores
    that page: the listing's proof costs no extra wait at the end of the run.
    """

    def __init__(
        self,
        integration: GoogleIntegration,
        *,
        depth: int = 2,
        on_retry: Callable[[float], None] | None = None,
    ) -> None:
        self.notices = RetryNotices(on_retry)
        self.client = _DeferredClient(integration, sleep=self.notices.sleep)
        self.integration = integration
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._fallbacks: list[tuple[int, int]] = []
        self.count_after: int | None = None
        self._thread = threading.Thread(target=self._fetch, name="chromeos-sync-fetch", daemon=True)

    def _fetch(self) -> None:
        try:
            pages = list_device_pages(
                self.client, self.integration, on_fallback=lambda a, b: self._fallbacks.append((a, b))
            )
            for page in pages:
                if not self._put(page):
                    return
            self.count_after = _count_devices(self.client, self.integration)
            self._put(_DONE)
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

    def ready(self) -> bool:
        """Is the next page (or the end, or an error) already here? When it is not, Google is the one being
        waited for: the run's thread has time to merge what it staged."""
        return not self._queue.empty()

    def take_fallbacks(self) -> list[tuple[int, int]]:
        taken, self._fallbacks = self._fallbacks, []
        return taken

    def __iter__(self) -> Iterator[list[Any]]:
        self._thread.start()
        while True:
            try:
                item = self._queue.get(timeout=0.5)
            except queue.Empty:
                self.notices.tell()
                continue
            self.notices.tell()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop the thread (after its current request) and save the tokens it refreshed."""
        self._stop.set()
        if self._thread.is_alive() or self._thread.ident is not None:
            self._thread.join(timeout=90)
        self.client.save_tokens()


def _customer(integration: GoogleIntegration) -> str:
    return integration.customer_id or "my_customer"


def _count_devices(client: GoogleClient, integration: GoogleIntegration) -> int:
    request = (
        client.directory()
        .customer()
        .devices()
        .chromeos()
        .countChromeOsDevices(customerId=_customer(integration))
    )
    return int(client.execute(request).get("count", 0))


def list_device_pages(
    client: GoogleClient,
    integration: GoogleIntegration,
    *,
    page_size: int | None = None,
    on_fallback: Callable[[int, int], None] | None = None,
    org_unit: str | None = None,
    with_children: bool = False,
) -> Iterator[list[Any]]:
    """Every page of the tenant's devices (projection FULL), as Google sends them; of one OU (its id or path),
    with its subtree or not, when ``org_unit`` is given (the parallel listing's partitions). Used by the sync and
    by the benchmark's fetch-only floors."""
    scope: dict[str, Any] = (
        {} if org_unit is None else {"orgUnitPath": org_unit, "includeChildOrgunits": with_children}
    )
    size = page_size or _page_size()
    token: str | None = None
    first = True
    # One resource for every page: building it walks the discovery document (~1 ms per call).
    chromeosdevices = client.directory().chromeosdevices()
    while True:
        request = chromeosdevices.list(
            customerId=_customer(integration), projection="FULL", maxResults=size, pageToken=token, **scope
        )
        try:
            body = client.execute(request)
        except GoogleBadRequest:
            # Google has documented 100, 200 and 300 as the maximum over the years: never trust one number.
            if not first or size <= FALLBACK_PAGE_SIZE:
                raise
            if on_fallback is not None:
                on_fallback(size, FALLBACK_PAGE_SIZE)
            size = FALLBACK_PAGE_SIZE
            continue
        first = False
        devices = body.get("chromeosdevices") or []
        yield devices if isinstance(devices, list) else []
        token = body.get("nextPageToken")
        if not token:
            return


def _org_units(client: GoogleClient, integration: GoogleIntegration) -> list[dict[str, Any]]:
    request = client.directory().orgunits().list(customerId=_customer(integration), type="allIncludingParent")
    units = client.execute(request).get("organizationUnits") or []
    return [u for u in units if isinstance(u, dict) and u.get("orgUnitId") and u.get("orgUnitPath")]
