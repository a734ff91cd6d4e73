"""The OU and user sync against the real slapd: imports, renames/moves/deletes, and every fault."""

from __future__ import annotations

import time

import ldap
import pytest

from ldap_sync import demo_directory, services
from ldap_sync.models import LdapOrgUnit, LdapSyncRun, LdapUser, SyncStatus, SyncTrigger
from ldap_sync.selectors import ldap_org_units_by_path, ldap_prerequisites
from mdm.locks import dedicated_connection

pytestmark = pytest.mark.django_db


def messages_of(run: LdapSyncRun) -> str:
    return "\n".join(line["msgid"] % line["params"] if line["params"] else line["msgid"] for line in run.log)


def snapshot(tenant) -> tuple[set, set]:
    ous = set(LdapOrgUnit.unscoped.filter(tenant=tenant).values_list("entry_uuid", "path"))
    users = set(LdapUser.unscoped.filter(tenant=tenant).values_list("entry_uuid", "email"))
    return ous, users


def test_demo_directory_imports_with_google_style_paths(tenant, make_directory, run_sync, demo_dir):
    directory = make_directory(tenant)
    assert ldap_prerequisites(tenant).configured and not ldap_prerequisites(tenant).ous_synced

    outcome = run_sync(directory)

    run = outcome.run
    assert run.status == SyncStatus.SUCCEEDED, messages_of(run)
    by_path = ldap_org_units_by_path(tenant)
    # Base DN children are root children; ou=Services and ou=Groupes are OUs of the directory too.
    assert set(demo_dir.ou_paths()) | {"/Services", "/Groupes"} == set(by_path)
    network = by_path["/Paris/Équipe Réseau"]
    assert network.name == "Équipe Réseau" and network.parent == by_path["/Paris"]
    assert by_path["/Lyon/Ingénierie/Qualité"].parent.path == "/Lyon/Ingénierie"
    assert by_path["/Lyon"].parent is None
    assert LdapUser.unscoped.filter(tenant=tenant).count() == len(demo_dir.people)
    camille = LdapUser.unscoped.get(tenant=tenant, email="camille.durand@example.com")
    assert camille.name == "Camille Durand" and camille.org_unit.path == "/Paris/Direction"
    assert run.ous_added == len(by_path) and run.users_added == len(demo_dir.people)
    prerequisites = ldap_prerequisites(tenant)
    assert prerequisites.ready and prerequisites.ou_count == len(by_path) and prerequisites.last_sync
    assert directory.hourly_sync_enabled  # the first manual sync switches the hourly schedule on

    again = run_sync(directory, SyncTrigger.SCHEDULED).run
    assert (again.ous_added, again.ous_changed, again.ous_removed) == (0, 0, 0)
    assert (again.users_added, again.users_changed, again.users_removed) == (0, 0, 0)


def test_renamed_moved_and_deleted_ous_are_reflected(tenant, make_directory, run_sync, scratch_ou, slapd):
    paris = scratch_ou.add_ou("Paris")
    sales = scratch_ou.add_ou("Paris", "Ventes")
    key_accounts = scratch_ou.add_ou("Paris", "Ventes", "Grands Comptes")
    lyon = scratch_ou.add_ou("Lyon")
    quality = scratch_ou.add_ou("Lyon", "Qualité")
    doomed = scratch_ou.add_ou("Lyon", "Archivé")
    scratch_ou.add_person("vendeur", key_accounts, mail=["vendeur@example.com"])
    directory = make_directory(tenant, base_dn=scratch_ou.dn)
    run_sync(directory)
    before = {unit.path: unit.entry_uuid for unit in LdapOrgUnit.unscoped.filter(tenant=tenant)}

    conn = slapd.root_connection()
    conn.rename_s(sales, "ou=Commercial")  # a subtree rename: Grands Comptes moves with it
    conn.rename_s(quality, "ou=Qualité", newsuperior=paris)
    conn.delete_s(doomed)
    conn.unbind_s()
    outcome = run_sync(directory)

    assert outcome.run.status == SyncStatus.SUCCEEDED
    after = {unit.path: unit for unit in LdapOrgUnit.unscoped.filter(tenant=tenant, missing_since=None)}
    # A deleted OU is hidden, kept with its identity for the grace period.
    assert LdapOrgUnit.unscoped.get(tenant=tenant, missing_since__isnull=False).path == "/Lyon/Archivé"
    assert set(after) == {
        "/Paris",
        "/Paris/Commercial",
        "/Paris/Commercial/Grands Comptes",
        "/Lyon",
        "/Paris/Qualité",
    }
    # Identity follows entryUUID: a rename or a move changes the row, never replaces it.
    assert after["/Paris/Commercial"].entry_uuid == before["/Paris/Ventes"]
    assert after["/Paris/Commercial/Grands Comptes"].entry_uuid == before["/Paris/Ventes/Grands Comptes"]
    assert after["/Paris/Qualité"].entry_uuid == before["/Lyon/Qualité"]
    assert after["/Paris/Qualité"].parent.path == "/Paris"
    assert after["/Paris/Commercial"].dn == f"ou=Commercial,{paris}"
    assert outcome.changes.ous_removed == ["/Lyon/Archivé"]
    assert ("/Paris/Ventes", "/Paris/Commercial") in outcome.changes.ous_changed
    assert outcome.run.ous_changed == 3 and outcome.run.ous_removed == 1
    seller = LdapUser.unscoped.get(tenant=tenant, email="vendeur@example.com")
    assert seller.org_unit.path == "/Paris/Commercial/Grands Comptes"
    assert lyon in after["/Lyon"].dn


