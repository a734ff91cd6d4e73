"""One bad entry is skipped and named, never fatal; ``ldap_sync --json``; OU names with ``/``."""

from __future__ import annotations

import json
from io import StringIO

import ldap
import pytest
from django.core.management import CommandError, call_command

from chromeos.models import OrgUnit, SyncRun
from chromeos.services.sync.merge import _merge_org_units
from ldap_sync.models import LdapOrgUnit, LdapUser, SyncStatus
from tests.factories import GoogleIntegrationFactory

pytestmark = pytest.mark.django_db


def log_text(run) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(line["msgid"] % line["params"] if line["params"] else line["msgid"] for line in run.log)


def test_a_uid_over_255_characters_is_skipped_and_named(tenant, make_directory, run_sync, scratch_ou):
    ou = scratch_ou.add_ou("Classe")
    scratch_ou.add_person("normal", ou, mail=["normal@example.com"])
    long_dn = scratch_ou.add(
        f"cn=Trop Long,{ou}",
        {
            "objectClass": ["inetOrgPerson"],
            "cn": ["Trop Long"],
            "sn": ["Long"],
            "uid": ["x" * 300],
            "mail": ["long@example.com"],
        },
    )
    directory = make_directory(tenant, base_dn=scratch_ou.dn)

    run = run_sync(directory).run

    assert run.status == SyncStatus.SUCCEEDED, log_text(run)
    assert run.entries_skipped == 1 and run.skipped == [{"dn": long_dn, "reason": "too_long"}]
    assert f"« uid » dépasse 255 caractères : {long_dn}" in log_text(run)
    assert list(LdapUser.unscoped.filter(tenant=tenant).values_list("uid", flat=True)) == ["normal"]


def test_undecodable_and_nul_values_are_skipped_and_named(tenant, make_directory, run_sync, scratch_ou):
    ou = scratch_ou.add_ou("Binaire")
    scratch_ou.add_person("propre", ou, mail=["propre@example.com"], audio=["Propre"])
    latin1 = scratch_ou.add_person("latin1", ou, mail=["latin1@example.com"])
    with_nul = scratch_ou.add_person("nul", ou, mail=["nul@example.com"])
    conn = scratch_ou.server.root_connection()
    # ``audio`` is an octet string: the server stores any bytes, as a binary attribute mapped by mistake would.
    conn.modify_s(latin1, [(ldap.MOD_ADD, "audio", [b"Ren\xe9e"])])
    conn.modify_s(with_nul, [(ldap.MOD_ADD, "audio", [b"a\x00b"])])
    conn.unbind_s()
    directory = make_directory(tenant, base_dn=scratch_ou.dn, name_attribute="audio")

    run = run_sync(directory).run

    assert run.status == SyncStatus.SUCCEEDED, log_text(run)
    assert sorted(item["dn"] for item in run.skipped) == sorted([latin1, with_nul])
    assert {item["reason"] for item in run.skipped} == {"undecodable"}
    assert latin1 in log_text(run) and with_nul in log_text(run)
    assert list(LdapUser.unscoped.filter(tenant=tenant).values_list("name", flat=True)) == ["Propre"]


def test_an_entry_without_its_id_is_skipped_not_fatal(tenant, make_directory, run_sync, own_slapd, demo_dir):
    server = own_slapd(size_limit=None)
    directory = make_directory(tenant, server)
    assert run_sync(directory).run.status == SyncStatus.SUCCEEDED
    camille = LdapUser.unscoped.get(tenant=tenant, uid="camille.durand")
    paris = LdapOrgUnit.unscoped.get(tenant=tenant, path="/Paris/Ventes")
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
                    f'{{1}}to dn.exact="{camille.dn}" attrs=entryUUID by * none'.encode(),
                    f'{{2}}to dn.exact="{paris.dn}" attrs=entryUUID by * none'.encode(),
                    b"{3}to * by users read by * none",
                ],
            )
        ],
    )
    conn.unbind_s()

    run = run_sync(directory).run

    assert run.status == SyncStatus.SUCCEEDED, log_text(run)
    assert {(item["dn"], item["reason"]) for item in run.skipped} == {
        (camille.dn, "missing_id"),
        (paris.dn, "missing_id"),
    }
    assert f"identifiant « entryUUID » absent ou illisible : {camille.dn}" in log_text(run)
    # Matched by DN, their rows are kept as they were, not removed.
    assert run.users_removed == 0 and run.ous_removed == 0
    camille.refresh_from_db()
    paris.refresh_from_db()
    assert camille.missing_since is None and paris.missing_since is None


