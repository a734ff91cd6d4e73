"""A setting mistake cannot wipe the import: a run that would remove too much stops "à confirmer", and OUs and
users that leave the listing keep their identity (and what hangs on them) for a grace period."""

from __future__ import annotations

from datetime import timedelta

import ldap
import pytest
from django.urls import reverse
from django.utils import timezone

from chromeos.models import OrgUnit, PolicyAssignment, SyncRun
from chromeos.services.sync.merge import _merge_org_units
from ldap_sync import services
from ldap_sync.models import LdapOrgUnit, LdapSyncRun, LdapUser, SyncStatus
from ldap_sync.selectors import ldap_org_units_by_path, ldap_prerequisites
from mdm.models import AuditEvent
from tests.factories import GoogleIntegrationFactory, PolicyAssignmentFactory

pytestmark = pytest.mark.django_db

OU_NAMES = ("Seconde 1", "Seconde 2", "Première", "Terminale", "Professeurs", "Vie scolaire")


def present(tenant) -> tuple[dict, dict]:
    ous = dict(
        LdapOrgUnit.unscoped.filter(tenant=tenant, missing_since__isnull=True).values_list("entry_uuid", "pk")
    )
    users = dict(
        LdapUser.unscoped.filter(tenant=tenant, missing_since__isnull=True).values_list("entry_uuid", "pk")
    )
    return ous, users


@pytest.fixture
def school(scratch_ou):  # type: ignore[no-untyped-def]
    """A school of six OUs and six people, and an empty (but existing) sibling branch."""
    data = scratch_ou.add_ou("Lycée")
    for index, name in enumerate(OU_NAMES):
        ou = scratch_ou.add_ou("Lycée", name)
        scratch_ou.add_person(f"eleve{index}", ou, mail=[f"eleve{index}@lycee.example"])
    empty = scratch_ou.add_ou("Vide")
    return data, empty


def assert_guarded_and_untouched(run: LdapSyncRun, tenant, before) -> None:  # type: ignore[no-untyped-def]
    assert run.status == SyncStatus.GUARDED
    assert (run.ous_removed, run.users_removed) == (0, 0)
    assert present(tenant) == before
    assert "rien n'a été modifié" in " ".join(line["msgid"] for line in run.log)


def test_base_dn_moved_to_an_empty_branch_stops_a_confirmer(tenant, make_directory, run_sync, school):
    data, empty = school
    directory = make_directory(tenant, base_dn=data)
    assert run_sync(directory).run.status == SyncStatus.SUCCEEDED
    before = present(tenant)

    directory.base_dn = empty
    directory.save()
    run = run_sync(directory).run

    assert_guarded_and_untouched(run, tenant, before)
    # Exactly what would go, for the admin to read.
    assert sorted(item["path"] for item in run.pending_removals["org_units"]) == sorted(
        f"/{name}" for name in OU_NAMES
    )
    assert sorted(item["email"] for item in run.pending_removals["users"]) == [
        f"eleve{index}@lycee.example" for index in range(6)
    ]
    assert ldap_prerequisites(tenant).user_count == 6

    directory.base_dn = data  # the admin fixes the setting
    directory.save()
    fixed = run_sync(directory).run
    assert fixed.status == SyncStatus.SUCCEEDED
    assert (fixed.ous_added, fixed.ous_removed, fixed.users_added, fixed.users_removed) == (0, 0, 0, 0)
    assert present(tenant) == before


@pytest.mark.parametrize(
    "field, value",
    [
        ("user_filter", "(objectClass=inetOrgPersn)"),  # a typo: valid syntax, matches nothing
        ("user_filter", "(&(objectClass=inetOrgPerson)(uid=eleve1))"),  # matches one of six
        ("ou_filter", "(objectClass=organisationalUnit)"),
    ],
)
def test_a_filter_typo_stops_a_confirmer(tenant, make_directory, run_sync, school, field, value):
    data, _empty = school
    directory = make_directory(tenant, base_dn=data)
    run_sync(directory)
    before = present(tenant)

    setattr(directory, field, value)
    directory.save()
    run = run_sync(directory).run

    assert_guarded_and_untouched(run, tenant, before)


def test_an_acl_hiding_users_stops_a_confirmer(tenant, make_directory, run_sync, own_slapd, demo_dir):
    server = own_slapd(size_limit=100)
    directory = make_directory(tenant, server)
    assert run_sync(directory).run.status == SyncStatus.SUCCEEDED
    before = present(tenant)
    assert len(before[1]) == len(demo_dir.people)

    # The directory's admin tightens the ACLs: the service account no longer reads people.
    conn = ldap.initialize(server.uri)
    conn.simple_bind_s("cn=config", server.config_password)
    conn.modify_s(
        "olcDatabase={1}mdb,cn=config",
        [
            (
                ldap.MOD_REPLACE,
                "olcAccess",
                [
                    b"{0}to attrs=userPassword by self write by anonymous auth by * none",
                    b"{1}to filter=(objectClass=inetOrgPerson) by self read by * none",
                    b"{2}to * by users read by * none",
                ],
            )
        ],
    )
    conn.unbind_s()
    run = run_sync(directory).run

    assert_guarded_and_untouched(run, tenant, before)
    assert len(run.pending_removals["users"]) == len(demo_dir.people)


