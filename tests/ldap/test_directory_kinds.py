"""Directory kinds and their overridable settings, on the page and through ``ldap_configure``; OpenLDAP's
account state and group types (groupOfNames nested, groupOfUniqueNames, posixGroup, a group base of its own)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command

from ldap_sync.forms import LdapDirectoryForm
from ldap_sync.kinds import DirectoryKind, GroupType, defaults
from ldap_sync.models import LdapDirectory, LdapUser
from mdm.models import Role
from mdm.tenancy import tenant_context

pytestmark = pytest.mark.django_db


# -- ldap_configure -------------------------------------------------------------------------------------------------
def test_configure_uri_alone_changes_nothing_else(tenant, make_directory, slapd, demo_dir, tmp_path):  # type: ignore[no-untyped-def]
    """Before: ``--uri X`` alone reset the base DN, the bind DN and the groups to the demo's values."""
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(slapd.ca_cert_pem)
    directory = make_directory(
        tenant,
        base_dn="ou=Paris,dc=example,dc=com",
        bind_dn="cn=other,dc=example,dc=com",
        admin_group_dn="cn=admins,ou=Paris,dc=example,dc=com",
        operator_group_dn="",
        readonly_group_dn="cn=lecture,ou=Paris,dc=example,dc=com",
        ca_certificate=slapd.ca_cert_pem,
        user_filter="(objectClass=person)",
        uid_attribute="cn",
        disabled_filter="(employeeType=parti)",
    )
    before = LdapDirectory.unscoped.values().get(pk=directory.pk)
    call_command("ldap_configure", "acme", "--uri", "ldap://127.0.0.1:1", stdout=StringIO())
    after = LdapDirectory.unscoped.values().get(pk=directory.pk)
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"uri", "updated_at"}


def test_configure_sets_every_setting_of_the_form_and_accepts_upn_bind_names(tenant, slapd, tmp_path):  # type: ignore[no-untyped-def]
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(slapd.ca_cert_pem)
    call_command(
        "ldap_configure",
        "acme",
        "--kind",
        "active-directory",
        "--uri",
        "ldaps://dc1.example.test:636",
        "--base-dn",
        "DC=example,DC=test",
        "--bind-dn",
        "mdm-sync@example.test",
        "--bind-password",
        "s3cret",
        "--ca-file",
        str(ca_file),
        "--admin-group",
        "CN=MDM Admins,OU=Groupes,DC=example,DC=test",
        "--operator-group",
        "",
        "--readonly-group",
        "",
        "--group-base-dn",
        "OU=Groupes,DC=example,DC=test",
        "--uid-attribute",
        "uid",
        stdout=StringIO(),
    )
    directory = LdapDirectory.unscoped.get(tenant=tenant)
    ad = defaults(DirectoryKind.ACTIVE_DIRECTORY)
    assert directory.kind == DirectoryKind.ACTIVE_DIRECTORY
    assert (directory.id_attribute, directory.user_filter, directory.name_attribute) == (
        ad["id_attribute"],
        ad["user_filter"],
        ad["name_attribute"],
    )
    assert directory.uid_attribute == "uid"  # an option given wins over the kind's default
    assert directory.bind_dn == "mdm-sync@example.test" and directory.bind_password == "s3cret"
    assert directory.ca_certificate.strip() == slapd.ca_cert_pem.strip()
    assert directory.group_base_dn == "OU=Groupes,DC=example,DC=test"

    call_command("ldap_configure", "acme", "--bind-dn", "EXAMPLE\\mdm-sync", stdout=StringIO())
    directory.refresh_from_db()
    assert directory.bind_dn == "EXAMPLE\\mdm-sync"
    assert directory.ca_certificate.strip() == slapd.ca_cert_pem.strip()  # --ca-file not given: kept


