"""Directory sign-ins are throttled before any bind: once an account is locked out, the console sends nothing to
the customer's directory (an outsider cannot lock out its Active Directory accounts through the console)."""

from __future__ import annotations

import html

import ldap
import pytest
from django.test import Client

from ldap_sync.backends import TenantLDAPBackend
from mdm.models import AuditEvent

pytestmark = pytest.mark.django_db


class BindCounter:
    """Binds a slapd has completed, read from its ``cn=Monitor`` over one connection opened once."""

    def __init__(self, server) -> None:  # type: ignore[no-untyped-def]
        self.conn = server.root_connection()

    def __call__(self) -> int:
        found = self.conn.search_s(
            "cn=Bind,cn=Operations,cn=Monitor", ldap.SCOPE_BASE, attrlist=["monitorOpCompleted"]
        )
        return int(found[0][1]["monitorOpCompleted"][0])


@pytest.fixture
def monitored_slapd(own_slapd):  # type: ignore[no-untyped-def]
    """A private slapd with its monitor database on, so the test counts the binds it received."""
    server = own_slapd()
    conn = ldap.initialize(server.uri)
    conn.simple_bind_s("cn=config", server.config_password)
    access = f'to * by dn.exact="{server.root_dn}" read by * none'.encode()
    conn.add_s(
        "olcDatabase=monitor,cn=config",
        [("objectClass", [b"olcDatabaseConfig"]), ("olcDatabase", [b"monitor"]), ("olcAccess", [access])],
    )
    conn.unbind_s()
    return server


