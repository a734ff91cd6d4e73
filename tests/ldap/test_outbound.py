"""Outbound connections are policy, not input (issue 14, mdm/outbound.py).

The connection test, the sync and the LDAP login go through one guard: a tenant admin cannot aim them at the
console's Redis or database, at loopback or private ranges, cannot smuggle protocol commands in with CR/LF, and
cannot make the console send the stored bind password to an address of their choosing.
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import redis
from django import forms
from django.urls import reverse

from ldap_sync import diagnostics
from ldap_sync.backends import TenantLDAPBackend
from ldap_sync.client import ConnectionSettings, LdapClient, LdapRefused
from ldap_sync.forms import LINE_FIELDS, LdapDirectoryForm
from ldap_sync.models import LdapDirectory, SyncStatus
from ldap_sync.slapd import free_port
from mdm import outbound
from mdm.models import Role
from tests.ldap.test_views import form_data

pytestmark = pytest.mark.django_db

TEST_URL = reverse("ldap_sync:test")
DIRECTORY_URL = reverse("ldap_sync:directory")
CRLF = "\r\nSET pwned-{field} 1\r\nFLUSHALL\r\n"
# What a Redis client library sends by itself around our INFO calls: anything else ran because of the test.
OWN_COMMANDS = {
    "cmdstat_info",
    "cmdstat_hello",
    "cmdstat_client|setinfo",
    "cmdstat_ping",
    "cmdstat_select",
    "cmdstat_config|resetstat",
}


@dataclass
class RedisUnderTest:
    port: int
    process: subprocess.Popen

    _client: redis.Redis | None = None

    def client(self) -> redis.Redis:
        # One connection for the test's own calls, so "connections received" counts only the console's.
        if self._client is None:
            self._client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)
        return self._client

    def commands_run(self) -> set[str]:
        stats = self.client().info("commandstats")
        return set(stats) - OWN_COMMANDS

    def connections(self) -> int:
        return int(self.client().info("stats")["total_connections_received"])

    def keys(self) -> list[bytes]:
        return list(self.client().keys("*"))


@pytest.fixture
def test_redis() -> Iterator[RedisUnderTest]:
    """A throwaway redis-server on a free port, never the console's own: stopped by pid at the end."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = RedisUnderTest(port, process)
    deadline = time.monotonic() + 10
    while True:
        try:
            server.client().ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.05)
    server.client().config_resetstat()
    try:
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)


def crlf_form(uri: str) -> dict[str, object]:
    """The clean form with a Redis command appended to every one-line field (``LINE_FIELDS``) but the URI (the
    test sends a payload in the URI on its own); a field left empty gets a plausible value first."""
    data = _clean_form(uri)
    for name in LINE_FIELDS:
        if name != "uri":
            data[name] = f"{data.get(name) or 'x'}{CRLF.format(field=name)}"
    return data


def report_messages(response) -> str:  # type: ignore[no-untyped-def]
    return " ".join(f"{step['message']} {step['detail']}" for step in response.context["report"] or [])


# -- the connection test aimed at Redis ---------------------------------------------------------------------------
def test_connection_test_aimed_at_redis_is_refused_by_address_and_port(admin_client_, test_redis, settings):
    """Production policy: loopback and a non-LDAP port are refused before any connection is opened."""
    settings.MDM_OUTBOUND_ALLOWED_NETWORKS = []
    settings.MDM_OUTBOUND_ALLOWED_PORTS = []
    before = test_redis.connections()
    # The values the guard must refuse on its own: without control characters the form is valid.
    response = admin_client_.post(TEST_URL, _clean_form(f"ldap://127.0.0.1:{test_redis.port}"))
    assert response.status_code == 200
    assert response.context["report_ok"] is False
    assert "seuls les ports LDAP" in report_messages(response)
    assert test_redis.connections() == before  # not even a TCP connection
    assert test_redis.commands_run() == set()


