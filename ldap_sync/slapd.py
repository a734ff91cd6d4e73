"""A private OpenLDAP server for tests and the demo.

The project never touches a system-wide slapd: each ``SlapdServer`` owns a directory holding its cn=config
(built offline with ``slapadd -n0``), its mdb database and its logs, listens on free ports of 127.0.0.1 and is
stopped by pid. Debian's ``slapd`` and ``ldap-utils`` packages provide the binaries.

Seeding goes through ``slapadd`` before the server starts: loading 6,000 entries that way takes about a second,
against a minute through ``ldapadd``. Entries added while the server runs go through ``add_ldif``.

Command line, for the demo (runs until killed)::

    python -m ldap_sync.slapd --port 3389 --data-dir var/slapd --seed demo [--tls-port 3636]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SLAPD = os.environ.get("MDM_SLAPD_BIN", "/usr/sbin/slapd")
SLAPADD = os.environ.get("MDM_SLAPADD_BIN", "/usr/sbin/slapadd")
SCHEMA_DIR = Path(os.environ.get("MDM_LDAP_SCHEMA_DIR", "/etc/ldap/schema"))
MODULE_DIR = Path(os.environ.get("MDM_SLAPD_MODULE_DIR", "/usr/lib/ldap"))
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")

DEFAULT_BASE_DN = "dc=example,dc=com"
DEFAULT_ROOT_PASSWORD = "root-secret"  # noqa: S105 - a throwaway test/demo server
DEFAULT_CONFIG_PASSWORD = "config-secret"  # noqa: S105
SLAPD_DEFAULT_SIZE_LIMIT = 500


class SlapdError(RuntimeError):
    """The private slapd could not be configured, seeded or started."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ssha(password: str, salt: bytes | None = None) -> str:
    """An RFC 2307 ``{SSHA}`` value; slapd verifies it natively."""
    salt = salt if salt is not None else os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()  # noqa: S324 - the format slapd understands
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