def test_no_bind_reaches_the_directory_once_the_account_is_locked(
    tenant, make_directory, monitored_slapd, demo_dir, settings, monkeypatch
):
    make_directory(tenant, server=monitored_slapd)
    binds = BindCounter(monitored_slapd)
    start = binds()
    calls = []
    original = TenantLDAPBackend.authenticate

    def counting(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs.get("username"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(TenantLDAPBackend, "authenticate", counting)
    attacker = Client(REMOTE_ADDR="203.0.113.50")
    form = {"tenant": "acme", "username": "camille.durand"}
    for _ in range(settings.AXES_FAILURE_LIMIT):
        attacker.post("/login/", {**form, "password": "wrong"})
    assert len(calls) == settings.AXES_FAILURE_LIMIT
    binds_before = binds()
    assert (
        binds_before >= start + settings.AXES_FAILURE_LIMIT
    )  # each attempt binds (service account, then user)

    for _ in range(10):
        assert attacker.post("/login/", {**form, "password": "wrong"}).status_code == 429
    # Even the right password, from another address: refused without a bind.
    owner = Client(REMOTE_ADDR="198.51.100.20")
    response = owner.post("/login/", {**form, "password": demo_dir.user_password})
    assert response.status_code == 429
    assert len(calls) == settings.AXES_FAILURE_LIMIT
    assert binds() == binds_before
    # The case of the typed name does not give a fresh counter.
    assert owner.post("/login/", {**form, "username": "Camille.Durand", "password": "x"}).status_code == 429
    assert (
        owner.post("/login/", {**form, "username": "ACME\\camille.durand", "password": "x"}).status_code
        == 429
    )
    assert binds() == binds_before

    failures = AuditEvent.unscoped.filter(
        tenant=tenant, action="auth.login_failed", actor_label="camille.durand"
    )
    assert failures.count() == settings.AXES_FAILURE_LIMIT
    assert AuditEvent.unscoped.filter(tenant=tenant, action="auth.login_blocked").count() == 13


def test_directory_sign_ins_are_audited_under_their_tenant(tenant, make_directory, demo_dir):
    make_directory(tenant)
    client = Client(REMOTE_ADDR="192.0.2.30")
    assert (
        client.post(
            "/login/", {"tenant": "acme", "username": "camille.durand", "password": demo_dir.user_password}
        ).status_code
        == 302
    )
    event = AuditEvent.unscoped.get(action="auth.login")
    assert event.tenant == tenant and event.actor_label == "acme:camille.durand"
    assert event.details == {"site": "console", "address": "192.0.2.30", "organisation": "acme"}


def test_an_unreadable_bind_password_gives_a_clear_page_not_a_server_error(
    tenant, make_directory, demo_dir, settings
):
    from cryptography.fernet import Fernet

    make_directory(tenant)
    settings.MDM_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    response = Client().post(
        "/login/", {"tenant": "acme", "username": "camille.durand", "password": demo_dir.user_password}
    )
    assert response.status_code == 503
    page = html.unescape(response.content.decode())
    assert "La connexion par l'annuaire de votre organisation est momentanément indisponible" in page
    assert (
        "MDM_ENCRYPTION_KEYS" not in page
    )  # nothing about the server's configuration for an anonymous visitor


def user_binds(server, user_dn: str) -> int:  # type: ignore[no-untyped-def]
    """Binds as ``user_dn`` the slapd received, from its own log (stats level): the service account's binds,
    which resolve the typed name, are not the user's."""
    needle = f'BIND dn="{user_dn}"'.casefold()
    return sum(needle in line.casefold() for line in server.log_path.read_text(errors="replace").splitlines())


def test_aliases_of_one_directory_account_share_one_allowance(
    tenant, make_directory, own_slapd, demo_dir, settings
):
    """uid and mail name one entry: alternating them must not multiply the wrong passwords the directory sees."""
    server = own_slapd(debug="stats")
    make_directory(tenant, server=server, login_attributes="uid mail")
    user_dn = demo_dir.person("camille.durand").dn(demo_dir.base_dn)
    assert user_binds(server, user_dn) == 0
    attacker = Client(REMOTE_ADDR="203.0.113.51")
    aliases = ["camille.durand", "camille.durand@example.com"]
    statuses = []
    for attempt in range(4 * settings.AXES_FAILURE_LIMIT):
        form = {"tenant": "acme", "username": aliases[attempt % 2], "password": "wrong"}
        statuses.append(attacker.post("/login/", form).status_code)
    assert user_binds(server, user_dn) == settings.AXES_FAILURE_LIMIT
    assert statuses[: settings.AXES_FAILURE_LIMIT - 1] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    assert set(statuses[settings.AXES_FAILURE_LIMIT - 1 :]) == {429}
    # A third name, and the right password from elsewhere: still no bind as the user while locked out.
    owner = Client(REMOTE_ADDR="198.51.100.21")
    response = owner.post(
        "/login/",
        {"tenant": "acme", "username": "Camille.Durand@Example.com", "password": demo_dir.user_password},
    )
    assert response.status_code == 429
    assert user_binds(server, user_dn) == settings.AXES_FAILURE_LIMIT
    assert AuditEvent.unscoped.filter(tenant=tenant, action="auth.login_failed").count() == (
        settings.AXES_FAILURE_LIMIT
    )


def test_a_success_clears_the_directory_account_counter(tenant, make_directory, demo_dir, settings):
    assert settings.AXES_FAILURE_LIMIT == 5
    make_directory(tenant, login_attributes="uid mail")
    client = Client(REMOTE_ADDR="192.0.2.31")
    uid, mail = "camille.durand", "camille.durand@example.com"

    def wrong(name: str) -> int:
        return client.post("/login/", {"tenant": "acme", "username": name, "password": "wrong"}).status_code

    assert [wrong(name) for name in (uid, mail, uid, mail)] == [200] * 4  # the entry: 4 failures
    form = {"tenant": "acme", "username": uid, "password": demo_dir.user_password}
    assert client.post("/login/", form).status_code == 302
    client.logout()
    # The entry's counter started again (mail's own counter did not: it is not the name that signed in).
    assert [wrong(name) for name in (mail, mail, uid, uid)] == [200] * 4
    # Fifth failure of the entry since the success: uid has 3, mail 4, the entry locks.
    assert wrong(uid) == 429
