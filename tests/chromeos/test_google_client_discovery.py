"""The discovery documents behind every GoogleClient: parsed once per process and shared, so that a client costs
neither a parse nor a megabyte of garbage left for the collector's rare full pass (issue 18: a threads worker's
peak RSS grew with the tuned collector, ``benchmarks/fleet.py``), and still safe to build on many threads."""

from __future__ import annotations

import gc
import threading

import pytest

from chromeos.google import client as google_client
from chromeos.google.client import GoogleClient, discovery_document


@pytest.fixture
def fresh_documents(monkeypatch):
    """As in a new worker process: no document parsed yet."""
    monkeypatch.setattr(google_client, "_DOCUMENTS", {})


def garbage_of_one_client(integration) -> int:
    """Objects only the garbage collector frees once a client that listed devices is dropped."""
    gc.collect()
    gc.disable()
    try:
        client = GoogleClient(integration)
        client.directory().chromeosdevices().list(customerId="my_customer", projection="FULL")
        client.chrome_policy().customers().policies()
        del client
        return gc.collect()
    finally:
        gc.enable()


def test_a_client_leaves_little_garbage_once_the_documents_are_parsed(google_integration, google_emulator):
    garbage_of_one_client(google_integration)  # this process's first client parses the documents
    # Before: each client parsed both documents again, ~1,500 objects for the directory's alone, all in cycles.
    assert garbage_of_one_client(google_integration) < 800


def test_clients_share_one_parsed_document(google_integration, google_emulator, fresh_documents):
    first, second = GoogleClient(google_integration), GoogleClient(google_integration)
    document = discovery_document("admin", "directory_v1")
    assert first.directory()._rootDesc is document
    assert second.directory()._rootDesc is document
    assert first.directory() is not second.directory()  # each its own credentials and connection


def test_clients_built_on_many_threads_at_once_make_the_same_requests(
    google_integration, google_emulator, fresh_documents
):
    """The library completes the shared description the first time it builds a method: the first parse is built
    whole under a lock, so 16 threads building their first clients at once all succeed, alike."""
    start = threading.Barrier(16)
    uris: list[str] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            start.wait()
            client = GoogleClient(google_integration)
            request = (
                client.directory()
                .chromeosdevices()
                .list(customerId="my_customer", projection="FULL", maxResults=300, orgUnitPath="/A")
            )
            uris.append(request.uri)
            client.directory().customer().devices().chromeos().countChromeOsDevices(customerId="my_customer")
            client.chrome_policy().customers().policies().orgunits()
        except BaseException as error:  # any error of a thread fails the test
            errors.append(error)

    threads = [threading.Thread(target=build) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(uris) == 16 and len(set(uris)) == 1
    assert uris[0].startswith(
        google_emulator.url + "/admin/directory/v1/customer/my_customer/devices/chromeos?"
    )