@dataclass(frozen=True)
class TlsMaterial:
    """A self-signed CA and a server certificate for 127.0.0.1 / localhost, all PEM."""

    ca_cert_pem: str
    server_cert_pem: str
    server_key_pem: str

    @classmethod
    def generate(cls, common_name: str = "MDM test CA") -> TlsMaterial:
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        server_key = ec.generate_private_key(ec.SECP256R1())
        server_cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name)
            .public_key(server_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        return cls(
            ca_cert_pem=ca_cert.public_bytes(serialization.Encoding.PEM).decode(),
            server_cert_pem=server_cert.public_bytes(serialization.Encoding.PEM).decode(),
            server_key_pem=server_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode(),
        )


@dataclass
class SlapdServer:
    """One private slapd process. Use as a context manager, or call ``start()`` and ``stop()``.

    ``size_limit`` is slapd's ``olcSizeLimit`` for plain searches (slapd's default is 500).
    ``paged_total_limit`` caps what one paged search may return in total (``size.prtotal``): directories
    that allow paging past the size limit, as this project expects, set it to ``"unlimited"``.
    The root DN is exempt from every limit, so clients that must feel the limits bind as another entry.
    """

    base_dn: str = DEFAULT_BASE_DN
    size_limit: int | None = SLAPD_DEFAULT_SIZE_LIMIT
    paged_total_limit: int | str = "unlimited"
    tls: bool = False
    port: int | None = None
    tls_port: int | None = None
    data_dir: Path | None = None
    root_password: str = DEFAULT_ROOT_PASSWORD
    config_password: str = DEFAULT_CONFIG_PASSWORD
    tls_material: TlsMaterial | None = None
    # slapd's -d level; "stats" writes every operation (BIND dn=..., RESULT err=...) to log_path, for tests
    # that count what reached the directory.
    debug: str = "0"
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _owns_data_dir: bool = field(default=False, init=False, repr=False)

    # -- addresses and credentials -------------------------------------------------------------------------
    @property
    def root_dn(self) -> str:
        return f"cn=admin,{self.base_dn}"

    @property
    def uri(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_uri(self) -> str:
        if not self.tls:
            raise SlapdError("this slapd was started without TLS")
        return f"ldaps://127.0.0.1:{self.tls_port}"

    @property
    def ca_cert_pem(self) -> str:
        if self.tls_material is None:
            raise SlapdError("this slapd was started without TLS")
        return self.tls_material.ca_cert_pem

    @property
    def config_dir(self) -> Path:
        return self._dir / "slapd.d"

    @property
    def db_dir(self) -> Path:
        return self._dir / "data"

    @property
    def log_path(self) -> Path:
        return self._dir / "slapd.log"

    @property
    def _dir(self) -> Path:
        if self.data_dir is None:
            raise SlapdError("slapd has no data directory yet; call start()")
        return self.data_dir

    @property
    def is_initialised(self) -> bool:
        return self.data_dir is not None and (self.config_dir / "cn=config.ldif").exists()

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self, seed_ldif: str | None = None) -> SlapdServer:
        """Configure (first time only), seed offline, then run slapd and wait until it answers."""
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="mdm-slapd-"))
            self._owns_data_dir = True
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.is_initialised:
            if self.tls and self.tls_material is None:
                self.tls_material = TlsMaterial.generate()
            self._write_config()
        elif self.tls and self.tls_material is None:
            self.tls_material = self._read_tls_material()
        if seed_ldif:
            self.slapadd(seed_ldif)
        self._run()
        return self

    def stop(self) -> None:
        """Kill our slapd by pid and, if we created it, remove its directory."""
        self._terminate()
        if self._owns_data_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None
            self._owns_data_dir = False

    def restart(self) -> None:
        """Stop the process and start it again on the same ports with the same data."""
        self._terminate()
        self._run()

    def pause(self) -> None:
        """Freeze slapd (SIGSTOP): connections stay open but nothing answers, as with a hung server."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def __enter__(self) -> SlapdServer:
        if self.process is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- data ---------------------------------------------------------------------------------------------------
    def slapadd(self, ldif: str) -> None:
        """Load entries offline into the mdb database (the server must not be running)."""
        if self.process is not None and self.process.poll() is None:
            raise SlapdError("slapadd needs slapd stopped; use add_ldif() on a running server")
        ldif_path = self._dir / "seed.ldif"
        ldif_path.write_text(ldif, encoding="utf-8")
        # -q skips consistency checks that slow bulk loads down; the generator emits parents first.
        self._check_call(
            [SLAPADD, "-q", "-F", str(self.config_dir), "-b", self.base_dn, "-l", str(ldif_path)]
        )
        ldif_path.unlink()

    def add_ldif(self, ldif: str, *, manage_dsa_it: bool = False) -> None:
        """Add entries to the running server as the root DN (through python-ldap)."""
        import io

        import ldap
        import ldap.modlist
        from ldap.controls import RequestControl
        from ldif import LDIFRecordList

        parser = LDIFRecordList(io.StringIO(ldif))
        parser.parse()
        controls = [RequestControl("2.16.840.1.113730.3.4.2", True)] if manage_dsa_it else None
        conn = self.root_connection()
        try:
            for dn, entry in parser.all_records:
                conn.add_ext_s(dn, ldap.modlist.addModlist(entry), serverctrls=controls)
        finally:
            conn.unbind_s()

    def root_connection(self) -> Any:
        """A python-ldap connection bound as the root DN (for test set-up, never for the code under test)."""
        import ldap

        conn = ldap.initialize(self.uri)
        conn.set_option(ldap.OPT_REFERRALS, 0)
        conn.set_option(ldap.OPT_NETWORK_TIMEOUT, 5)
        conn.simple_bind_s(self.root_dn, self.root_password)
        return conn

    def set_limits(self, *, size_limit: int | None, paged_total_limit: int | str = "unlimited") -> None:
        """Change the size limits of the running server through cn=config."""
        import ldap

        conn = ldap.initialize(self.uri)
        conn.simple_bind_s("cn=config", self.config_password)
        try:
            value = self._size_limit_value(size_limit, paged_total_limit).encode()
            for dn in ("olcDatabase={-1}frontend,cn=config", "olcDatabase={1}mdb,cn=config"):
                conn.modify_s(dn, [(ldap.MOD_REPLACE, "olcSizeLimit", [value])])
        finally:
            conn.unbind_s()
        self.size_limit, self.paged_total_limit = size_limit, paged_total_limit

    # -- internals ----------------------------------------------------------------------------------------------
    @staticmethod
    def _size_limit_value(size_limit: int | None, paged_total_limit: int | str) -> str:
        limit = "unlimited" if size_limit is None else str(size_limit)
        return f"size.soft={limit} size.hard={limit} size.prtotal={paged_total_limit}"

    def _write_config(self) -> None:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.db_dir.mkdir(parents=True, exist_ok=True)
        size_limit = self._size_limit_value(self.size_limit, self.paged_total_limit)
        tls_lines = ""
        if self.tls_material is not None:
            tls_dir = self._dir / "tls"
            tls_dir.mkdir(exist_ok=True)
            (tls_dir / "ca.pem").write_text(self.tls_material.ca_cert_pem)
            (tls_dir / "server.pem").write_text(self.tls_material.server_cert_pem)
            key_path = tls_dir / "server.key"
            key_path.write_text(self.tls_material.server_key_pem)
            key_path.chmod(0o600)
            tls_lines = (
                f"olcTLSCACertificateFile: {tls_dir / 'ca.pem'}\n"
                f"olcTLSCertificateFile: {tls_dir / 'server.pem'}\n"
                f"olcTLSCertificateKeyFile: {key_path}\n"
            )
        schema_includes = "".join(f"include: file://{SCHEMA_DIR / name}.ldif\n\n" for name in SCHEMAS)
        config = f"""\
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {self._dir / "slapd.pid"}
olcArgsFile: {self._dir / "slapd.args"}
olcLogLevel: none
{tls_lines}
dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: {MODULE_DIR}
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

