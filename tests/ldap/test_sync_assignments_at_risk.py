"""An LDAP OU that disappears (deleted, renamed, purged after its grace period) while the Google OU it backs
carries Blueprint or app assignments: said in the LDAP run's log and in the audit trail (issue 15, What to build
4), never silently."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from ldap_sync.models import LdapOrgUnit, LdapSyncRun, SyncStatus
from mdm.models import AuditEvent
from tests.factories import OrgUnitFactory, PolicyAssignmentFactory

pytestmark = pytest.mark.django_db


def messages_of(run: LdapSyncRun) -> str:
    return "\n".join(line["msgid"] % line["params"] if line["params"] else line["msgid"] for line in run.log)


def _google_ou_with_assignments(tenant, ldap_unit: LdapOrgUnit, count: int = 2):
    google_ou = OrgUnitFactory(
        tenant=tenant, path=ldap_unit.path, name=ldap_unit.name, ldap_org_unit=ldap_unit
    )
    for _ in range(count):
        PolicyAssignmentFactory(tenant=tenant, org_unit=google_ou, integration=google_ou.integration)
    return google_ou


def test_a_deleted_renamed_then_purged_ldap_ou_with_assignments_is_logged_and_audited(
    tenant, make_directory, run_sync, scratch_ou, slapd
):
    doomed = scratch_ou.add_ou("Archivé")
    renamed = scratch_ou.add_ou("Ventes")
    scratch_ou.add_ou("Calme")
    directory = make_directory(tenant, base_dn=scratch_ou.dn, missing_grace_days=30)
    run_sync(directory)
    units = {u.path: u for u in LdapOrgUnit.unscoped.filter(tenant=tenant)}
    _google_ou_with_assignments(tenant, units["/Archivé"])
    _google_ou_with_assignments(tenant, units["/Ventes"], count=1)
    OrgUnitFactory(tenant=tenant, path="/Calme", name="Calme", ldap_org_unit=units["/Calme"])  # no assignment

    conn = slapd.root_connection()
    conn.delete_s(doomed)
    conn.rename_s(renamed, "ou=Commercial")
    conn.unbind_s()
    run = run_sync(directory).run

    assert run.status == SyncStatus.SUCCEEDED, messages_of(run)
    log = messages_of(run)
    assert (
        "L'unité LDAP /Archivé a disparu de l'annuaire : l'unité Google /Archivé porte 2 affectation(s)"
        in log
    )
    assert (
        "L'unité LDAP /Ventes a été renommée en /Commercial : l'unité Google /Ventes porte 1 affectation(s)"
        in log
    )
    assert "/Calme" not in log
    events = {
        (e.target, e.details["reason"]): e
        for e in AuditEvent.unscoped.filter(tenant=tenant, action="ldap.org_unit.assignments_at_risk")
    }
    assert set(events) == {("/Archivé", "deleted"), ("/Ventes", "renamed")}
    assert events[("/Archivé", "deleted")].details["assignments"] == 2

    # Said once: the next run does not repeat it while the OU waits out its grace period.
    again = run_sync(directory).run
    assert "affectation(s)" not in messages_of(again)

    # Past the grace period the row goes, and the Google OU's link with it: said again, as final.
    LdapOrgUnit.unscoped.filter(tenant=tenant, path="/Archivé").update(
        missing_since=timezone.now() - timedelta(days=31)
    )
    purged = run_sync(directory).run
    assert "L'unité LDAP /Archivé est supprimée définitivement : l'unité Google /Archivé perd son lien" in (
        messages_of(purged)
    )
    assert AuditEvent.unscoped.filter(
        tenant=tenant, action="ldap.org_unit.assignments_at_risk", details__reason="purged", target="/Archivé"
    ).exists()