def test_connection_test_with_crlf_in_every_field_sends_nothing_even_to_an_allowed_port(
    admin_client_, test_redis, settings
):
    """The operator allowed loopback and the port: control characters are still refused before any byte."""
    settings.MDM_OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.MDM_OUTBOUND_ALLOWED_PORTS = [str(test_redis.port)]
    before = test_redis.connections()
    response = admin_client_.post(TEST_URL, crlf_form(f"ldap://127.0.0.1:{test_redis.port}"))
    assert response.status_code == 400
    errors = response.context["form"].errors
    refused = {name for name in LINE_FIELDS if "caractères de contrôle" in " ".join(errors.get(name, []))}
    assert refused == set(LINE_FIELDS) - {"uri"}
    # LINE_FIELDS is every text field but the (multi-line) PEM: a new one-line field left out of it fails here.
    text_fields = {
        name for name, field in LdapDirectoryForm.base_fields.items() if type(field) is forms.CharField
    }
    assert text_fields - {"ca_certificate"} == set(LINE_FIELDS)
    # And the URI carrying the payload itself:
    uri_payload = crlf_form(f"ldap://127.0.0.1:{test_redis.port}/%0D%0ASET pwned 1\r\n")
    response = admin_client_.post(TEST_URL, uri_payload)
    assert response.status_code == 400
    assert "uri" in response.context["form"].errors
    assert test_redis.connections() == before
    assert test_redis.commands_run() == set()
    assert test_redis.keys() == []


def test_client_refuses_control_characters_before_connecting(test_redis, settings):
    """Below the form (the sync, the commands): the client itself refuses, before opening the socket."""
    settings.MDM_OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.MDM_OUTBOUND_ALLOWED_PORTS = [str(test_redis.port)]
    before = test_redis.connections()
    uri = f"ldap://127.0.0.1:{test_redis.port}"
    for values in (
        {"bind_dn": "cn=x,dc=example,dc=com", "bind_password": "x" + CRLF.format(field="password")},
        {"bind_dn": "cn=x,dc=example,dc=com" + CRLF.format(field="dn"), "bind_password": "x"},
        {"bind_dn": "cn=x,dc=example,dc=com", "bind_password": "x\x00"},
    ):
        with pytest.raises(LdapRefused) as refused:
            LdapClient(ConnectionSettings(uri=uri, network_timeout=1.0, **values)).open()
        assert "caractères de contrôle" in refused.value.message
    report = diagnostics.check_connection(
        ConnectionSettings(uri=uri, network_timeout=1.0),
        base_dn="dc=example,dc=com" + CRLF.format(field="base"),
        ou_filter="(objectClass=*)",
        user_filter="(objectClass=*)",
    )
    assert report.first_error is not None and report.first_error.error_code == "refused"
    assert test_redis.connections() == before
    assert test_redis.commands_run() == set()


def test_the_sync_goes_through_the_same_guard(tenant, test_redis, run_sync, settings):
    """A directory saved before the guard existed (or by a command) and aimed at Redis: the sync refuses."""
    directory = LdapDirectory.unscoped.create(
        tenant=tenant,
        uri=f"ldap://127.0.0.1:{test_redis.port}",
        bind_dn="cn=x,dc=example,dc=com",
        bind_password="x" + CRLF.format(field="password"),
        base_dn="dc=example,dc=com",
        network_timeout=1,
        operation_timeout=1,
    )
    for allowed_ports in ([], [str(test_redis.port)]):
        settings.MDM_OUTBOUND_ALLOWED_PORTS = allowed_ports
        outcome = run_sync(directory)
        assert outcome.run.status == SyncStatus.FAILED
        assert outcome.run.error_code == "refused"
    assert test_redis.commands_run() == set()
    assert test_redis.keys() == []


def test_ldap_login_goes_through_the_same_guard(tenant, test_redis, settings, rf):
    connections_before = test_redis.connections()
    LdapDirectory.unscoped.create(
        tenant=tenant,
        uri=f"ldap://127.0.0.1:{test_redis.port}",
        bind_dn="cn=x,dc=example,dc=com",
        bind_password="x",
        base_dn="dc=example,dc=com",
        admin_group_dn="cn=admins,dc=example,dc=com",
        network_timeout=1,
        operation_timeout=1,
    )
    backend = TenantLDAPBackend()
    request = rf.post("/connexion/")
    settings.MDM_OUTBOUND_ALLOWED_PORTS = []
    assert backend.authenticate(request, username="bob", password="pw", tenant=tenant.slug) is None
    settings.MDM_OUTBOUND_ALLOWED_PORTS = [str(test_redis.port)]
    payload = "pw\r\nSET pwned 1\r\n"
    assert backend.authenticate(request, username=payload, password="pw", tenant=tenant.slug) is None
    assert backend.authenticate(request, username="bob", password=payload, tenant=tenant.slug) is None
    # A service password saved before the form refused control characters is not sent either.
    LdapDirectory.unscoped.filter(tenant=tenant).update(bind_password=payload)
    assert backend.authenticate(request, username="bob", password="pw", tenant=tenant.slug) is None
    assert test_redis.connections() == connections_before
    assert test_redis.commands_run() == set()
    assert test_redis.keys() == []


