"""Real slapd fixtures for the LDAP tests.

One session-wide slapd serves the demo directory (with TLS) and a size limit of 100, well under the demo's
320 people, so every listing test proves paging. Tests that change the directory work in their own subtree
(``scratch_ou``); tests that break the server (stop, pause, limits) start their own (``own_slapd``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import ldap
import ldap.controls
import ldap.dn
import pytest

from ldap_sync import ad_directory, demo_directory
from ldap_sync.ad_directory import AdDirectory
from ldap_sync.client import ConnectionSettings
from ldap_sync.demo_directory import Directory, entries_to_ldif
from ldap_sync.samba_ad import SambaAdServer, missing_requirements
from ldap_sync.slapd import SlapdServer

SHARED_SIZE_LIMIT = 100


@pytest.fixture(scope="session")
def demo_dir() -> Directory:
    return demo_directory.demo()


@pytest.fixture(scope="session")
def slapd(demo_dir: Directory) -> Iterator[SlapdServer]:
    server = SlapdServer(tls=True, size_limit=SHARED_SIZE_LIMIT)
    server.start(seed_ldif=demo_dir.to_ldif())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_slapd(demo_dir: Directory) -> Iterator[Callable[..., SlapdServer]]:
    """Start a private slapd seeded with the demo directory: ``own_slapd(size_limit=..., tls=...)``."""
    servers: list[SlapdServer] = []

    def start(*, seed: Directory | None = None, **options: object) -> SlapdServer:
        server = SlapdServer(**options)  # type: ignore[arg-type]
        servers.append(server)
        return server.start(seed_ldif=(seed or demo_dir).to_ldif())

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def service_settings(slapd: SlapdServer, demo_dir: Directory) -> Callable[..., ConnectionSettings]:
    """Connection settings of the console's service account, overridable per test."""

    def make(server: SlapdServer | None = None, **overrides: object) -> ConnectionSettings:
        values: dict[str, object] = {
            "uri": (server or slapd).uri,
            "bind_dn": demo_dir.service_bind_dn,
            "bind_password": demo_dir.service_password,
            "network_timeout": 2.0,
            "operation_timeout": 5.0,
        }
        values.update(overrides)
        return ConnectionSettings(**values)  # type: ignore[arg-type]

    return make


class ScratchOu:
    """A fresh subtree of the shared directory, removed after the test."""

    def __init__(self, server: SlapdServer) -> None:
        self.server = server
        self.name = f"t-{uuid.uuid4().hex[:10]}"
        self.dn = f"ou={self.name},{server.base_dn}"
        self.add(self.dn, {"objectClass": ["organizationalUnit"], "ou": [self.name]})

    def add(self, dn: str, attributes: dict[str, list[str]], *, manage_dsa_it: bool = False) -> str:
        self.server.add_ldif(entries_to_ldif([(dn, attributes)]), manage_dsa_it=manage_dsa_it)
        return dn

    def add_ou(self, *path: str) -> str:
        dn = demo_directory.ou_dn(path, self.dn)
        return self.add(dn, {"objectClass": ["organizationalUnit"], "ou": [path[-1]]})

    def add_person(self, uid: str, ou_dn: str, **attributes: list[str]) -> str:
        dn = f"uid={ldap.dn.escape_dn_chars(uid)},{ou_dn}"
        values = {"objectClass": ["inetOrgPerson"], "uid": [uid], "cn": [uid], "sn": [uid], **attributes}
        return self.add(dn, values)

    def delete(self) -> None:
        conn = self.server.root_connection()
        # The ManageDsaIT control lets us see and delete referral objects as plain entries.
        manage = [ldap.controls.RequestControl("2.16.840.1.113730.3.4.2", True)]
        try:
            found = conn.search_ext_s(self.dn, ldap.SCOPE_SUBTREE, attrlist=["1.1"], serverctrls=manage)
            for dn, _attrs in sorted(found, key=lambda item: -len(ldap.dn.str2dn(item[0]))):
                conn.delete_ext_s(dn, serverctrls=manage)
        except ldap.NO_SUCH_OBJECT:
            pass
        finally:
            conn.unbind_s()


@pytest.fixture
def scratch_ou(slapd: SlapdServer) -> Iterator[ScratchOu]:
    scratch = ScratchOu(slapd)
    yield scratch
    scratch.delete()


# -- Django side ---------------------------------------------------------------------------------------------------
@pytest.fixture
def make_directory(db, slapd, demo_dir):  # type: ignore[no-untyped-def]
    """An ``LdapDirectory`` for a tenant, pointing at the shared slapd (or ``server``) as the service account."""
    from ldap_sync.models import LdapDirectory

    def make(tenant, server: SlapdServer | None = None, **fields: object) -> LdapDirectory:  # type: ignore[no-untyped-def]
        values: dict[str, object] = {
            "uri": (server or slapd).uri,
            "bind_dn": demo_dir.service_bind_dn,
            "bind_password": demo_dir.service_password,
            "base_dn": demo_dir.base_dn,
            "admin_group_dn": demo_dir.group_dn("admin"),
            "operator_group_dn": demo_dir.group_dn("operator"),
            "readonly_group_dn": demo_dir.group_dn("read_only"),
            "network_timeout": 2,
            "operation_timeout": 5,
        }
        values.update(fields)
        return LdapDirectory.unscoped.create(tenant=tenant, **values)

    return make


@pytest.fixture
def run_sync():  # type: ignore[no-untyped-def]
    """Run one sync of ``directory`` in the foreground; returns the outcome (run + changes)."""
    from ldap_sync import services
    from ldap_sync.models import LdapSyncRun, SyncTrigger

    def run(directory, trigger: str = SyncTrigger.MANUAL):  # type: ignore[no-untyped-def]
        sync_run = LdapSyncRun.unscoped.create(tenant=directory.tenant, directory=directory, trigger=trigger)
        outcome = services.ldap_sync_run(run=sync_run)
        directory.refresh_from_db()
        return outcome

    return run


# -- Active Directory (Samba AD DC) ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def ad_dir() -> AdDirectory:
    return ad_directory.demo()


@pytest.fixture(scope="session")
def samba_ad(ad_dir: AdDirectory) -> Iterator[SambaAdServer]:
    """One Samba AD DC for the session, restored from the cached snapshot of ``ad_dir`` (built once)."""
    problem = missing_requirements()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    server = SambaAdServer()
    server.start(seed=ad_dir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_ad_directory(db, samba_ad, ad_dir):  # type: ignore[no-untyped-def]
    """An ``LdapDirectory`` of kind Active Directory on the session's Samba, over LDAPS with its CA."""
    from ldap_sync.kinds import DirectoryKind, defaults
    from ldap_sync.models import LdapDirectory

    def make(tenant, **fields: object) -> LdapDirectory:  # type: ignore[no-untyped-def]
        values: dict[str, object] = {
            "kind": DirectoryKind.ACTIVE_DIRECTORY,
            **defaults(DirectoryKind.ACTIVE_DIRECTORY),
            "uri": samba_ad.ldaps_uri,
            "ca_certificate": samba_ad.ca_cert_pem,
            "bind_dn": ad_dir.service_bind_dn,
            "bind_password": ad_dir.service_password,
            "base_dn": ad_dir.base_dn,
            "admin_group_dn": ad_dir.group_dn("admin"),
            "operator_group_dn": ad_dir.group_dn("operator"),
            "readonly_group_dn": ad_dir.group_dn("read_only"),
            "network_timeout": 5,
            "operation_timeout": 30,
        }
        values.update(fields)
        return LdapDirectory.unscoped.create(tenant=tenant, **values)

    return make