def test_json_output(tenant, make_directory, scratch_ou):
    ou = scratch_ou.add_ou("Ventes")
    scratch_ou.add_ou("Lyon")
    scratch_ou.add_person("anne", ou, mail=["anne@example.com"])
    scratch_ou.add_person("sans-mail", ou)
    make_directory(tenant, base_dn=scratch_ou.dn)
    out = StringIO()

    call_command("ldap_sync", "acme", "--json", stdout=out, stderr=StringIO())

    report = json.loads(out.getvalue())
    assert report["status"] == "succeeded"
    assert (report["org_units"], report["users"], report["disabled_users"]) == (2, 1, 0)
    assert report["added"] == {"org_units": 2, "users": 1}
    assert report["changed"] == {"org_units": 0, "users": 0}
    assert report["removed"] == {"org_units": 0, "users": 0}
    assert report["skipped"] == [
        {"dn": f"uid=sans-mail,ou=Ventes,{scratch_ou.dn}", "reason": "missing_attribute"}
    ]

    out = StringIO()
    call_command("ldap_sync", "acme", "--json", stdout=out, stderr=StringIO())
    again = json.loads(out.getvalue())
    assert again["added"] == {"org_units": 0, "users": 0} and again["users"] == 1


def test_json_output_exits_non_zero_unless_it_succeeded(tenant, make_directory):
    make_directory(tenant, bind_password="wrong")
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("ldap_sync", "acme", "--json", stdout=out, stderr=StringIO())
    report = json.loads(out.getvalue())
    assert report["status"] == "failed" and report["error"]["code"] == "invalid_credentials"


def test_an_ou_named_with_a_slash_never_takes_another_ous_google_path(
    tenant, make_directory, run_sync, scratch_ou
):
    slashed = scratch_ou.add_ou("3e/4e")
    scratch_ou.add_ou("3e")
    nested = scratch_ou.add_ou("3e", "4e")
    directory = make_directory(tenant, base_dn=scratch_ou.dn)
    run_sync(directory)
    integration = GoogleIntegrationFactory(tenant=tenant)
    google = [
        {"orgUnitId": "id:03ou-3e", "orgUnitPath": "/3e", "name": "3e", "parentOrgUnitId": ""},
        {
            "orgUnitId": "id:03ou-3e-4e",
            "orgUnitPath": "/3e/4e",
            "name": "4e",
            "parentOrgUnitId": "id:03ou-3e",
        },
    ]

    _merge_org_units(integration, SyncRun.unscoped.create(tenant=tenant, integration=integration), google)

    by_dn = {unit.dn: unit for unit in LdapOrgUnit.unscoped.filter(tenant=tenant)}
    assert by_dn[slashed].path != by_dn[nested].path == "/3e/4e"
    assert OrgUnit.unscoped.get(tenant=tenant, org_unit_id="03ou-3e-4e").ldap_org_unit_id == by_dn[nested].pk
    assert not OrgUnit.unscoped.filter(tenant=tenant, ldap_org_unit=by_dn[slashed]).exists()


def test_an_ou_named_with_a_backslash_links_to_its_google_ou(tenant, make_directory, run_sync, scratch_ou):
    # Google's paths hold names as they are: GCDS mirrors "Équipe \ Réseau" as "/Équipe \ Réseau", while the
    # console's path escapes the backslash ("/Équipe \\ Réseau"). The OU and its children must still link.
    scratch_ou.add_ou("Équipe \\ Réseau")
    scratch_ou.add_ou("Équipe \\ Réseau", "Classe 1")
    directory = make_directory(tenant, base_dn=scratch_ou.dn)
    run_sync(directory)
    integration = GoogleIntegrationFactory(tenant=tenant)
    google = [
        {
            "orgUnitId": "id:03ou-eq",
            "orgUnitPath": "/Équipe \\ Réseau",
            "name": "Équipe \\ Réseau",
            "parentOrgUnitId": "",
        },
        {
            "orgUnitId": "id:03ou-eq-c1",
            "orgUnitPath": "/Équipe \\ Réseau/Classe 1",
            "name": "Classe 1",
            "parentOrgUnitId": "id:03ou-eq",
        },
    ]

    _merge_org_units(integration, SyncRun.unscoped.create(tenant=tenant, integration=integration), google)

    by_name = {unit.name: unit for unit in LdapOrgUnit.unscoped.filter(tenant=tenant)}
    assert by_name["Équipe \\ Réseau"].path == "/Équipe \\\\ Réseau"
    linked = {ou.org_unit_id: ou.ldap_org_unit_id for ou in OrgUnit.unscoped.filter(tenant=tenant)}
    assert linked == {"03ou-eq": by_name["Équipe \\ Réseau"].pk, "03ou-eq-c1": by_name["Classe 1"].pk}