# -- internal addresses and the console's own services ----------------------------------------------------------
@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("ldap://127.0.0.1:389", "adresse est interne"),
        ("ldap://localhost:389", "adresse est interne"),
        ("ldap://[::1]:389", "adresse est interne"),
        ("ldap://[::ffff:127.0.0.1]:389", "adresse est interne"),
        ("ldap://10.0.0.1:389", "adresse est interne"),
        ("ldap://172.16.5.4:636", "adresse est interne"),
        ("ldaps://192.168.1.1", "adresse est interne"),
        ("ldap://169.254.169.254", "adresse est interne"),
        ("ldap://100.64.0.1:389", "adresse est interne"),
        ("ldap://0.0.0.0:389", "adresse est interne"),
        ("ldap://224.0.0.1:389", "adresse est interne"),
        ("ldap://8.8.8.8:6379", "seuls les ports LDAP"),
        ("ldap://127.0.0.1:5432", "service interne de la console"),
    ],
)
def test_internal_destinations_are_refused_with_a_clear_message(uri, expected, admin_client_, settings):
    settings.MDM_OUTBOUND_ALLOWED_NETWORKS = []
    settings.MDM_OUTBOUND_ALLOWED_PORTS = []
    started = time.monotonic()
    response = admin_client_.post(TEST_URL, _clean_form(uri))
    assert response.status_code == 200
    steps = response.context["report"]
    assert steps[0]["status"] == "failed"
    assert expected in steps[0]["message"], steps[0]
    # Refused before connecting: a connection attempt to 10.0.0.1 would have waited for the 2 s timeout.
    assert time.monotonic() - started < 2


@pytest.fixture
def connect_attempts(monkeypatch) -> list[object]:  # type: ignore[no-untyped-def]
    """Every socket connection the code under test tries: none is made (the test never connects anywhere)."""
    attempts: list[object] = []

    def refuse(self, address):  # type: ignore[no-untyped-def]
        attempts.append(address)
        raise ConnectionRefusedError("this test allows no connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


@pytest.mark.parametrize(
    ("address", "allowed", "port", "expected"),
    [
        ("::7f00:1", [], 389, "adresse est interne"),  # IPv4-compatible 127.0.0.1
        ("::a00:1", [], 389, "adresse est interne"),  # IPv4-compatible 10.0.0.1
        ("2002:7f00:1::", [], 389, "adresse est interne"),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::1", [], 389, "adresse est interne"),  # 6to4 of the metadata service
        ("64:ff9b::7f00:1", [], 389, "adresse est interne"),  # NAT64 well-known prefix
        ("64:ff9b::a9fe:a9fe", [], 636, "adresse est interne"),
        ("64:ff9b:1::7f00:1", [], 389, "adresse est interne"),  # NAT64 local-use, /96 layout
        ("64:ff9b:1:7f00:0:100:808:808", [], 389, "adresse est interne"),  # 127.0.0.1 in the /48 layout
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", [], 389, "adresse est interne"),  # Teredo, client 127.0.0.1
        # The operator trusts every IPv6 destination, not the IPv4 loopback those carry.
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", ["::/0"], 389, "adresse est interne"),
        ("64:ff9b:1::7f00:1", ["::/0"], 389, "adresse est interne"),
        ("2002:7f00:1::", ["::/0"], 389, "adresse est interne"),
        ("2002:7f00:1::", ["::/0"], 5432, "service interne de la console"),
        ("64:ff9b::7f00:1", ["::/0"], 6379, "service interne de la console"),
    ],
)
def test_ipv6_addresses_are_judged_by_the_ipv4_address_they_carry(
    address, allowed, port, expected, admin_client_, settings, connect_attempts
):
    settings.MDM_OUTBOUND_ALLOWED_NETWORKS = allowed
    settings.MDM_OUTBOUND_ALLOWED_PORTS = ["1-65535"] if port not in (389, 636) else []
    response = admin_client_.post(TEST_URL, _clean_form(f"ldap://[{address}]:{port}"))
    assert response.status_code == 200
    steps = response.context["report"]
    assert steps[0]["status"] == "failed"
    assert expected in steps[0]["message"], steps[0]
    assert connect_attempts == []  # refused by the guard, before any connection attempt


def test_public_addresses_carried_in_ipv6_stay_reachable():
    """Judging by the carried IPv4 address refuses internal ones only: a public one passes the guard."""
    rules = outbound.Policy(
        allowed_networks=(), allowed_ports=frozenset({389}), extra_port_ranges=(), services=()
    )
    for address in ("::ffff:808:808", "2002:808:808::1", "64:ff9b::808:808"):
        outbound.check_address(ipaddress.ip_address(address), 389, rules)


@pytest.mark.parametrize("service", ["database", "redis"])
def test_console_services_stay_refused_inside_an_allowed_network_and_port(service, admin_client_, settings):
    settings.MDM_OUTBOUND_ALLOWED_NETWORKS = ["0.0.0.0/0", "::/0"]
    settings.MDM_OUTBOUND_ALLOWED_PORTS = ["1-65535"]
    if service == "database":
        host, port = settings.DATABASES["default"]["HOST"], int(settings.DATABASES["default"]["PORT"] or 5432)
    else:
        host, port = "127.0.0.1", 6379
    response = admin_client_.post(TEST_URL, _clean_form(f"ldap://{host}:{port}"))
    steps = response.context["report"]
    assert steps[0]["status"] == "failed"
    assert "service interne de la console" in steps[0]["message"]


def test_refusal_is_translated(admin_client_, settings):
    settings.MDM_OUTBOUND_ALLOWED_NETWORKS = []
    response = admin_client_.post(TEST_URL, _clean_form("ldap://10.0.0.1:389"), HTTP_ACCEPT_LANGUAGE="en")
    assert "Connection refused: this address is internal" in response.content.decode()


def test_policy_checks_every_resolved_address(monkeypatch):
    """A name with one public and one internal address is refused (round-robin cannot smuggle it in)."""
    real = socket.getaddrinfo

    def resolver(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host == "mixed.example.test":
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 389)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", 389)),
            ]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    with pytest.raises(outbound.AddressRefused):
        outbound.check_destination("mixed.example.test", 389)


