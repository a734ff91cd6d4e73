"""Ops CLI: manage.py chromeos_sync TENANT and chromeos_status [TENANT]."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from chromeos.models import GoogleIntegration, IntegrationStatus, SyncRun, SyncStatus
from google_emulator.testing import EmulatorHandle


@pytest.mark.django_db
@pytest.mark.google_emulator(devices=40)
def test_chromeos_sync_runs_in_the_foreground_and_prints_counts(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle
) -> None:
    out, err = StringIO(), StringIO()
    call_command("chromeos_sync", "acme", stdout=out, stderr=err)
    text = out.getvalue()
    assert "succeeded" in text and "added 40, updated 0, unchanged 0, removed 0" in text
    assert "40/40" in err.getvalue()  # tqdm's bar reached Google's count
    status = StringIO()
    call_command("chromeos_status", stdout=status)
    report = status.getvalue()
    assert "acme (example.com): Active" in report and "devices 40 (+0 removed)" in report
    assert "next sync 20" in report  # scheduled after the first manual sync


@pytest.mark.django_db
def test_chromeos_sync_exits_non_zero_when_google_refuses(
    google_integration: GoogleIntegration, google_emulator: EmulatorHandle
) -> None:
    google_emulator.control("POST", "/oauth/revoke", {})
    with pytest.raises(CommandError, match="failed"):
        call_command("chromeos_sync", "acme", "--no-progress", stdout=StringIO())
    assert SyncRun.unscoped.get().status == SyncStatus.FAILED
    google_integration.refresh_from_db()
    assert google_integration.status == IntegrationStatus.REAUTH_REQUIRED
    with pytest.raises(CommandError, match="Synchronisation impossible"):
        call_command("chromeos_sync", "acme", stdout=StringIO())


@pytest.mark.django_db
def test_unknown_tenant_is_a_clear_error() -> None:
    with pytest.raises(CommandError, match="unknown tenant"):
        call_command("chromeos_sync", "nope", stdout=StringIO())
    with pytest.raises(CommandError, match="no Google integration"):
        call_command("chromeos_status", "nope", stdout=StringIO())