def test_non_ascii_and_escaped_dns(tenant, make_directory, run_sync, scratch_ou):
    exports = scratch_ou.add_ou("Ventes, Export + Après-vente")
    scratch_ou.add_ou("Ventes, Export + Après-vente", "Zoé & Noël")
    scratch_ou.add_person("zoe", exports, mail=["zoe@example.com"], cn=["Zoé Lefèvre"])
    directory = make_directory(tenant, base_dn=scratch_ou.dn)

    run_sync(directory)

    by_path = ldap_org_units_by_path(tenant)
    assert set(by_path) == {"/Ventes, Export + Après-vente", "/Ventes, Export + Après-vente/Zoé & Noël"}
    assert LdapUser.unscoped.get(tenant=tenant).name == "Zoé Lefèvre"


def test_server_down_mid_sync_changes_nothing(tenant, make_directory, run_sync, own_slapd, monkeypatch):
    server = own_slapd()
    directory = make_directory(tenant, server)
    run_sync(directory)
    before = snapshot(tenant)
    real_read_user = services._read_user
    seen = []

    def read_user_then_crash(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(1)
        if len(seen) == 50:  # mid-way through the first page of 250: the next page request finds no server
            server.stop()
        return real_read_user(*args, **kwargs)

    monkeypatch.setattr(services, "_read_user", read_user_then_crash)
    directory.operation_timeout = 2
    directory.save()

    run = run_sync(directory).run

    assert run.status == SyncStatus.FAILED and run.error_code in ("server_down", "unreachable")
    assert "Aucune modification" in messages_of(run)
    assert snapshot(tenant) == before


def test_changed_bind_password_fails_clearly_and_deletes_nothing(
    tenant, make_directory, run_sync, own_slapd, demo_dir
):
    server = own_slapd()
    directory = make_directory(tenant, server)
    run_sync(directory)
    before = snapshot(tenant)
    conn = server.root_connection()
    conn.modify_s(demo_dir.service_bind_dn, [(ldap.MOD_REPLACE, "userPassword", [b"rotated-by-ldap-admin"])])
    conn.unbind_s()

    run = run_sync(directory).run

    assert run.status == SyncStatus.FAILED and run.error_code == "invalid_credentials"
    assert "mot de passe" in run.error_message
    assert snapshot(tenant) == before


def test_size_limit_hit_fails_without_partial_deletes(tenant, make_directory, run_sync, own_slapd):
    server = own_slapd(size_limit=100)
    directory = make_directory(tenant, server)
    run_sync(directory)  # paging past the size limit is allowed here (size.prtotal=unlimited)
    before = snapshot(tenant)
    assert len(before[1]) > 100
    server.set_limits(size_limit=100, paged_total_limit="hard")  # now paging stops at the size limit too

    run = run_sync(directory).run

    assert run.status == SyncStatus.FAILED and run.error_code == "size_limit"
    assert snapshot(tenant) == before


def test_referrals_inside_the_tree_skip_removals(tenant, make_directory, run_sync, scratch_ou, slapd):
    scratch_ou.add_ou("Local")
    going = scratch_ou.add_ou("Bientôt supprimée")
    directory = make_directory(tenant, base_dn=scratch_ou.dn)
    run_sync(directory)
    delegated = f"ou=Délégué,{scratch_ou.dn}"
    scratch_ou.add(
        delegated,
        {
            "objectClass": ["referral", "extensibleObject"],
            "ou": ["Délégué"],
            "ref": [f"ldap://other.example.net/{delegated}"],
        },
        manage_dsa_it=True,
    )
    scratch_ou.add_ou("Nouvelle")
    conn = slapd.root_connection()
    conn.delete_s(going)
    conn.unbind_s()

    run = run_sync(directory).run

    assert run.status == SyncStatus.PARTIAL
    assert "aucune suppression" in messages_of(run)
    paths = set(ldap_org_units_by_path(tenant))
    assert {"/Local", "/Nouvelle", "/Bientôt supprimée"} <= paths  # added, but nothing removed


def test_base_dn_behind_a_referral_fails_clearly(tenant, make_directory, run_sync, scratch_ou):
    delegated = f"ou=Délégué,{scratch_ou.dn}"
    scratch_ou.add(
        delegated,
        {
            "objectClass": ["referral", "extensibleObject"],
            "ou": ["Délégué"],
            "ref": [f"ldap://other.example.net/{delegated}"],
        },
        manage_dsa_it=True,
    )
    directory = make_directory(tenant, base_dn=f"ou=Sous,{delegated}")

    run = run_sync(directory).run

    assert run.status == SyncStatus.FAILED and run.error_code == "referral"


def test_entries_without_mapped_attributes_are_skipped_and_kept(
    tenant, make_directory, run_sync, scratch_ou, slapd
):
    ou = scratch_ou.add_ou("Équipe")
    scratch_ou.add_person("complete", ou, mail=["complete@example.com"])
    vanishing = scratch_ou.add_person("mailless", ou, mail=["mailless@example.com"])
    scratch_ou.add_person("never-had-mail", ou)
    directory = make_directory(tenant, base_dn=scratch_ou.dn)
    first = run_sync(directory).run
    assert first.entries_skipped == 1
    assert "attribut « mail » absent" in messages_of(first) and "never-had-mail" in messages_of(first)
    conn = slapd.root_connection()
    conn.modify_s(vanishing, [(ldap.MOD_DELETE, "mail", None)])
    conn.unbind_s()

    run = run_sync(directory).run

    assert run.status == SyncStatus.SUCCEEDED and run.entries_skipped == 2
    # The entry still exists in LDAP: its imported row stays as it was, it is not "removed".
    assert set(LdapUser.unscoped.filter(tenant=tenant).values_list("email", flat=True)) == {
        "complete@example.com",
        "mailless@example.com",
    }
    assert run.users_removed == 0


def test_duplicate_emails_are_skipped_with_a_warning(tenant, make_directory, run_sync, scratch_ou):
    ou = scratch_ou.add_ou("Doublons")
    scratch_ou.add_person("jean", ou, mail=["Jean.Dupont@example.com"])
    scratch_ou.add_person("jean2", ou, mail=["jean.dupont@example.com"])
    scratch_ou.add_person("marie", ou, mail=["marie@example.com"])
    directory = make_directory(tenant, base_dn=scratch_ou.dn)

    run = run_sync(directory).run

    assert run.status == SyncStatus.SUCCEEDED and run.entries_skipped == 2
    assert "Adresse e-mail en double, 2 utilisateurs ignorés : jean.dupont@example.com" in messages_of(run)
    assert list(LdapUser.unscoped.filter(tenant=tenant).values_list("email", flat=True)) == [
        "marie@example.com"
    ]


def test_users_swapping_addresses_in_one_sync(tenant, make_directory, run_sync, scratch_ou, slapd):
    ou = scratch_ou.add_ou("Échange")
    first = scratch_ou.add_person("a", ou, mail=["a@example.com"])
    second = scratch_ou.add_person("b", ou, mail=["b@example.com"])
    directory = make_directory(tenant, base_dn=scratch_ou.dn)
    run_sync(directory)
    conn = slapd.root_connection()
    conn.modify_s(first, [(ldap.MOD_REPLACE, "mail", [b"b@example.com"])])
    conn.modify_s(second, [(ldap.MOD_REPLACE, "mail", [b"a@example.com"])])
    conn.unbind_s()

    run = run_sync(directory).run

    assert run.status == SyncStatus.SUCCEEDED and run.users_changed == 2
    assert LdapUser.unscoped.get(tenant=tenant, uid="a").email == "b@example.com"


def test_ou_selection_adds_chosen_subtrees_only(tenant, make_directory, run_sync, admin_user):
    directory = make_directory(tenant)
    run_sync(directory)
    paris = LdapOrgUnit.unscoped.get(tenant=tenant, path="/Paris")

    services.org_units_select(directory=directory, actor=admin_user, mode="selected", selected_ids=[paris.pk])

    added = set(ldap_org_units_by_path(tenant))
    assert "/Paris/Ventes/Grands Comptes" in added and "/Paris" in added
    assert not any(path.startswith(("/Lyon", "/Groupes")) for path in added)
    assert ldap_prerequisites(tenant).ou_count == len(added)
    # The choice survives the next sync.
    run_sync(directory)
    assert set(ldap_org_units_by_path(tenant)) == added


def test_one_sync_per_tenant_at_a_time(tenant, make_directory, run_sync, django_db_blocker):
    directory = make_directory(tenant)
    other = dedicated_connection(autocommit=True)
    try:
        other.execute("SELECT pg_advisory_lock(%s, %s)", [services.SYNC_LOCK_NAMESPACE, tenant.pk])
        run = run_sync(directory).run
    finally:
        other.close()
    assert run.status == SyncStatus.SKIPPED
    assert "Une autre synchronisation" in messages_of(run)
    assert LdapOrgUnit.unscoped.filter(tenant=tenant).count() == 0


def test_a_run_left_running_by_a_dead_worker_is_marked_failed(tenant, make_directory, run_sync):
    directory = make_directory(tenant)
    stale = LdapSyncRun.unscoped.create(
        tenant=tenant, directory=directory, trigger=SyncTrigger.MANUAL, status=SyncStatus.RUNNING
    )
    assert run_sync(directory).run.status == SyncStatus.SUCCEEDED
    stale.refresh_from_db()
    assert stale.status == SyncStatus.FAILED and stale.error_code == "interrupted"


@pytest.fixture(scope="module")
def large_slapd():  # type: ignore[no-untyped-def]
    from ldap_sync.slapd import SlapdServer

    directory = demo_directory.large()
    server = SlapdServer()  # slapd's default size limit: 500
    server.start(seed_ldif=directory.to_ldif())  # slapadd, offline: about a second
    yield server, directory
    server.stop()


@pytest.mark.slow
def test_large_directory_imports_completely(tenant, make_directory, run_sync, large_slapd):
    server, _directory_data = large_slapd
    directory = make_directory(tenant, server)

    started = time.monotonic()
    run = run_sync(directory).run
    elapsed = time.monotonic() - started

    assert run.status == SyncStatus.SUCCEEDED, messages_of(run)
    # 1,200 OUs plus ou=Services and ou=Groupes; 5,000 people, ten times slapd's size limit.
    assert LdapOrgUnit.unscoped.filter(tenant=tenant).count() == 1200 + 2
    assert LdapUser.unscoped.filter(tenant=tenant).count() == 5000
    assert LdapUser.unscoped.filter(tenant=tenant, org_unit__isnull=True).count() == 0
    print(f"\nimport of 1,200 OUs and 5,000 users: {elapsed:.2f}s")

    started = time.monotonic()
    again = run_sync(directory).run
    print(f"re-sync without changes: {time.monotonic() - started:.2f}s")
    assert (again.ous_added, again.ous_changed, again.users_changed, again.users_removed) == (0, 0, 0, 0)


@pytest.mark.slow
def test_large_directory_setting_mistakes_stop_a_confirmer(tenant, make_directory, run_sync, large_slapd):
    """At 1,200 OUs and 5,000 users under the 500 size limit: a filter typo and a base DN moved to an existing
    branch without OUs or users stop "à confirmer" with nothing removed; the fixed setting changes nothing."""
    import json
    from io import StringIO

    from django.core.management import CommandError, call_command

    server, data = large_slapd
    directory = make_directory(tenant, server)
    out = StringIO()
    call_command("ldap_sync", "acme", "--json", stdout=out, stderr=StringIO())
    report = json.loads(out.getvalue())
    assert (report["status"], report["org_units"], report["users"]) == ("succeeded", 1202, 5000)
    ids = set(LdapUser.unscoped.filter(tenant=tenant).values_list("pk", flat=True))

    for field, value in (
        ("user_filter", "(objectClass=inetOrgPersn)"),
        ("base_dn", f"ou={demo_directory.SERVICES_OU},{data.base_dn}"),
    ):
        setattr(directory, field, value)
        directory.save()
        out = StringIO()
        with pytest.raises(CommandError):
            call_command("ldap_sync", "acme", "--json", stdout=out, stderr=StringIO())
        report = json.loads(out.getvalue())
        assert report["status"] == "guarded" and report["removed"] == {"org_units": 0, "users": 0}
        assert (report["org_units"], report["users"]) == (1202, 5000)
        assert len(report["pending_removals"]["users"]) >= 4999
        directory.refresh_from_db()

    directory.user_filter, directory.base_dn = "(objectClass=inetOrgPerson)", data.base_dn
    directory.save()
    fixed = run_sync(directory).run
    assert fixed.status == SyncStatus.SUCCEEDED
    assert (fixed.ous_added, fixed.ous_removed, fixed.users_added, fixed.users_removed) == (0, 0, 0, 0)
    assert (
        set(LdapUser.unscoped.filter(tenant=tenant, missing_since=None).values_list("pk", flat=True)) == ids
    )
