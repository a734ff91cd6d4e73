"""Access follows the directory: a user deleted or demoted in LDAP loses that access at the next sync, and open
sessions are re-checked against the stored account at every request."""

from __future__ import annotations

import ldap
import pytest
from django.test import Client
from django.urls import reverse

from ldap_sync.models import DirectoryRevocation
from mdm.models import AuditEvent, Role, User

pytestmark = pytest.mark.django_db

DIRECTORY = reverse("ldap_sync:directory")


def signed_in(uid: str, password: str) -> Client:
    client = Client()
    response = client.post(reverse("login"), {"tenant": "acme", "username": uid, "password": password})
    assert response.status_code == 302, response.content.decode()[:500]
    assert client.get(DIRECTORY).status_code == 200
    return client


def is_signed_out(client: Client) -> bool:
    response = client.get(DIRECTORY)
    return response.status_code == 302 and reverse("login") in response["Location"]


@pytest.fixture
def group_member(slapd, demo_dir):  # type: ignore[no-untyped-def]
    """Move a person between role groups of the shared directory; everything is put back afterwards."""
    changes: list[tuple[str, int, bytes]] = []

    def change(uid: str, *, remove_from: str | None = None, add_to: str | None = None) -> None:
        dn = demo_dir.person(uid).dn(demo_dir.base_dn).encode()
        conn = slapd.root_connection()
        try:
            if remove_from:
                # groupOfNames needs a member: a placeholder stays when the last person leaves.
                filler = f"cn=placeholder,{demo_dir.base_dn}".encode()
                conn.modify_s(demo_dir.group_dn(remove_from), [(ldap.MOD_ADD, "member", [filler])])
                changes.append((demo_dir.group_dn(remove_from), ldap.MOD_DELETE, filler))
                conn.modify_s(demo_dir.group_dn(remove_from), [(ldap.MOD_DELETE, "member", [dn])])
                changes.append((demo_dir.group_dn(remove_from), ldap.MOD_ADD, dn))
            if add_to:
                conn.modify_s(demo_dir.group_dn(add_to), [(ldap.MOD_ADD, "member", [dn])])
                changes.append((demo_dir.group_dn(add_to), ldap.MOD_DELETE, dn))
        finally:
            conn.unbind_s()

    yield change
    conn = slapd.root_connection()
    for group, op, dn in reversed(changes):
        conn.modify_s(group, [(op, "member", [dn])])
    conn.unbind_s()


def test_an_admin_removed_from_every_role_group_is_signed_out_after_the_sync(
    tenant, make_directory, run_sync, demo_dir, group_member
):
    directory = make_directory(tenant)
    client = signed_in("camille.durand", demo_dir.user_password)
    run_sync(directory)
    assert client.get(DIRECTORY).status_code == 200  # nothing changed in the directory: still signed in

    group_member("camille.durand", remove_from="admin")
    run = run_sync(directory).run

    account = User.objects.get(username="acme:camille.durand")
    assert not account.is_active and account.directory_revocation.reason == "no_role"
    assert AuditEvent.unscoped.filter(action="ldap.account.revoke", target="acme:camille.durand").exists()
    assert "acme:camille.durand" in str(run.log)
    assert is_signed_out(client)
    # The session is over for good: the directory granting access again does not resume it, a new sign-in does.
    group_member("camille.durand", add_to="admin")
    assert is_signed_out(client)
    again = signed_in("camille.durand", demo_dir.user_password)
    account.refresh_from_db()
    assert account.is_active and account.role == Role.ADMIN and not DirectoryRevocation.unscoped.exists()
    assert again.get(DIRECTORY).status_code == 200


def test_an_admin_demoted_in_the_directory_is_demoted_in_the_open_session(
    tenant, make_directory, run_sync, demo_dir, group_member
):
    directory = make_directory(tenant)
    client = signed_in("camille.durand", demo_dir.user_password)
    assert client.post(reverse("ldap_sync:org_units"), {"mode": "all"}).status_code == 302

    group_member("camille.durand", remove_from="admin", add_to="read_only")
    run_sync(directory)

    account = User.objects.get(username="acme:camille.durand")
    assert account.is_active and account.role == Role.READ_ONLY
    assert client.get(DIRECTORY).status_code == 200
    assert client.post(reverse("ldap_sync:org_units"), {"mode": "all"}).status_code == 403
    event = AuditEvent.unscoped.get(action="ldap.account.role", target="acme:camille.durand")
    assert event.details == {"from": Role.ADMIN, "to": Role.READ_ONLY}


def test_a_user_deleted_from_the_directory_is_signed_out_after_the_sync(
    tenant, make_directory, run_sync, own_slapd, demo_dir
):
    server = own_slapd(size_limit=None)
    directory = make_directory(tenant, server)
    client = Client()
    assert (
        client.post(
            reverse("login"),
            {"tenant": "acme", "username": "lea.fontaine", "password": demo_dir.user_password},
        ).status_code
        == 302
    )
    run_sync(directory)
    assert client.get(DIRECTORY).status_code == 200

    conn = server.root_connection()
    conn.delete_s(demo_dir.person("lea.fontaine").dn(demo_dir.base_dn))
    conn.unbind_s()
    run_sync(directory)

    assert User.objects.get(username="acme:lea.fontaine").directory_revocation.reason == "deleted"
    assert is_signed_out(client)


def test_an_account_deactivated_by_support_ends_its_ldap_sessions_and_stays_off(
    tenant, make_directory, run_sync, demo_dir
):
    directory = make_directory(tenant)
    client = signed_in("camille.durand", demo_dir.user_password)
    User.objects.filter(username="acme:camille.durand").update(is_active=False)  # support, in django-admin

    assert is_signed_out(client)
    run_sync(directory)  # the directory still grants access: the sync does not override support
    assert not User.objects.get(username="acme:camille.durand").is_active
    response = Client().post(
        reverse("login"), {"tenant": "acme", "username": "camille.durand", "password": demo_dir.user_password}
    )
    assert response.status_code == 200  # the login form refuses an inactive account


def test_roles_are_left_alone_when_a_role_group_cannot_be_read(tenant, make_directory, run_sync, demo_dir):
    directory = make_directory(tenant)
    signed_in("camille.durand", demo_dir.user_password)
    directory.admin_group_dn = "cn=Disparu,ou=Groupes,dc=example,dc=com"
    directory.save()

    run = run_sync(directory).run

    account = User.objects.get(username="acme:camille.durand")
    assert account.is_active and account.role == Role.ADMIN
    assert "Groupe de rôle introuvable" in str(run.log)
