"""A private Active Directory domain controller (Samba 4) for tests and the demo.

Samba's AD DC insists on the well-known ports (389, 636, 88), so each ``SambaAdServer`` runs in a network
namespace of its own (``ip netns add``, loopback only: no network at all), and ``socat`` relays LDAP and LDAPS
from free ports of the host's 127.0.0.1 through unix sockets in the server's folder. Only the ``ldap`` service
runs (no SMB, DNS, KDC), in Samba's single-process model: 55-120 MB.

Provisioning (``samba-tool domain provision --use-rfc2307 --dns-backend=NONE``) and loading a directory of a
thousand users take tens of seconds (every password gets its Kerberos keys), so a provisioned and loaded domain
is kept as a snapshot in a cache folder, keyed by the directory's content and Samba's version; later starts
copy it back (about a second). Samba refuses simple binds without TLS, and the project keeps it that way: the
console talks to it over LDAPS, verified against a CA generated per start (the server's certificate names
127.0.0.1 and localhost).

Everything started is stopped by pid (samba, both relays) and the namespace is deleted, also at interpreter
exit. Needs root (network namespaces) and Debian's ``samba samba-dsdb-modules samba-vfs-modules
samba-ad-provision ldb-tools socat``.

Command line, for the demo (runs until killed; ``DEMO_DIRECTORY=active-directory make demo`` uses it)::

    python -m ldap_sync.samba_ad --tls-port 3636 [--port 3389] [--tls-dir var/demo/ad-tls]
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import fcntl
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ldap_sync.ad_directory import ADMIN_PASSWORD, NETBIOS_DOMAIN, REALM, AdDirectory
from ldap_sync.slapd import TlsMaterial, free_port

SAMBA = os.environ.get("MDM_SAMBA_BIN", "/usr/sbin/samba")
SAMBA_TOOL = os.environ.get("MDM_SAMBA_TOOL_BIN", "/usr/bin/samba-tool")
LDBADD = os.environ.get("MDM_LDBADD_BIN", "/usr/bin/ldbadd")
SOCAT = os.environ.get("MDM_SOCAT_BIN", "/usr/bin/socat")
IP = os.environ.get("MDM_IP_BIN", "/usr/sbin/ip")
# Bumped when the provisioning recipe changes, so old snapshots are not reused.
SNAPSHOT_RECIPE = "1"
START_TIMEOUT = 60.0


class SambaAdError(RuntimeError):
    """The private Samba AD DC could not be provisioned, seeded or started."""


def missing_requirements() -> str | None:
    """Why this machine cannot run the fixture, or None."""
    if os.geteuid() != 0:
        return "the Samba AD fixture needs root (it runs Samba in its own network namespace)"
    for binary in (SAMBA, SAMBA_TOOL, LDBADD, SOCAT, IP):
        if not Path(binary).exists():
            return f"{binary} is missing (apt-get install samba samba-dsdb-modules samba-vfs-modules " + (
                "samba-ad-provision ldb-tools socat)"
            )
    return None


def default_cache_dir() -> Path:
    base = os.environ.get("MDM_SAMBA_AD_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mdm", "samba-ad"
    )
    return Path(base)


def samba_version() -> str:
    result = subprocess.run([SAMBA, "--version"], capture_output=True, text=True, check=False)  # noqa: S603
    return result.stdout.strip()


@dataclass
class SambaAdServer:
    """One private Samba AD DC. Use as a context manager, or call ``start()`` and ``stop()``."""

    realm: str = REALM
    netbios_domain: str = NETBIOS_DOMAIN
    admin_password: str = ADMIN_PASSWORD
    port: int | None = None
    tls_port: int | None = None
    cache_dir: Path | None = None
    data_dir: Path | None = field(default=None, init=False)
    # The CA and server certificate; generated per start unless given (the demo keeps one in var/demo).
    tls_material: TlsMaterial | None = field(default=None, repr=False)
    netns: str | None = field(default=None, init=False)
    start_seconds: float = field(default=0.0, init=False)
    snapshot_restored: bool = field(default=False, init=False)
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list, init=False, repr=False)

    # -- addresses and credentials -----------------------------------------------------------------------------
    @property
    def base_dn(self) -> str:
        return ",".join(f"DC={part}" for part in self.realm.lower().split("."))

    @property
    def admin_dn(self) -> str:
        return f"CN=Administrator,CN=Users,{self.base_dn}"

    @property
    def uri(self) -> str:
        """Plain LDAP: Samba answers, but refuses simple binds on it (strong authentication required)."""
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_uri(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    @property
    def ca_cert_pem(self) -> str:
        if self.tls_material is None:
            raise SambaAdError("the server is not started")
        return self.tls_material.ca_cert_pem

    @property
    def _dir(self) -> Path:
        if self.data_dir is None:
            raise SambaAdError("the server has no data directory yet; call start()")
        return self.data_dir

    @property
    def smb_conf(self) -> Path:
        return self._dir / "etc" / "smb.conf"

    @property
    def log_path(self) -> Path:
        return self._dir / "samba.log"

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self, seed: AdDirectory | None = None) -> SambaAdServer:
        """Restore (or build, then cache) the provisioned domain loaded with ``seed``, then serve it."""
        problem = missing_requirements()
        if problem:
            raise SambaAdError(problem)
        started = time.monotonic()
        _delete_stale_leftovers()
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"mdm-samba-ad-{os.getpid()}-"))
        atexit.register(self.stop)
        try:
            self._restore_or_build(seed)
            if self.tls_material is None:
                self.tls_material = TlsMaterial.generate("MDM test AD CA")
            self._write_config()
            self._serve()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        """Kill samba and the relays by pid, delete the namespace and the server's folder."""
        for process in reversed(self._processes):
            _kill_group(process)
        self._processes.clear()
        if self.netns is not None:
            subprocess.run([IP, "netns", "delete", self.netns], capture_output=True, check=False)  # noqa: S603
            self.netns = None
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None
        atexit.unregister(self.stop)

    def __enter__(self) -> SambaAdServer:
        if not self._processes:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return bool(self._processes) and all(process.poll() is None for process in self._processes)

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self._processes]

    # -- data --------------------------------------------------------------------------------------------------
    def admin_connection(self) -> Any:
        """A python-ldap connection bound as the domain's Administrator over LDAPS (test set-up only)."""
        import ldap

        conn = ldap.initialize(self.ldaps_uri)
        conn.set_option(ldap.OPT_REFERRALS, 0)
        conn.set_option(ldap.OPT_NETWORK_TIMEOUT, 5)
        conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
        conn.set_option(ldap.OPT_X_TLS_CACERTFILE, str(self._dir / "tls" / "ca.pem"))
        conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
        conn.simple_bind_s(self.admin_dn, self.admin_password)
        return conn

    # -- internals ---------------------------------------------------------------------------------------------
    def _snapshot_key(self, seed: AdDirectory | None) -> str:
        import hashlib

        parts = [SNAPSHOT_RECIPE, samba_version(), self.realm, self.netbios_domain, self.admin_password]
        parts.append(seed.content_key() if seed is not None else "empty")
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]

    def _restore_or_build(self, seed: AdDirectory | None) -> None:
        cache = self.cache_dir or default_cache_dir()
        cache.mkdir(parents=True, exist_ok=True, mode=0o700)
        snapshot = cache / self._snapshot_key(seed)
        # One builder per key at a time (parallel test workers); the others wait, then copy its snapshot.
        with (cache / f"{snapshot.name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not snapshot.is_dir():
                building = Path(tempfile.mkdtemp(prefix=f"{snapshot.name}.", dir=cache))
                try:
                    self._provision(building, seed)
                    building.rename(snapshot)
                except BaseException:
                    shutil.rmtree(building, ignore_errors=True)
                    raise
            else:
                self.snapshot_restored = True
        shutil.copytree(snapshot, self._dir, dirs_exist_ok=True, symlinks=True)

    def _provision(self, target: Path, seed: AdDirectory | None) -> None:
        _check_call(
            [
                SAMBA_TOOL,
                "domain",
                "provision",
                f"--realm={self.realm}",
                f"--domain={self.netbios_domain}",
                "--server-role=dc",
                "--use-rfc2307",
                "--dns-backend=NONE",
                "--host-name=dc1",
                f"--adminpass={self.admin_password}",
                f"--targetdir={target}",
            ]
        )
        sam = target / "private" / "sam.ldb"
        env = {**os.environ, "SMB_CONF_PATH": str(target / "etc" / "smb.conf")}
        # A snapshot may be reused for months: no password of the fixture ever expires.
        _check_call(
            [SAMBA_TOOL, "domain", "passwordsettings", "set", "--max-pwd-age=0", "-H", str(sam)], env=env
        )
        if seed is not None:
            ldif = target / "seed.ldif"
            ldif.write_text(seed.to_ldif(), encoding="utf-8")
            # Offline, as the system: no LDAP round trips, and unicodePwd may be set directly.
            _check_call([LDBADD, "-H", str(sam), str(ldif)], env=env)
            ldif.unlink()

    def _write_config(self) -> None:
        root = self._dir
        tls_dir = root / "tls"
        tls_dir.mkdir(exist_ok=True)
        assert self.tls_material is not None
        (tls_dir / "ca.pem").write_text(self.tls_material.ca_cert_pem)
        (tls_dir / "cert.pem").write_text(self.tls_material.server_cert_pem)
        key = tls_dir / "key.pem"
        key.write_text(self.tls_material.server_key_pem)
        key.chmod(0o600)  # Samba refuses a key others can read
        (root / "cache").mkdir(exist_ok=True)
        self.smb_conf.write_text(
            f"""[global]
	netbios name = DC1
	realm = {self.realm}
	workgroup = {self.netbios_domain}
	server role = active directory domain controller
	server services = ldap
	interfaces = lo
	bind interfaces only = yes
	private dir = {root}/private
	lock directory = {root}
	pid directory = {root}
	state directory = {root}/state
	cache directory = {root}/cache
	binddns dir = {root}/bind-dns
	log file = {root}/log.%m
	logging = file
	log level = 0
	tls enabled = yes
	tls keyfile = {key}
	tls certfile = {tls_dir}/cert.pem
	tls cafile = {tls_dir}/ca.pem
	idmap_ldb:use rfc2307 = yes
""",
            encoding="utf-8",
        )

    def _serve(self) -> None:
        self.netns = f"mdm-ad-{os.getpid()}-{secrets.token_hex(3)}"
        _check_call([IP, "netns", "add", self.netns])
        _check_call([IP, "netns", "exec", self.netns, IP, "link", "set", "lo", "up"])
        log = self.log_path.open("ab")
        try:
            self._spawn(
                [
                    IP,
                    "netns",
                    "exec",
                    self.netns,
                    SAMBA,
                    "--foreground",
                    "--no-process-group",
                    "--debug-stdout",
                    "-M",
                    "single",
                    "-s",
                    str(self.smb_conf),
                ],
                log,
            )
            for name, inner_port in (("ldap", 389), ("ldaps", 636)):
                socket_path = self._dir / f"{name}.sock"
                self._spawn(
                    [
                        IP,
                        "netns",
                        "exec",
                        self.netns,
                        SOCAT,
                        f"UNIX-LISTEN:{socket_path},fork,unlink-early,mode=600",
                        f"TCP:127.0.0.1:{inner_port}",
                    ],
                    log,
                )
            self.port, self.tls_port = (
                self._relay("ldap.sock", self.port, log),
                self._relay("ldaps.sock", self.tls_port, log),
            )
        finally:
            log.close()
        self._wait_until_answering()

    def _relay(self, socket_name: str, wanted_port: int | None, log: Any) -> int:
        for _attempt in range(5):
            port = wanted_port or free_port()
            process = self._spawn(
                [
                    SOCAT,
                    f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr",
                    f"UNIX-CONNECT:{self._dir / socket_name}",
                ],
                log,
            )
            time.sleep(0.05)
            if process.poll() is None:
                return port
            self._processes.remove(process)
        raise SambaAdError(f"no free port for the {socket_name} relay")

    def _spawn(self, args: list[str], log: Any) -> subprocess.Popen[bytes]:
        # Own session: the whole tree (socat's forked children included) is killed through its group.
        process = subprocess.Popen(  # noqa: S603
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self._processes.append(process)
        return process

    def _wait_until_answering(self) -> None:
        import ldap

        deadline = time.monotonic() + START_TIMEOUT
        last_error = ""
        while time.monotonic() < deadline:
            if any(process.poll() is not None for process in self._processes):
                break
            try:
                self.admin_connection().unbind_s()
                return
            except ldap.LDAPError as exc:
                last_error = str(exc)
                time.sleep(0.1)
        raise SambaAdError(f"Samba AD did not start: {last_error} {self._log_tail()}")

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-2000:]
        return ""


def tls_material_in(directory: Path) -> TlsMaterial:
    """The CA and server certificate kept in ``directory`` (ca.pem, cert.pem, key.pem), created if missing."""
    files = [directory / name for name in ("ca.pem", "cert.pem", "key.pem")]
    if not all(path.exists() for path in files):
        material = TlsMaterial.generate("MDM demo AD CA")
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        for path, pem in zip(
            files, (material.ca_cert_pem, material.server_cert_pem, material.server_key_pem), strict=True
        ):
            path.write_text(pem, encoding="ascii")
        files[2].chmod(0o600)
    ca, cert, key = (path.read_text(encoding="ascii") for path in files)
    return TlsMaterial(ca_cert_pem=ca, server_cert_pem=cert, server_key_pem=key)


def _pid_is_gone(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError):
        return False
    return False


def _delete_stale_leftovers() -> None:
    """What a fixture killed by SIGKILL leaves (its samba and relays died with it): its empty namespace and its
    folder, both named after its pid, deleted once that pid is gone."""
    listing = subprocess.run([IP, "netns", "list"], capture_output=True, text=True, check=False)  # noqa: S603
    for line in listing.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        parts = name.split("-")
        if len(parts) == 4 and parts[:2] == ["mdm", "ad"] and parts[2].isdigit() and _pid_is_gone(parts[2]):
            subprocess.run([IP, "netns", "delete", name], capture_output=True, check=False)  # noqa: S603
    for folder in Path(tempfile.gettempdir()).glob("mdm-samba-ad-*-*"):
        pid = folder.name.split("-")[3]
        if pid.isdigit() and _pid_is_gone(pid):
            shutil.rmtree(folder, ignore_errors=True)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the process that started it dies, even by SIGKILL (a test run
    killed on timeout must not leave a domain controller running). ``ip netns exec`` keeps it across exec."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
    # socat's forked children of a relay that exited on its own would otherwise linger.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _check_call(args: list[str], env: dict[str, str] | None = None) -> None:
    result = subprocess.run(args, capture_output=True, text=True, check=False, env=env)  # noqa: S603
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()[-2000:]
        raise SambaAdError(
            f"{Path(args[0]).name} {' '.join(args[1:3])} failed ({result.returncode}): {output}"
        )


def main(argv: list[str] | None = None) -> int:
    from ldap_sync import ad_directory

    parser = argparse.ArgumentParser(
        prog="python -m ldap_sync.samba_ad", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--port", type=int, default=None, help="port for ldap:// (default: a free one)")
    parser.add_argument("--tls-port", type=int, default=None, help="port for ldaps:// (default: a free one)")
    parser.add_argument("--ca-file", type=Path, default=None, help="write the CA certificate (PEM) here")
    parser.add_argument(
        "--tls-dir", type=Path, default=None, help="keep the CA and certificate here (reused between runs)"
    )
    parser.add_argument(
        "--write-tls-only", action="store_true", help="create --tls-dir's files and exit (no server)"
    )
    parser.add_argument(
        "--ou-paths-file", type=Path, default=None, help="write the Google-style OU paths here"
    )
    parser.add_argument("--random-seed", type=int, default=16)
    args = parser.parse_args(argv)

    tls = tls_material_in(args.tls_dir) if args.tls_dir else None
    if args.write_tls_only:
        return 0
    directory = ad_directory.demo(seed=args.random_seed)
    server = SambaAdServer(port=args.port, tls_port=args.tls_port, tls_material=tls)
    server.start(seed=directory)
    if args.ca_file:
        args.ca_file.write_text(server.ca_cert_pem, encoding="utf-8")
    if args.ou_paths_file:
        args.ou_paths_file.write_text("".join(f"{path}\n" for path in directory.ou_paths()), encoding="utf-8")

    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"LDAPS URI:     {server.ldaps_uri}")
    print(f"LDAP URI:      {server.uri} (simple binds refused without TLS)")
    ca_file = args.ca_file or (args.tls_dir / "ca.pem" if args.tls_dir else server._dir / "tls" / "ca.pem")
    print(f"CA file:       {ca_file}")
    print(f"Base DN:       {server.base_dn}")
    print(f"Bind DN:       {directory.service_bind_dn} (or {directory.service_upn})")
    print(f"Bind password: {directory.service_password}")
    print(f"Administrator: {server.admin_dn} / {server.admin_password}")
    print(f"Users' password (demo logins): {directory.user_password}")
    for role, sam in directory.role_logins.items():
        print(f"  {role:<10} {sam} / {directory.user(sam).upn} / {directory.netbios_domain}\\{sam}")
    print(f"Started in {server.start_seconds:.1f} s; pids {server.pids}; Ctrl-C to stop", flush=True)
    try:
        while not stopping and server.running:
            time.sleep(0.5)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