@pytest.mark.parametrize(
    "arguments",
    [
        ["--bind-dn", "not a dn"],
        ["--user-filter", "objectClass=user"],
        ["--uid-attribute", "uid)(x"],
        ["--kind", "novell"],
    ],
)
def test_configure_refuses_bad_values_and_changes_nothing(tenant, make_directory, arguments):  # type: ignore[no-untyped-def]
    directory = make_directory(tenant)
    before = LdapDirectory.unscoped.values().get(pk=directory.pk)
    with pytest.raises((CommandError, SystemExit)):
        call_command("ldap_configure", "acme", *arguments, stdout=StringIO(), stderr=StringIO())
    assert LdapDirectory.unscoped.values().get(pk=directory.pk) == before


# -- the LDAP page's form -------------------------------------------------------------------------------------------
def form_data(directory: LdapDirectory, **overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        name: getattr(directory, name)
        for name in LdapDirectoryForm.Meta.fields
        if name not in ("bind_password", "start_tls")
    }
    data.update(overrides)
    return data


def test_choosing_active_directory_fills_its_defaults_and_keeps_overrides(tenant, make_directory):  # type: ignore[no-untyped-def]
    directory = make_directory(tenant, name_attribute="givenName")
    with tenant_context(tenant):
        form = LdapDirectoryForm(
            # A new bind name needs the password typed again (the stored one only goes where it went before).
            data=form_data(
                directory,
                kind=DirectoryKind.ACTIVE_DIRECTORY,
                bind_dn="EXAMPLE\\mdm-sync",
                bind_password="typed-again",
            ),
            instance=directory,
            tenant=tenant,
        )
        assert form.is_valid(), form.errors
        saved = form.save()
    ad = defaults(DirectoryKind.ACTIVE_DIRECTORY)
    for name in (
        "ou_filter",
        "user_filter",
        "id_attribute",
        "uid_attribute",
        "login_attributes",
        "group_type",
    ):
        assert getattr(saved, name) == ad[name], name
    assert saved.name_attribute == "givenName"  # changed by the admin: not the old kind's default, kept
    assert saved.bind_dn == "EXAMPLE\\mdm-sync"


@pytest.mark.parametrize("bind_dn", ["svc@example.test", "EXAMPLE\\svc", "cn=svc,dc=example,dc=com"])
def test_the_bind_name_may_be_a_dn_a_upn_or_domain_user(tenant, make_directory, bind_dn):  # type: ignore[no-untyped-def]
    directory = make_directory(tenant)
    with tenant_context(tenant):
        form = LdapDirectoryForm(
            data=form_data(directory, bind_dn=bind_dn, bind_password="typed-again"),
            instance=directory,
            tenant=tenant,
        )
        assert form.is_valid(), form.errors


# -- OpenLDAP: disabled accounts, group types -----------------------------------------------------------------------
def test_openldap_accounts_matching_the_disabled_filter_are_flagged_and_refused(  # type: ignore[no-untyped-def]
    tenant, make_directory, run_sync, scratch_ou, slapd, demo_dir
):
    from ldap_sync.slapd import ssha

    unit = scratch_ou.add_ou("Partis")
    password = ssha(demo_dir.user_password)
    scratch_ou.add_person(
        "parti.user", unit, mail=["parti.user@example.com"], employeeType=["parti"], userPassword=[password]
    )
    scratch_ou.add_person("reste.user", unit, mail=["reste.user@example.com"], userPassword=[password])
    group = f"cn=admins,{scratch_ou.dn}"
    scratch_ou.add(
        group,
        {
            "objectClass": ["groupOfNames"],
            "cn": ["admins"],
            "member": [f"uid=parti.user,{unit}", f"uid=reste.user,{unit}"],
        },
    )
    directory = make_directory(
        tenant, base_dn=scratch_ou.dn, disabled_filter="(employeeType=parti)", admin_group_dn=group
    )
    run_sync(directory)
    flags = dict(LdapUser.unscoped.filter(tenant=tenant).values_list("uid", "disabled"))
    assert flags == {"parti.user": True, "reste.user": False}
    assert authenticate(None, username="parti.user", password=demo_dir.user_password, tenant="acme") is None
    assert (
        authenticate(None, username="reste.user", password=demo_dir.user_password, tenant="acme") is not None
    )


