"""Console login through the tenant's directory, role mapping from LDAP groups, next to local accounts."""

from __future__ import annotations

import pytest
from django.contrib.auth import authenticate
from django.test import Client
from django.urls import reverse

from mdm.models import Role, User

pytestmark = pytest.mark.django_db


@pytest.fixture
def ldap_tenant(tenant, make_directory):  # type: ignore[no-untyped-def]
    make_directory(tenant)
    return tenant


@pytest.mark.parametrize(
    ("uid", "role"),
    [("camille.durand", Role.ADMIN), ("lea.fontaine", Role.OPERATOR), ("helene.cote", Role.READ_ONLY)],
)
def test_directory_users_sign_in_with_the_role_of_their_group(uid, role, ldap_tenant, demo_dir):
    client = Client()
    response = client.post(
        reverse("login"), {"tenant": "acme", "username": uid, "password": demo_dir.user_password}
    )
    assert response.status_code == 302
    user = User.objects.get(username=f"acme:{uid}")
    assert user.tenant == ldap_tenant and user.role == role
    assert user.email == demo_dir.person(uid).mail
    assert not user.has_usable_password()  # no local password: ModelBackend can never sign them in
    assert client.get(reverse("ldap_sync:directory")).status_code == 200


def test_role_follows_the_directory_at_each_login(ldap_tenant, demo_dir, slapd):
    import ldap

    assert (
        authenticate(None, username="lea.fontaine", password=demo_dir.user_password, tenant="acme").role
        == Role.OPERATOR
    )
    conn = slapd.root_connection()
    admins = demo_dir.group_dn("admin")
    lea = demo_dir.person("lea.fontaine").dn(demo_dir.base_dn).encode()
    conn.modify_s(admins, [(ldap.MOD_ADD, "member", [lea])])
    try:
        user = authenticate(None, username="lea.fontaine", password=demo_dir.user_password, tenant="acme")
    finally:
        conn.modify_s(admins, [(ldap.MOD_DELETE, "member", [lea])])
        conn.unbind_s()
    assert user.role == Role.ADMIN


def test_users_outside_every_role_group_cannot_sign_in(ldap_tenant, demo_dir):
    someone = next(p for p in demo_dir.people if p.uid not in demo_dir.role_logins.values())
    assert authenticate(None, username=someone.uid, password=demo_dir.user_password, tenant="acme") is None
    assert not User.objects.filter(username=f"acme:{someone.uid}").exists()


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("camille.durand", "wrong"),
        ("camille.durand", ""),
        ("*", "demo-secret"),
        ("*)(uid=*", "demo-secret"),
        ("camille.durand)(|(uid=*", "demo-secret"),
        ("nobody", "demo-secret"),
    ],
)
def test_bad_credentials_and_filter_injection_are_refused(username, password, ldap_tenant):
    assert authenticate(None, username=username, password=password, tenant="acme") is None


def test_tenant_without_directory_or_unknown_tenant(tenant, other_tenant, make_directory, demo_dir):
    make_directory(tenant)
    assert (
        authenticate(None, username="camille.durand", password=demo_dir.user_password, tenant="globex")
        is None
    )
    assert (
        authenticate(None, username="camille.durand", password=demo_dir.user_password, tenant="nope") is None
    )
    assert authenticate(None, username="camille.durand", password=demo_dir.user_password) is None


def test_ldap_users_of_two_tenants_stay_apart(tenant, other_tenant, make_directory, demo_dir):
    make_directory(tenant)
    make_directory(other_tenant)
    first = authenticate(None, username="camille.durand", password=demo_dir.user_password, tenant="acme")
    second = authenticate(None, username="camille.durand", password=demo_dir.user_password, tenant="globex")
    assert first.pk != second.pk
    assert (first.tenant, second.tenant) == (tenant, other_tenant)


def test_local_accounts_still_sign_in(admin_user, ldap_tenant):
    client = Client()
    response = client.post(reverse("login"), {"username": admin_user.username, "password": "pw"})
    assert response.status_code == 302


def test_unreachable_directory_means_a_refused_login_not_a_crash(tenant, make_directory, demo_dir):
    from ldap_sync.slapd import free_port

    make_directory(tenant, uri=f"ldap://127.0.0.1:{free_port()}")
    assert (
        authenticate(None, username="camille.durand", password=demo_dir.user_password, tenant="acme") is None
    )


def test_login_over_ldaps_with_the_tenants_ca(tenant, make_directory, slapd, demo_dir):
    make_directory(tenant, uri=slapd.ldaps_uri, ca_certificate=slapd.ca_cert_pem)
    user = authenticate(None, username="camille.durand", password=demo_dir.user_password, tenant="acme")
    assert user is not None and user.role == Role.ADMIN


def test_directory_users_get_their_name_from_the_directory(ldap_tenant, demo_dir):
    user = authenticate(None, username="camille.durand", password=demo_dir.user_password, tenant="acme")
    assert (user.first_name, user.last_name) == ("Camille", "Durand")
    assert user.display_name == "Camille Durand"