def test_small_removals_go_through_and_an_admin_confirms_large_ones(
    tenant,
    make_directory,
    run_sync,
    school,
    slapd,
    admin_client_,
    admin_user,
    django_capture_on_commit_callbacks,
):
    data, _empty = school
    directory = make_directory(tenant, base_dn=data)
    run_sync(directory)
    conn = slapd.root_connection()
    person = conn.search_s(data, ldap.SCOPE_SUBTREE, "(uid=eleve0)", ["1.1"])[0][0]
    conn.delete_s(person)  # one of six: under the minimum, no confirmation needed
    conn.unbind_s()
    small = run_sync(directory).run
    assert small.status == SyncStatus.SUCCEEDED and small.users_removed == 1

    directory.user_filter = "(objectClass=nobody)"
    directory.save()
    guarded = run_sync(directory).run
    assert guarded.status == SyncStatus.GUARDED and len(guarded.pending_removals["users"]) == 5
    page = admin_client_.get(reverse("ldap_sync:run", kwargs={"pk": guarded.pk}))
    assert (
        "eleve2@lycee.example" in page.content.decode()
        and "Confirmer les suppressions" in page.content.decode()
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_.post(reverse("ldap_sync:confirm_removals", kwargs={"pk": guarded.pk}))

    assert response.status_code == 302
    confirmed = LdapSyncRun.unscoped.filter(tenant=tenant).order_by("-pk").first()
    assert confirmed.pk != guarded.pk and confirmed.status == SyncStatus.SUCCEEDED  # eager in tests
    assert confirmed.users_removed == 5 and ldap_prerequisites(tenant).user_count == 0
    event = AuditEvent.unscoped.get(tenant=tenant, action="ldap.sync.confirm_removals")
    assert event.actor == admin_user and event.details["users"] == 5
    # A guarded run is confirmed once: the next confirmation of the same run is refused.
    again = admin_client_.post(reverse("ldap_sync:confirm_removals", kwargs={"pk": guarded.pk}), follow=True)
    assert "ne sont plus en attente" in again.content.decode()


def test_operators_cannot_confirm_removals(
    tenant, make_directory, run_sync, school, operator_user, client_for
):
    data, empty = school
    directory = make_directory(tenant, base_dn=data)
    run_sync(directory)
    directory.base_dn = empty
    directory.save()
    guarded = run_sync(directory).run

    response = client_for(operator_user).post(
        reverse("ldap_sync:confirm_removals", kwargs={"pk": guarded.pk})
    )

    assert response.status_code == 403
    assert LdapSyncRun.unscoped.filter(tenant=tenant).count() == 2


def test_a_fixed_setting_brings_back_choice_google_links_and_assignments(
    tenant, make_directory, run_sync, school, admin_user
):
    data, empty = school
    directory = make_directory(tenant, base_dn=data)
    run_sync(directory)
    seconde = LdapOrgUnit.unscoped.get(tenant=tenant, path="/Seconde 1")
    services.org_units_select(
        directory=directory, actor=admin_user, mode="selected", selected_ids=[seconde.pk]
    )
    integration = GoogleIntegrationFactory(tenant=tenant)
    google_units = [
        {
            "orgUnitId": "id:03ou-seconde1",
            "orgUnitPath": "/Seconde 1",
            "name": "Seconde 1",
            "parentOrgUnitId": "",
        },
        {
            "orgUnitId": "id:03ou-premiere",
            "orgUnitPath": "/Première",
            "name": "Première",
            "parentOrgUnitId": "",
        },
    ]

    def chromeos_sync() -> None:  # the ChromeOS sync's OU step: link Google OUs to LDAP OUs by path
        run = SyncRun.unscoped.create(tenant=tenant, integration=integration, trigger="manual")
        _merge_org_units(integration, run, google_units)

    chromeos_sync()
    google_ou = OrgUnit.unscoped.get(tenant=tenant, org_unit_id="03ou-seconde1")
    assert google_ou.ldap_org_unit_id == seconde.pk
    assert OrgUnit.unscoped.get(tenant=tenant, org_unit_id="03ou-premiere").ldap_org_unit_id is None
    assignment = PolicyAssignmentFactory(tenant=tenant, org_unit=google_ou, integration=integration)
    ids_before = present(tenant)

    # The setting breaks; an admin even confirms the removals; a ChromeOS sync runs meanwhile.
    directory.base_dn = empty
    directory.save()
    guarded = run_sync(directory).run
    assert guarded.status == SyncStatus.GUARDED
    confirming = services.sync_confirm_removals(directory=directory, run=guarded, actor=admin_user)
    services.ldap_sync_run(run=confirming)
    assert confirming.status == SyncStatus.SUCCEEDED and confirming.ous_removed == 6
    assert "/Seconde 1" not in ldap_org_units_by_path(tenant)
    chromeos_sync()

    directory.base_dn = data  # fixed within the grace period
    directory.save()
    back = run_sync(directory).run
    chromeos_sync()

    assert back.status == SyncStatus.SUCCEEDED and back.ous_added == 6
    assert present(tenant) == ids_before  # the same rows: same ids
    seconde.refresh_from_db()
    assert seconde.selected and seconde.added and seconde.missing_since is None
    assert set(ldap_org_units_by_path(tenant)) == {"/Seconde 1"}
    google_ou.refresh_from_db()
    assert google_ou.ldap_org_unit_id == seconde.pk and google_ou.supported
    assert PolicyAssignment.unscoped.filter(pk=assignment.pk, org_unit=google_ou).exists()


def test_rows_missing_past_the_grace_period_are_purged(tenant, make_directory, run_sync, school, slapd):
    data, _empty = school
    directory = make_directory(tenant, base_dn=data, missing_grace_days=30)
    run_sync(directory)
    conn = slapd.root_connection()
    person = conn.search_s(data, ldap.SCOPE_SUBTREE, "(uid=eleve3)", ["1.1"])[0][0]
    conn.delete_s(person)
    conn.unbind_s()
    run_sync(directory)
    gone = LdapUser.unscoped.get(tenant=tenant, uid="eleve3")
    assert gone.missing_since is not None

    LdapUser.unscoped.filter(pk=gone.pk).update(missing_since=timezone.now() - timedelta(days=31))
    run_sync(directory)

    assert not LdapUser.unscoped.filter(pk=gone.pk).exists()


def test_a_user_recreated_with_the_same_address_is_imported(
    tenant, make_directory, run_sync, school, slapd, scratch_ou
):
    data, _empty = school
    directory = make_directory(tenant, base_dn=data)
    run_sync(directory)
    conn = slapd.root_connection()
    person = conn.search_s(data, ldap.SCOPE_SUBTREE, "(uid=eleve3)", ["1.1"])[0][0]
    conn.delete_s(person)
    conn.unbind_s()
    scratch_ou.add_person("eleve3", person.split(",", 1)[1], mail=["eleve3@lycee.example"])

    run = run_sync(directory).run

    assert run.status == SyncStatus.SUCCEEDED, run.log
    users = LdapUser.unscoped.filter(tenant=tenant, email="eleve3@lycee.example")
    assert [user.missing_since for user in users] == [None]


def test_connection_test_compares_what_the_settings_would_import(
    tenant, make_directory, run_sync, school, admin_client_, slapd, demo_dir
):
    from tests.ldap.test_views import form_data

    data, empty = school
    directory = make_directory(tenant, base_dn=data)
    run_sync(directory)

    def tested(**overrides: str) -> str:
        response = admin_client_.post(reverse("ldap_sync:test"), form_data(slapd, demo_dir, **overrides))
        return " ".join(response.content.decode().split())

    assert (
        "la synchronisation importerait 0 OU et 0 utilisateurs (actuellement importés : 6 OU et 6 utilisateurs)"
        in tested(base_dn=empty)
    )
    assert "importerait 6 OU et 1 utilisateurs" in tested(
        base_dn=data, user_filter="(&(objectClass=inetOrgPerson)(uid=eleve1))"
    )
    directory.refresh_from_db()
    assert directory.base_dn == data  # testing saves nothing


def test_ldap_configure_sets_the_guard_and_the_grace_period(tenant, make_directory):
    from io import StringIO

    from django.core.management import CommandError, call_command

    directory = make_directory(tenant)
    call_command(
        "ldap_configure",
        "acme",
        "--removal-guard-percent",
        "25",
        "--missing-grace-days",
        "7",
        stdout=StringIO(),
    )
    directory.refresh_from_db()
    assert (
        directory.removal_guard_percent,
        directory.removal_guard_minimum,
        directory.missing_grace_days,
    ) == (
        25,
        5,
        7,
    )
    with pytest.raises(CommandError, match="removal_guard_percent"):
        call_command("ldap_configure", "acme", "--removal-guard-percent", "150", stdout=StringIO())


def test_the_ldap_page_says_a_run_waits_for_confirmation(
    tenant, make_directory, run_sync, school, admin_client_
):
    data, empty = school
    directory = make_directory(tenant, base_dn=data)
    run_sync(directory)
    assert 'id="guarded-run"' not in admin_client_.get(reverse("ldap_sync:directory")).content.decode()
    directory.base_dn = empty
    directory.save()
    guarded = run_sync(directory).run

    page = " ".join(admin_client_.get(reverse("ldap_sync:directory")).content.decode().split())

    assert 'id="guarded-run"' in page and "elle supprimerait 6 OU et 6 utilisateurs" in page
    assert reverse("ldap_sync:run", kwargs={"pk": guarded.pk}) in page