@pytest.mark.parametrize(
    ("group_type", "object_class", "member_attribute", "member_value"),
    [
        (GroupType.GROUP_OF_NAMES, "groupOfNames", "member", "dn"),
        (GroupType.GROUP_OF_UNIQUE_NAMES, "groupOfUniqueNames", "uniqueMember", "dn"),
        (GroupType.POSIX_GROUP, "posixGroup", "memberUid", "uid"),
    ],
)
def test_role_groups_of_every_openldap_type_in_a_group_base_of_their_own(  # type: ignore[no-untyped-def]
    group_type, object_class, member_attribute, member_value, tenant, make_directory, scratch_ou, demo_dir
):
    from ldap_sync.slapd import ssha

    people = scratch_ou.add_ou("Personnes")
    groups = scratch_ou.add_ou("Groupes")
    user_dn = scratch_ou.add_person(
        "membre.role", people, mail=["membre.role@example.com"], userPassword=[ssha(demo_dir.user_password)]
    )
    member = user_dn if member_value == "dn" else "membre.role"
    if object_class == "posixGroup":
        attributes = {"objectClass": ["posixGroup"], "cn": ["operateurs"], "gidNumber": ["5000"]}
    else:
        attributes = {"objectClass": [object_class], "cn": ["operateurs"]}
    # groupOfNames/groupOfUniqueNames: through a nested group, as directories are built.
    if object_class != "posixGroup":
        inner = scratch_ou.add(
            f"cn=interne,{groups}",
            {"objectClass": [object_class], "cn": ["interne"], member_attribute: [member]},
        )
        attributes[member_attribute] = [inner]
    else:
        attributes[member_attribute] = [member]
    operators = scratch_ou.add(f"cn=operateurs,{groups}", attributes)
    # Users under Personnes only; groups outside that base: found through the group base.
    make_directory(
        tenant,
        base_dn=people,
        group_base_dn=groups,
        group_type=group_type,
        admin_group_dn="",
        operator_group_dn=operators,
        readonly_group_dn="",
    )
    user = authenticate(None, username="membre.role", password=demo_dir.user_password, tenant="acme")
    assert user is not None and user.role == Role.OPERATOR


def test_the_ldap_page_shows_each_roles_group_and_its_user_count(
    admin_client_, tenant, make_directory, slapd, demo_dir
):  # type: ignore[no-untyped-def]
    from django.urls import reverse

    directory = make_directory(tenant, operator_group_dn="cn=nobody-here,dc=example,dc=com")
    data = form_data(directory, bind_password="")
    page = admin_client_.post(reverse("ldap_sync:test"), data).content.decode()
    table = page[page.index('id="role-groups"') :]
    assert demo_dir.group_dn("admin") in table and "groupe introuvable" in table
    rows = table.split("<tr>")
    admin_row = next(row for row in rows if demo_dir.group_dn("admin") in row)
    assert "<td>1</td>" in admin_row.replace("\n", "").replace(" ", "")


def test_the_ldap_page_carries_each_kinds_defaults_for_the_type_selector(admin_client_, tenant):  # type: ignore[no-untyped-def]
    import html
    import json
    import re

    from django.urls import reverse

    page = admin_client_.get(reverse("ldap_sync:directory")).content.decode()
    match = re.search(r'<div id="ldap-kind-defaults" data-defaults="([^"]*)"', page)
    assert match is not None and "js/ldap-kind.js" in page
    carried = json.loads(html.unescape(match.group(1)))
    assert carried["active-directory"]["id_attribute"] == "objectGUID"
    assert carried["openldap"] == defaults(DirectoryKind.OPENLDAP)
    assert 'id="id_kind"' in page
