"""The shared fixtures work end to end: the integration's stored token really opens the emulator's APIs."""

from __future__ import annotations

from django.db import connection

from chromeos.google.client import GoogleClient
from chromeos.models import GoogleIntegration


def test_google_integration_calls_the_emulator_through_google_client(google_integration, google_emulator):
    client = GoogleClient(google_integration)
    customer = client.execute(client.directory().customers().get(customerKey="my_customer"))
    assert customer["id"] == google_integration.customer_id
    assert customer["customerDomain"] == google_integration.domain
    units = client.execute(client.directory().orgunits().list(customerId="my_customer", type="all"))
    assert units["organizationUnits"]
    # Only the emulator was reached, and with the stored token's grant.
    assert [r["method"] for r in google_emulator.requests()] == [
        "directory.customers.get",
        "directory.orgunits.list",
    ]


def test_google_integration_tokens_are_encrypted_at_rest(google_integration):
    stored = GoogleIntegration.unscoped.filter(pk=google_integration.pk).values_list(
        "refresh_token", "access_token"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT refresh_token, access_token FROM chromeos_googleintegration WHERE id = %s",
            [google_integration.pk],
        )
        raw_refresh, raw_access = cursor.fetchone()
    assert google_integration.refresh_token not in raw_refresh
    assert google_integration.access_token not in raw_access
    assert list(stored) == [(google_integration.refresh_token, google_integration.access_token)]
