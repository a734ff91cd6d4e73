"""The tenant's CA certificate file (issue 16's last finding): private, named by content, checked before use."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path

import pytest

from ldap_sync.client import ConnectionSettings, LdapClient, LdapTlsError, ca_cert_file
from ldap_sync.slapd import TlsMaterial


@pytest.fixture(scope="module")
def unrelated_ca_pem() -> str:
    return TlsMaterial.generate("Some other CA").ca_cert_pem


def test_a_planted_file_is_not_trusted(slapd, demo_dir, unrelated_ca_pem):
    """Another local account plants the server's real CA under the name the console would use for an
    unrelated CA: connecting with the unrelated CA must still fail, whatever sits in the shared temp folder."""
    shared = Path(tempfile.gettempdir()) / f"mdm-ldap-ca-{os.getuid()}"
    shared.mkdir(mode=0o700, exist_ok=True)
    planted = shared / f"{hashlib.sha256(unrelated_ca_pem.encode()).hexdigest()}.pem"
    planted.write_text(slapd.ca_cert_pem)
    try:
        settings = ConnectionSettings(
            uri=slapd.ldaps_uri,
            bind_dn=demo_dir.service_bind_dn,
            bind_password=demo_dir.service_password,
            ca_cert_pem=unrelated_ca_pem,
            network_timeout=2.0,
        )
        with pytest.raises(LdapTlsError):
            LdapClient(settings).open()
    finally:
        planted.unlink()


def test_the_file_is_private_and_rewritten_when_its_content_differs(slapd, unrelated_ca_pem):
    path = Path(ca_cert_file(slapd.ca_cert_pem))
    directory = path.parent
    info = os.lstat(directory)
    assert stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
    assert stat.S_IMODE(info.st_mode) == 0o700
    assert directory.name != f"mdm-ldap-ca-{os.getuid()}"  # not a predictable name
    assert path.read_text() == slapd.ca_cert_pem
    path.write_text(unrelated_ca_pem)  # tampered with after the first use
    assert Path(ca_cert_file(slapd.ca_cert_pem)).read_text() == slapd.ca_cert_pem


def test_a_stored_pem_that_is_not_a_certificate_is_a_clear_tls_error():
    with pytest.raises(LdapTlsError, match="certificat d'autorité enregistré"):
        ca_cert_file("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
