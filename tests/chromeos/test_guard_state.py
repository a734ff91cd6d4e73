"""The deletion guard is a state, not a run (issue 15, What to build 6): removals a guarded run held back stay
held until an admin confirms them; later runs, manual or scheduled, whatever the fleet has grown to, apply none."""

from __future__ import annotations

import pytest

from chromeos.models import GoogleIntegration, SyncStatus, SyncTrigger
from chromeos.services.sync import devices_sync, sync_confirm_removals
from google_emulator.testing import EmulatorHandle
from mdm.models import User
from mdm.tenancy import tenant_context
from tests.chromeos.test_sync_faults import at_google, new_run, run_sync, stored


def _held(integration: GoogleIntegration) -> bool:
    return GoogleIntegration.unscoped.get(pk=integration.pk).removals_held_since is not None


@pytest.mark.django_db
def test_held_back_removals_stay_held_whoever_syncs_until_an_admin_confirms(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle, admin_user: User
) -> None:
    assert run_sync(google_integration).status == SyncStatus.SUCCEEDED  # 50 devices
    google_emulator.control("POST", "/devices/delete", {"count": 10, "seed": 2})  # 10 of 50: over 10 %
    guarded = run_sync(google_integration)
    assert guarded.status == SyncStatus.GUARDED and guarded.removed == 0
    assert _held(google_integration)
    # The fleet grows: the same 10 absences are now 10 of 250 (4 %), under the threshold.
    google_emulator.control("POST", "/devices", {"count": 200})
    for trigger in (SyncTrigger.MANUAL, SyncTrigger.SCHEDULED):
        later = devices_sync(new_run(google_integration, trigger))
        assert later.status == SyncStatus.GUARDED, later.log
        assert later.removed == 0 and later.pending_removals == 10
        assert "en attente de la confirmation" in str(later.log)
    assert len(stored(google_integration)) == 250  # the 10 absent devices are still there, held
    assert _held(google_integration)

    with tenant_context(google_integration.tenant):
        confirmed, _created = sync_confirm_removals(
            integration=google_integration, run_id=later.pk, user=admin_user
        )
    confirmed = devices_sync(confirmed)
    assert confirmed.status == SyncStatus.SUCCEEDED and confirmed.removed == 10
    assert stored(google_integration) == at_google(google_emulator)
    assert not _held(google_integration)
    # The guard is lifted: a small removal later is applied as usual.
    google_emulator.control("POST", "/devices/delete", {"count": 2, "seed": 3})
    assert run_sync(google_integration).removed == 2


@pytest.mark.django_db
def test_the_held_message_a_worker_writes_gives_the_time_in_the_tenants_zone(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle
) -> None:
    from django.utils import timezone

    tenant = google_integration.tenant
    tenant.time_zone = "America/New_York"
    tenant.save(update_fields=["time_zone"])
    assert run_sync(google_integration).status == SyncStatus.SUCCEEDED
    google_emulator.control("POST", "/devices/delete", {"count": 10, "seed": 2})
    assert run_sync(google_integration).status == SyncStatus.GUARDED
    # The worker runs in the console's zone (Paris); the line is read by a tenant in New York.
    later = devices_sync(new_run(google_integration, SyncTrigger.SCHEDULED))
    held_since = GoogleIntegration.unscoped.get(pk=google_integration.pk).removals_held_since
    since = [line["params"]["since"] for line in later.log if "since" in (line.get("params") or {})]
    new_york = timezone.localtime(held_since, tenant.tzinfo).strftime("%Y-%m-%d %H:%M")
    paris = timezone.localtime(held_since).strftime("%Y-%m-%d %H:%M")
    assert new_york != paris and since == [new_york]