{schema_includes}\
dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend
olcSizeLimit: {size_limit}

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcRootDN: cn=config
olcRootPW: {self.config_password}

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {self.base_dn}
olcDbDirectory: {self.db_dir}
olcDbMaxSize: 1073741824
olcRootDN: {self.root_dn}
olcRootPW: {self.root_password}
olcSizeLimit: {size_limit}
olcDbIndex: objectClass eq
olcDbIndex: entryUUID eq
olcDbIndex: ou,cn,uid,mail eq
olcDbIndex: member eq
olcAccess: to attrs=userPassword by self write by anonymous auth by * none
olcAccess: to * by users read by * none
"""
        config_path = self._dir / "config.ldif"
        config_path.write_text(config, encoding="utf-8")
        self._check_call([SLAPADD, "-n0", "-F", str(self.config_dir), "-l", str(config_path)])

    def _read_tls_material(self) -> TlsMaterial:
        tls_dir = self._dir / "tls"
        return TlsMaterial(
            ca_cert_pem=(tls_dir / "ca.pem").read_text(),
            server_cert_pem=(tls_dir / "server.pem").read_text(),
            server_key_pem=(tls_dir / "server.key").read_text(),
        )

    def _run(self) -> None:
        last_error = ""
        # A free port found now can be taken before slapd binds it; a few retries cover that race.
        for _attempt in range(5):
            port = self.port or free_port()
            tls_port = (self.tls_port or free_port()) if self.tls else None
            urls = f"ldap://127.0.0.1:{port}/" + (f" ldaps://127.0.0.1:{tls_port}/" if tls_port else "")
            log = self.log_path.open("ab")
            # -d 0 keeps slapd in the foreground, so we own its pid and it dies with our kill.
            self.process = subprocess.Popen(  # noqa: S603
                [SLAPD, "-d", self.debug, "-h", urls, "-F", str(self.config_dir)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log.close()
            self.port, self.tls_port = port, tls_port
            if self._wait_until_answering():
                return
            last_error = self._log_tail()
            self._terminate()
            if self.process is None and "Address already in use" not in last_error:
                break
        raise SlapdError(f"slapd did not start: {last_error}")

    def _wait_until_answering(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return True
            time.sleep(0.02)
        return False

    def _terminate(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGCONT)  # a paused slapd cannot handle SIGTERM
                self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-2000:]
        return ""

    @staticmethod
    def _check_call(args: list[str]) -> None:
        result = subprocess.run(args, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            raise SlapdError(f"{Path(args[0]).name} failed ({result.returncode}): {result.stderr.strip()}")


def main(argv: list[str] | None = None) -> int:
    from ldap_sync import demo_directory

    parser = argparse.ArgumentParser(prog="python -m ldap_sync.slapd", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=None, help="port for ldap:// (default: a free one)")
    parser.add_argument("--tls-port", type=int, default=None, help="also serve ldaps:// on this port")
    parser.add_argument("--data-dir", type=Path, default=None, help="kept between runs (default: temporary)")
    parser.add_argument("--seed", choices=["demo", "large", "none"], default="demo")
    parser.add_argument("--random-seed", type=int, default=42)
    parser.add_argument("--size-limit", type=int, default=SLAPD_DEFAULT_SIZE_LIMIT)
    parser.add_argument(
        "--ou-paths-file", type=Path, default=None, help="write the Google-style OU paths here"
    )
    args = parser.parse_args(argv)

    server = SlapdServer(
        port=args.port,
        tls_port=args.tls_port,
        tls=args.tls_port is not None,
        data_dir=args.data_dir.resolve() if args.data_dir else None,
        size_limit=args.size_limit,
    )
    directory = {
        "demo": lambda: demo_directory.demo(seed=args.random_seed),
        "large": lambda: demo_directory.large(seed=args.random_seed),
        "none": lambda: demo_directory.skeleton(),
    }[args.seed]()
    already_seeded = server.data_dir is not None and server.is_initialised
    server.start(seed_ldif=None if already_seeded else directory.to_ldif())
    if args.ou_paths_file:
        args.ou_paths_file.write_text("".join(f"{path}\n" for path in directory.ou_paths()), encoding="utf-8")

    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"URI:           {server.uri}")
    if server.tls:
        print(f"LDAPS URI:     {server.ldaps_uri}")
        print(f"CA file:       {server.data_dir}/tls/ca.pem")
    print(f"Base DN:       {server.base_dn}")
    print(f"Bind DN:       {directory.service_bind_dn}")
    print(f"Bind password: {directory.service_password}")
    print(f"Root DN:       {server.root_dn} / {server.root_password}")
    print(f"Users' password (demo logins): {directory.user_password}")
    for role, uid in directory.role_logins.items():
        print(f"  {role:<10} {uid}")
    print(f"slapd pid {server.process.pid if server.process else '?'}; Ctrl-C to stop", flush=True)
    try:
        while not stopping and server.process is not None and server.process.poll() is None:
            time.sleep(0.5)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