def test_libldap_connects_to_the_checked_address_without_resolving_again(slapd, demo_dir, monkeypatch):
    """DNS rebinding: the name is resolved once, by the guard; libldap gets the connected socket.

    ``rebind.example.test`` exists only for the guard's resolver: had libldap resolved the name itself, the
    bind would fail with "unreachable".
    """
    real = socket.getaddrinfo
    resolved: list[str] = []

    def resolver(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host == "rebind.example.test":
            resolved.append(host)
            return real("127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    uri = f"ldap://rebind.example.test:{slapd.port}"
    with LdapClient(
        ConnectionSettings(uri=uri, bind_dn=demo_dir.service_bind_dn, bind_password=demo_dir.service_password)
    ) as client:
        assert client.check_base_dn(demo_dir.base_dn)
    assert resolved == ["rebind.example.test"]


def test_ldaps_peer_is_checked_before_the_bind(slapd, demo_dir, settings):
    """ldaps:// (libldap opens the TLS socket): allowed, it binds; once refused, nothing is sent."""
    values = {
        "uri": slapd.ldaps_uri,
        "bind_dn": demo_dir.service_bind_dn,
        "bind_password": demo_dir.service_password,
        "ca_cert_pem": slapd.ca_cert_pem,
    }
    with LdapClient(ConnectionSettings(**values)) as client:
        assert client.check_base_dn(demo_dir.base_dn)
    settings.MDM_OUTBOUND_ALLOWED_NETWORKS = []
    with pytest.raises(LdapRefused):
        LdapClient(ConnectionSettings(**values)).open()


# -- the stored password never leaves for another address ------------------------------------------------------
@dataclass
class Listener:
    """A TCP server on the loopback that records every byte it receives (a stand-in for an attacker's host)."""

    sock: socket.socket
    received: bytearray = field(default_factory=bytearray)
    connections: int = 0

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def serve(self) -> None:
        self.sock.settimeout(0.2)
        while not getattr(self, "stopped", False):
            try:
                conn, _addr = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            with conn:
                conn.settimeout(0.5)
                try:
                    while chunk := conn.recv(65536):
                        self.received.extend(chunk)
                except (TimeoutError, OSError):
                    pass


@pytest.fixture
def listener() -> Iterator[Listener]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(5)
    server = Listener(sock)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopped = True  # type: ignore[attr-defined]
        thread.join(timeout=5)
        sock.close()


STORED_PASSWORD = "stored-bind-secret-7f3a"


@pytest.mark.parametrize(
    "change",
    [
        {"uri": "LISTENER"},
        {"bind_dn": "cn=other,dc=example,dc=com", "uri": "LISTENER"},
    ],
)
def test_stored_password_is_never_sent_to_a_changed_uri(
    change, admin_client_, tenant, listener, slapd, demo_dir
):
    LdapDirectory.unscoped.create(
        tenant=tenant,
        uri=slapd.uri,
        bind_dn=demo_dir.service_bind_dn,
        bind_password=STORED_PASSWORD,
        base_dn=demo_dir.base_dn,
    )
    values = {
        key: (f"ldap://127.0.0.1:{listener.port}" if value == "LISTENER" else value)
        for key, value in change.items()
    }
    data = form_data(slapd, demo_dir, bind_password="", network_timeout=1, operation_timeout=1, **values)
    for url in (TEST_URL, DIRECTORY_URL):
        response = admin_client_.post(url, data)
        assert response.status_code == 400
        message = " ".join(response.context["form"].errors["bind_password"])
        assert "saisissez à nouveau le mot de passe de liaison" in message
    assert LdapDirectory.unscoped.get(tenant=tenant).uri == slapd.uri  # nothing saved
    # Typing a password sends that one, never the stored one.
    response = admin_client_.post(TEST_URL, {**data, "bind_password": "typed-now"})
    assert response.status_code == 200
    time.sleep(0.3)
    assert listener.connections == 1
    assert b"typed-now" in listener.received
    assert STORED_PASSWORD.encode() not in listener.received


def test_unchanged_destination_keeps_using_the_stored_password(admin_client_, tenant, slapd, demo_dir):
    LdapDirectory.unscoped.create(
        tenant=tenant,
        uri=slapd.uri,
        bind_dn=demo_dir.service_bind_dn,
        bind_password=demo_dir.service_password,
        base_dn=demo_dir.base_dn,
    )
    response = admin_client_.post(TEST_URL, form_data(slapd, demo_dir, bind_password=""))
    assert response.status_code == 200
    assert response.context["report_ok"] is True


def _clean_form(uri: str) -> dict[str, object]:
    return {
        "uri": uri,
        "bind_dn": "cn=x,dc=example,dc=com",
        "bind_password": "secret",
        "base_dn": "dc=example,dc=com",
        "ou_filter": "(objectClass=organizationalUnit)",
        "user_filter": "(objectClass=inetOrgPerson)",
        "uid_attribute": "uid",
        "email_attribute": "mail",
        "name_attribute": "cn",
        "network_timeout": 2,
        "operation_timeout": 2,
        "ca_certificate": "",
        "admin_group_dn": "",
        "operator_group_dn": "",
        "readonly_group_dn": "",
    }


def test_only_admins_reach_the_connection_test(tenant, make_user, client_for):
    for role in (Role.OPERATOR, Role.READ_ONLY):
        response = client_for(make_user(tenant, role)).post(TEST_URL, _clean_form("ldap://10.0.0.1"))
        assert response.status_code == 403


# -- secrets decrypt only from the database ------------------------------------------------------------------------
def test_pasted_ciphertext_of_another_tenant_is_not_decrypted(
    admin_client_, tenant, other_tenant, listener, slapd, demo_dir
):
    """Tenant B's ciphertext (from a backup) pasted as tenant A's bind password reaches A's server as the
    ciphertext text itself, never as B's secret."""
    from django.db import connection

    b_secret = "tenant-b-refresh-token-1//0gXYZ"
    b_directory = LdapDirectory.unscoped.create(
        tenant=other_tenant,
        uri=slapd.uri,
        bind_dn="cn=b,dc=example,dc=com",
        bind_password=b_secret,
        base_dn="dc=b",
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT bind_password FROM ldap_sync_ldapdirectory WHERE id = %s", [b_directory.pk])
        ciphertext = cursor.fetchone()[0]
    data = form_data(
        slapd,
        demo_dir,
        uri=f"ldap://127.0.0.1:{listener.port}",
        bind_password=ciphertext,
        operation_timeout=1,
    )
    response = admin_client_.post(TEST_URL, data)
    assert response.status_code == 200
    time.sleep(0.3)
    assert ciphertext.encode() in listener.received
    assert b_secret.encode() not in listener.received
    response = admin_client_.post(DIRECTORY_URL, data)
    assert response.status_code == 302
    assert LdapDirectory.unscoped.get(tenant=tenant).bind_password == ciphertext


@pytest.mark.parametrize("lookalike", ["0123abcd$gAAAAAnot-a-token", "deadbeef$gAAAAA" + "B" * 100 + "="])
def test_ciphertext_lookalike_password_gives_no_500(lookalike, admin_client_, tenant, slapd, demo_dir):
    response = admin_client_.post(DIRECTORY_URL, form_data(slapd, demo_dir, bind_password=lookalike))
    assert response.status_code == 302
    assert LdapDirectory.unscoped.get(tenant=tenant).bind_password == lookalike
    assert admin_client_.get(DIRECTORY_URL).status_code == 200
