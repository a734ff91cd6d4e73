"""The one LDAP client of the console: every call to a tenant's directory goes through ``LdapClient``.

It wraps python-ldap with a connect timeout and an operation timeout, StartTLS or ``ldaps://`` verified against
the tenant's CA certificate, no referral chasing, and paged searches (RFC 2696) so that a directory larger than
the server's size limit (slapd: 500 by default) is listed whole. Failures become a handful of typed errors whose
``message`` an administrator understands (French msgids, marked with a local ``_`` that makemessages picks up,
so this module imports without Django configured; the view layer translates them with ``gettext``).

Error taxonomy and what callers do:

=============================  ======================  ===========================================================
error (``code``)               raised when              caller
=============================  ======================  ===========================================================
LdapUnreachable                no TCP connection:       stop the run, no change; the hourly schedule retries
(``unreachable``)              DNS, refused, timeout
LdapTlsError (``tls``)         TLS handshake or cert    stop; the admin fixes the CA certificate, URI or StartTLS
                               verification fails,
                               server requires TLS
LdapInvalidCredentials         the bind is refused      stop; the admin updates the bind DN/password (hourly runs
(``invalid_credentials``)                               keep failing loudly until then)
LdapInvalidDn (``invalid_dn``) a DN is malformed        stop; the admin fixes the form
LdapBaseDnNotFound             the base DN does not     stop; the admin fixes the base DN
(``base_dn_not_found``)        exist
LdapFilterError                the filter does not      stop; the admin fixes the filter
(``filter_syntax``)            parse
LdapSizeLimitExceeded          a size or admin limit    stop, nothing deleted: the listing is incomplete; the admin
(``size_limit``)               cuts the listing short   raises the limit for the bind account (``size.prtotal``)
LdapReferral (``referral``)    the base DN lives on     stop; the admin points the base DN at the server that holds
                               another server           the entries (referrals are never chased)
LdapInsufficientAccess         the bind account may     stop; the admin grants read access
(``insufficient_access``)      not read
LdapTimeout (``timeout``)      no answer within the     stop the run, no change; retry on the next schedule
                               operation timeout
LdapServerDown                 the connection drops     stop the run, no change; retry on the next schedule
(``server_down``)              after it was opened
LdapRefused (``refused``)      the outbound policy      stop; the admin fixes the address, or the operator allows
                               (mdm/outbound.py)        the network/port; a value with control characters is
                               refuses the destination  refused before any byte is sent
                               or a value
LdapUnexpectedError            anything else            stop; the detail goes to the run log for support
(``unexpected``)
=============================  ======================  ===========================================================

Continuation references met inside a listing (a subtree delegated to another server) are not errors: the search
records them in ``PagedSearch.references`` and the sync treats the listing as incomplete (no removals).

Bind passwords never appear in messages, details or logs.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import ipaddress
import os
import re
import shutil
import socket
import stat
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import ldap
import ldap.dn
import ldap.filter
from cryptography import x509
from ldap.controls import RequestControl, SimplePagedResultsControl
from ldap.ldapobject import SimpleLDAPObject

from mdm import outbound


def _(message: str) -> str:
    """Marks a msgid for makemessages (xgettext knows ``_``) without needing Django settings at import time."""
    return message


DEFAULT_NETWORK_TIMEOUT = 5.0
DEFAULT_OPERATION_TIMEOUT = 30.0
# Below slapd's default size limit (500): servers cap a page at their size limit anyway.
DEFAULT_PAGE_SIZE = 250
ENTRY_UUID = "entryUUID"
OBJECT_GUID = "objectGUID"
# LDAP_SERVER_DOMAIN_SCOPE_OID: AD answers for its own naming context only, with no continuation references to
# CN=Configuration or other domains (a listing from the domain root would otherwise never be "complete").
DOMAIN_SCOPE_OID = "1.2.840.113556.1.4.1339"
# Binary attributes read as text: GUIDs in their canonical form (AD's mixed-endian layout, as AD tools show it).
BINARY_GUID_ATTRIBUTES = frozenset({"objectguid"})


# -- errors --------------------------------------------------------------------------------------------------------
class LdapError(Exception):
    """Base of the taxonomy. ``message``: for admins (translatable msgid); ``detail``: server's words, for logs."""

    code: ClassVar[str] = "unexpected"
    default_message: ClassVar[str] = _("Erreur LDAP inattendue.")
    retryable: ClassVar[bool] = False

    def __init__(self, message: str | None = None, *, detail: str = "") -> None:
        self.message = message or self.default_message
        self.detail = detail
        super().__init__(f"{self.message} ({detail})" if detail else self.message)


class LdapUnreachable(LdapError):
    code = "unreachable"
    default_message = _("Le serveur LDAP est injoignable : vérifiez l'adresse, le port et le pare-feu.")
    retryable = True


class LdapTlsError(LdapError):
    code = "tls"
    default_message = _(
        "La connexion chiffrée (TLS) a échoué : le certificat du serveur n'est pas reconnu par le certificat "
        "d'autorité fourni, ou le serveur ne parle pas TLS sur ce port."
    )


class LdapInvalidCredentials(LdapError):
    code = "invalid_credentials"
    default_message = _("Identifiants refusés : le DN de liaison ou le mot de passe est incorrect.")


class LdapInvalidDn(LdapError):
    code = "invalid_dn"
    default_message = _("Le DN n'est pas valide (exemple attendu : ou=Paris,dc=example,dc=com).")


class LdapBaseDnNotFound(LdapError):
    code = "base_dn_not_found"
    default_message = _("Le DN de base est introuvable dans l'annuaire.")


class LdapFilterError(LdapError):
    code = "filter_syntax"
    default_message = _("Le filtre LDAP est mal formé (exemple attendu : (objectClass=organizationalUnit)).")


class LdapSizeLimitExceeded(LdapError):
    code = "size_limit"
    default_message = _(
        "Le serveur a interrompu la liste (limite de taille atteinte) : rien n'a été supprimé. Autorisez "
        "le compte de liaison à lire plus d'entrées en recherche paginée (size.prtotal)."
    )


class LdapReferral(LdapError):
    code = "referral"
    default_message = _(
        "Le DN de base est délégué à un autre serveur (referral) : indiquez le serveur qui détient ces entrées."
    )


class LdapInsufficientAccess(LdapError):
    code = "insufficient_access"
    default_message = _("Le compte de liaison n'a pas le droit de lire ces entrées.")


class LdapTimeout(LdapError):
    code = "timeout"
    default_message = _("Le serveur LDAP n'a pas répondu à temps.")
    retryable = True


class LdapServerDown(LdapError):
    code = "server_down"
    default_message = _("La connexion au serveur LDAP a été perdue en cours d'opération.")
    retryable = True


class LdapPagingUnsupported(LdapError):
    code = "paging_unsupported"
    default_message = _("Le serveur LDAP ne prend pas en charge la recherche paginée (RFC 2696).")


class LdapRefused(LdapError):
    """The outbound policy (mdm/outbound.py) refused the destination or a value: nothing was sent."""

    code = "refused"
    default_message = outbound.OutboundRefused.default_message

    @classmethod
    def from_refusal(cls, refusal: outbound.OutboundRefused) -> LdapRefused:
        return cls(refusal.message, detail=f"{refusal.code}: {refusal.detail}")


class LdapUnexpectedError(LdapError):
    pass


ERROR_CLASSES: dict[str, type[LdapError]] = {
    cls.code: cls
    for cls in (
        LdapUnreachable,
        LdapTlsError,
        LdapInvalidCredentials,
        LdapInvalidDn,
        LdapBaseDnNotFound,
        LdapFilterError,
        LdapSizeLimitExceeded,
        LdapReferral,
        LdapInsufficientAccess,
        LdapTimeout,
        LdapServerDown,
        LdapPagingUnsupported,
        LdapRefused,
        LdapUnexpectedError,
    )
}


# AD puts the reason of a refused bind in the diagnostic message: "... AcceptSecurityContext error, data 52e, ...".
AD_BIND_REASON = re.compile(r"\bdata ([0-9a-f]{3,8})\b", re.IGNORECASE)
AD_BIND_MESSAGES = {
    "525": _("Compte introuvable dans l'annuaire."),
    "52e": _("Identifiant ou mot de passe incorrect."),
    "530": _("Connexion refusée à cette heure (restriction horaire du compte)."),
    "531": _("Connexion refusée depuis ce poste (restriction de postes du compte)."),
    "532": _("Le mot de passe a expiré : changez-le avant de vous connecter."),
    "533": _("Le compte est désactivé dans l'annuaire."),
    "701": _("Le compte a expiré dans l'annuaire."),
    "773": _("Le mot de passe doit être changé avant la première connexion."),
    "775": _("Le compte est verrouillé (trop d'essais) : réessayez plus tard ou contactez l'administrateur."),
}


def ad_bind_reason(exc: ldap.LDAPError) -> str | None:
    """The AD sub-code of a refused bind (``52e``, ``775``...), or None for another server."""
    info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    match = AD_BIND_REASON.search(str(info.get("info") or ""))
    code = match.group(1).lower() if match else None
    return code if code in AD_BIND_MESSAGES else None


def _server_words(exc: ldap.LDAPError) -> str:
    info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    parts = [str(info.get(key)) for key in ("desc", "info") if info.get(key)]
    if info.get("matched"):
        parts.append(f"matched={info['matched']}")
    return "; ".join(parts) or exc.__class__.__name__


# -- input helpers -----------------------------------------------------------------------------------------------
def escape_filter_value(value: str) -> str:
    """Escape a value taken from user input before it goes into a filter (no LDAP injection)."""
    return ldap.filter.escape_filter_chars(value, escape_mode=0)


def filter_with_equality(base_filter: str, attribute: str, value: str) -> str:
    """``(&<base_filter>(<attribute>=<escaped value>))``: the only way user input enters a filter."""
    return f"(&{base_filter}({attribute}={escape_filter_value(value)}))"


def escape_dn_value(value: str) -> str:
    return ldap.dn.escape_dn_chars(value)


def is_valid_dn(dn: str) -> bool:
    return bool(dn) and ldap.dn.is_dn(dn)


# user@realm, and DOMAIN\user (NetBIOS domain names: no spaces nor the characters AD forbids in them).
UPN = re.compile(r"^[^@\s\\]+@[A-Za-z0-9.-]+$")
DOWN_LEVEL_NAME = re.compile(r"^[^\\/:*?\"<>|\s]{1,15}\\[^\\\s@][^\\]*$")


def is_valid_bind_name(name: str) -> bool:
    """A bind name AD or OpenLDAP accepts: a DN, a UPN (user@example.com) or a down-level DOMAIN\\user."""
    return bool(name) and bool(UPN.match(name) or DOWN_LEVEL_NAME.match(name) or is_valid_dn(name))


def dn_rdns(dn: str) -> list[tuple[str, str]]:
    """``ou=Ventes,ou=Paris,dc=example,dc=com`` -> ``[("ou", "Ventes"), ("ou", "Paris"), ...]`` (unescaped).

    Multi-valued RDNs keep their first value; type names are lower-cased.
    """
    return [(rdn[0][0].lower(), rdn[0][1]) for rdn in ldap.dn.str2dn(dn)]


def normalize_dn(dn: str) -> str:
    """A canonical DN for comparisons: attribute types lower-cased, values unescaped/re-escaped, no spaces."""
    return ldap.dn.dn2str(
        [[(attr.lower(), value, flags) for attr, value, flags in rdn] for rdn in ldap.dn.str2dn(dn)]
    )


def dn_is_under(dn: str, ancestor: str) -> bool:
    """True when ``dn`` is ``ancestor`` or inside its subtree (case-insensitive on the RDN values)."""
    dn_parts = [(a, v.casefold()) for a, v in dn_rdns(dn)]
    anc_parts = [(a, v.casefold()) for a, v in dn_rdns(ancestor)]
    return len(dn_parts) >= len(anc_parts) and dn_parts[len(dn_parts) - len(anc_parts) :] == anc_parts


def looks_like_filter(text: str) -> bool:
    """A cheap form-level check; the server-side check is ``LdapClient.check_filter``."""
    text = text.strip()
    if not (text.startswith("(") and text.endswith(")")):
        return False
    depth = 0
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$")


def validate_uri(uri: str) -> str | None:
    """Return an admin message if ``uri`` is not a single ``ldap://host[:port]`` or ``ldaps://host[:port]``.

    Strict on purpose: libldap also reads lists of URLs (space or comma separated), user info, a DN, a filter
    and extensions from a URI, none of which the console means to pass on.
    """
    text = uri.strip()
    shape = _("L'adresse doit être de la forme ldap://hôte:389 ou ldaps://hôte:636.")
    if not text or any(char.isspace() or ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F for char in text):
        return shape
    try:
        parts = urlsplit(text)
        hostname = parts.hostname
    except ValueError:  # e.g. "ldap://[::1": an unterminated IPv6 literal
        return shape
    if parts.scheme.lower() not in ("ldap", "ldaps") or not hostname:
        return shape
    if "@" in parts.netloc:
        return _(
            "L'adresse ne doit pas contenir d'identifiant ni de mot de passe (utilisez le DN de liaison)."
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment or "," in parts.netloc:
        return shape
    if parts.netloc.startswith("["):
        try:
            ipaddress.IPv6Address(hostname.split("%", 1)[0])
        except ValueError:
            return shape
    elif not _HOSTNAME.match(hostname):
        return shape
    try:
        port = parts.port
    except ValueError:
        return _("Le port de l'adresse n'est pas valide.")
    if (port is not None and not 1 <= port <= 65535) or parts.netloc.endswith(":"):
        return _("Le port de l'adresse n'est pas valide.")
    return None


_ca_directory: Path | None = None


def _private_ca_directory() -> Path:
    """A directory only this process's user can read or write, made once per process (random name, 0700).

    Never a predictable path in the shared temp folder: another local account could create it first, or plant
    a certificate under the expected name and have the console trust it.
    """
    global _ca_directory
    directory = _ca_directory
    if directory is not None:
        info = os.lstat(directory) if directory.exists() else None
        if (
            info is None
            or not stat.S_ISDIR(info.st_mode)
            or info.st_uid != os.getuid()
            or info.st_mode & 0o077
        ):
            directory = None
    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="mdm-ldap-ca-"))
        atexit.register(shutil.rmtree, directory, True)
        _ca_directory = directory
    return directory


def ca_cert_file(pem: str) -> str:
    """A file holding exactly ``pem``, for libldap's OPT_X_TLS_CACERTFILE.

    Debian's libldap is built with GnuTLS, which has no OPT_X_TLS_CACERTDATA: the certificate must be a file.
    It lives in a private directory (``_private_ca_directory``) under the hash of its content, and its content
    is compared with ``pem`` before every use (rewritten if it differs), so only the stored PEM is ever trusted.
    """
    try:
        x509.load_pem_x509_certificates(pem.encode())
    except ValueError as exc:
        raise LdapTlsError(
            _("Le certificat d'autorité enregistré n'est pas un certificat PEM valide : corrigez-le."),
            detail=str(exc),
        ) from exc
    directory = _private_ca_directory()
    path = directory / f"{hashlib.sha256(pem.encode()).hexdigest()}.pem"
    try:
        if path.read_bytes() == pem.encode():
            return str(path)
    except OSError:
        pass
    fd, partial = tempfile.mkstemp(dir=directory, suffix=".tmp")  # 0600, a fresh name
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem.encode())
    os.replace(partial, path)  # atomic: a concurrent reader never sees half a certificate
    return str(path)


# -- results -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LdapEntry:
    dn: str
    attributes: dict[str, list[str]]

    def first(self, attribute: str) -> str | None:
        """First value of ``attribute`` (attribute names are case-insensitive in LDAP)."""
        values = self.get(attribute)
        return values[0] if values else None

    def get(self, attribute: str) -> list[str]:
        wanted = attribute.lower()
        for name, values in self.attributes.items():
            if name.lower() == wanted:
                return values
        return []


@dataclass(frozen=True)
class ConnectionSettings:
    uri: str
    bind_dn: str = ""
    bind_password: str = field(default="", repr=False)
    start_tls: bool = False
    ca_cert_pem: str = field(default="", repr=False)
    network_timeout: float = DEFAULT_NETWORK_TIMEOUT
    operation_timeout: float = DEFAULT_OPERATION_TIMEOUT
    page_size: int = DEFAULT_PAGE_SIZE
    domain_scope: bool = False

    @property
    def uses_tls(self) -> bool:
        return self.start_tls or self.uri.lower().startswith("ldaps://")


class PagedSearch:
    """An iterable over every entry of a paged search; after iteration, ``complete`` and ``references`` tell
    whether the server reported the end of the listing and which subtrees it delegated elsewhere."""

    def __init__(
        self,
        client: LdapClient,
        base_dn: str,
        filterstr: str,
        attributes: list[str],
        scope: int,
        page_size: int,
    ) -> None:
        self._client = client
        self.page_size = page_size
        self.base_dn = base_dn
        self.filterstr = filterstr
        self.attributes = attributes
        self.scope = scope
        self.references: list[str] = []
        self.pages = 0
        self.complete = False

    def __iter__(self) -> Iterator[LdapEntry]:
        client = self._client
        page_control = SimplePagedResultsControl(True, size=self.page_size, cookie="")
        controls: list[RequestControl] = [page_control]
        if client.settings.domain_scope:
            controls.append(RequestControl(DOMAIN_SCOPE_OID, False))
        while True:
            with client.translate_errors():
                msgid = client.connection.search_ext(
                    self.base_dn,
                    self.scope,
                    self.filterstr,
                    attrlist=self.attributes,
                    serverctrls=controls,
                )
                _rtype, rdata, _msgid, response_controls = client.connection.result3(
                    msgid, all=1, timeout=client.settings.operation_timeout
                )
            self.pages += 1
            for dn, attrs in rdata:
                if dn is None:  # a continuation reference: a subtree held by another server
                    self.references.extend(
                        ref.decode() if isinstance(ref, bytes) else str(ref) for ref in attrs or []
                    )
                    continue
                yield LdapEntry(dn, _decode_attributes(attrs))
            cookie = next(
                (
                    control.cookie
                    for control in response_controls or []
                    if control.controlType == SimplePagedResultsControl.controlType
                ),
                b"",
            )
            if not cookie:
                self.complete = True
                return
            page_control.cookie = cookie


def _decode_attributes(attrs: dict[str, list[bytes]]) -> dict[str, list[str]]:
    return {name: [_decode_value(name, value) for value in values] for name, values in attrs.items()}


def _decode_value(name: str, value: bytes) -> str:
    if name.lower() in BINARY_GUID_ATTRIBUTES and len(value) == 16:
        return str(uuid.UUID(bytes_le=value))
    return value.decode("utf-8", errors="replace")


# -- the client --------------------------------------------------------------------------------------------------
class LdapClient:
    """A bound connection to one directory. Use as a context manager::

    with LdapClient(settings) as client:
        for entry in client.search(base_dn, "(objectClass=organizationalUnit)", ["ou", "entryUUID"]):
            ...
    """

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self._connection: Any = None
        # Until a connection is established, a dropped socket means "unreachable"; after, "server down".
        self._phase = "connect"
        self._socket: socket.socket | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def __enter__(self) -> LdapClient:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def connection(self) -> Any:
        if self._connection is None:
            raise LdapServerDown(detail="not connected")
        return self._connection

    def open(self) -> None:
        """Connect (TCP, then TLS), then bind. Each step fails with its own error."""
        settings = self.settings
        problem = validate_uri(settings.uri)
        if problem:
            raise LdapUnreachable(problem, detail=settings.uri)
        if settings.bind_dn and not is_valid_bind_name(settings.bind_dn):
            raise LdapInvalidDn(detail=settings.bind_dn)
        if settings.bind_dn and not settings.bind_password:
            # An empty password makes a simple bind "unauthenticated": some servers accept it as anonymous.
            raise LdapInvalidCredentials(_("Le mot de passe de liaison est vide."))
        refuse_control_characters(
            uri=settings.uri, bind_dn=settings.bind_dn, bind_password=settings.bind_password
        )
        self._check_tcp()
        try:
            self._connection = self._initialize()
            self._phase = "tls" if settings.uses_tls else "bind"
            if settings.start_tls:
                with self.translate_errors():
                    self._connection.start_tls_s()
                self._phase = "bind"
            with self.translate_errors():
                if settings.bind_dn:
                    self._connection.simple_bind_s(settings.bind_dn, settings.bind_password)
                else:
                    self._connection.whoami_s()  # anonymous: still prove the server answers (and TLS works)
            self._phase = "connected"
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._connection is not None:
            with contextlib.suppress(ldap.LDAPError):
                self._connection.unbind_s()
            self._connection = None
        self._phase = "connect"

    # -- operations --------------------------------------------------------------------------------------------
    def search(
        self,
        base_dn: str,
        filterstr: str,
        attributes: list[str],
        *,
        scope: int = ldap.SCOPE_SUBTREE,
    ) -> PagedSearch:
        """A paged search over the whole subtree; iterate the result, then look at ``complete``/``references``."""
        refuse_control_characters(base_dn=base_dn, filter=filterstr)
        if not is_valid_dn(base_dn):
            raise LdapInvalidDn(_("Le DN de base n'est pas valide."), detail=base_dn)
        return PagedSearch(self, base_dn, filterstr, attributes, scope, self.settings.page_size)

    def read_entry(self, dn: str, attributes: list[str] | None = None) -> LdapEntry | None:
        """The entry at ``dn``, or None when it does not exist."""
        refuse_control_characters(dn=dn)
        if not is_valid_dn(dn):
            raise LdapInvalidDn(detail=dn)
        try:
            with self.translate_errors():
                result = self.connection.search_ext_s(
                    dn,
                    ldap.SCOPE_BASE,
                    "(objectClass=*)",
                    attrlist=attributes or ["1.1"],
                    timeout=self.settings.operation_timeout,
                )
        except LdapBaseDnNotFound:
            return None
        for entry_dn, attrs in result:
            if entry_dn is not None:
                return LdapEntry(entry_dn, _decode_attributes(attrs))
        return None

    def check_base_dn(self, base_dn: str) -> LdapEntry:
        entry = self.read_entry(base_dn)
        if entry is None:
            raise LdapBaseDnNotFound(detail=base_dn)
        return entry

    def check_filter(
        self, base_dn: str, filterstr: str, attributes: list[str] | None = None
    ) -> LdapEntry | None:
        """Run ``filterstr`` for one page of one entry: proves its syntax; returns a sample entry if any."""
        refuse_control_characters(base_dn=base_dn, filter=filterstr)
        search = PagedSearch(self, base_dn, filterstr, attributes or ["1.1"], ldap.SCOPE_SUBTREE, page_size=1)
        return next(iter(search), None)

    # -- error translation -------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def translate_errors(self) -> Iterator[None]:
        try:
            yield
        except ldap.LDAPError as exc:
            raise self._translate(exc) from exc

    def _translate(self, exc: ldap.LDAPError) -> LdapError:
        if isinstance(exc, PeerRefused):
            return LdapRefused.from_refusal(exc.refusal)
        detail = _server_words(exc)
        if isinstance(exc, ldap.SERVER_DOWN | ldap.CONNECT_ERROR):
            if self._phase == "tls":
                return LdapTlsError(detail=detail)
            if self._phase == "connected":
                return LdapServerDown(detail=detail)
            return LdapUnreachable(detail=detail)
        if isinstance(exc, ldap.TIMEOUT | ldap.TIMELIMIT_EXCEEDED):
            return LdapTimeout(detail=detail)
        if isinstance(exc, ldap.INVALID_CREDENTIALS | ldap.INAPPROPRIATE_AUTH):
            reason = ad_bind_reason(exc)
            return LdapInvalidCredentials(AD_BIND_MESSAGES[reason] if reason else None, detail=detail)
        if isinstance(exc, ldap.UNWILLING_TO_PERFORM) and self._phase != "connected":
            return LdapInvalidCredentials(detail=detail)
        if isinstance(exc, ldap.CONFIDENTIALITY_REQUIRED | ldap.STRONG_AUTH_REQUIRED):
            return LdapTlsError(
                _("Le serveur exige une connexion chiffrée : activez StartTLS ou utilisez ldaps://."),
                detail=detail,
            )
        if isinstance(exc, ldap.INVALID_DN_SYNTAX):
            return LdapInvalidDn(detail=detail)
        if isinstance(exc, ldap.NO_SUCH_OBJECT):
            return LdapBaseDnNotFound(detail=detail)
        if isinstance(exc, ldap.FILTER_ERROR):
            return LdapFilterError(detail=detail)
        if isinstance(exc, ldap.SIZELIMIT_EXCEEDED | ldap.ADMINLIMIT_EXCEEDED):
            return LdapSizeLimitExceeded(detail=detail)
        if isinstance(exc, ldap.REFERRAL):
            return LdapReferral(detail=detail)
        if isinstance(exc, ldap.INSUFFICIENT_ACCESS):
            return LdapInsufficientAccess(detail=detail)
        if isinstance(exc, ldap.UNAVAILABLE_CRITICAL_EXTENSION):
            return LdapPagingUnsupported(detail=detail)
        return LdapUnexpectedError(detail=detail)

    # -- internals ---------------------------------------------------------------------------------------------
    def _check_tcp(self) -> None:
        """Open the TCP connection first, through the outbound guard, so that 'refused by policy' and
        'unreachable' are never confused with a TLS failure. ldap:// keeps this socket for libldap."""
        parts = urlsplit(self.settings.uri.strip())
        host = parts.hostname or ""
        port = parts.port or (636 if parts.scheme == "ldaps" else 389)
        try:
            sock = outbound.connect(host, port, timeout=self.settings.network_timeout)
        except outbound.HostUnknown as exc:
            raise LdapUnreachable(
                _("Le nom d'hôte du serveur LDAP est inconnu (DNS) : vérifiez l'adresse."), detail=exc.detail
            ) from exc
        except outbound.OutboundRefused as exc:
            raise LdapRefused.from_refusal(exc) from exc
        except TimeoutError as exc:
            raise LdapUnreachable(
                _(
                    "Le serveur LDAP ne répond pas (délai de connexion dépassé) : vérifiez l'adresse et le pare-feu."
                ),
                detail=str(exc),
            ) from exc
        except OSError as exc:
            raise LdapUnreachable(detail=f"{host}:{port}: {exc.strerror or exc}") from exc
        if parts.scheme == "ldaps":
            sock.close()  # libldap must open the TLS socket itself: see guarded_initialize
        else:
            self._socket = sock

    def _initialize(self) -> Any:
        settings = self.settings
        sock, self._socket = self._socket, None
        try:
            conn = guarded_initialize(settings.uri.strip(), connected=sock)
        except outbound.OutboundRefused as exc:
            raise LdapRefused.from_refusal(exc) from exc
        conn.set_option(ldap.OPT_PROTOCOL_VERSION, ldap.VERSION3)
        conn.set_option(ldap.OPT_REFERRALS, 0)
        conn.set_option(ldap.OPT_NETWORK_TIMEOUT, settings.network_timeout)
        conn.set_option(ldap.OPT_TIMEOUT, settings.operation_timeout)
        if settings.uses_tls:
            conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
            if settings.ca_cert_pem.strip():
                conn.set_option(ldap.OPT_X_TLS_CACERTFILE, ca_cert_file(settings.ca_cert_pem))
            conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)  # must come last: builds the TLS context from the above
        return conn


# -- the outbound guard, for libldap -------------------------------------------------------------------------------
def refuse_control_characters(**values: str | None) -> None:
    """No CR, LF, NUL or other control character reaches the wire (mdm/outbound.py explains why)."""
    try:
        outbound.refuse_control_characters(**values)
    except outbound.OutboundRefused as exc:
        raise LdapRefused.from_refusal(exc) from exc


class PeerRefused(ldap.SERVER_DOWN):
    """Raised by libldap-facing code (an ``ldap.LDAPError``, so django-auth-ldap handles it as a failed login)."""

    def __init__(self, refusal: outbound.OutboundRefused) -> None:
        self.refusal = refusal
        super().__init__({"desc": refusal.message, "info": f"{refusal.code}: {refusal.detail}"})


class _PeerCheckedLDAPObject(SimpleLDAPObject):
    """ldaps://: libldap resolves and connects itself (it cannot start TLS on a socket it is handed), so the
    address it reached is checked once the connection is up and before anything the tenant typed (a bind, a
    search) is sent. Until then only the TLS handshake and an anonymous "Who am I?" went out."""

    _peer_checked = False

    def _check_peer(self) -> None:
        if self._peer_checked:
            return
        try:
            self.whoami_s()
        except (ldap.SERVER_DOWN, ldap.CONNECT_ERROR, ldap.TIMEOUT):
            raise
        except ldap.LDAPError:
            pass  # connected: the server merely declines an anonymous "Who am I?"
        try:
            outbound.check_peer(self.fileno())
        except outbound.OutboundRefused as exc:
            self.unbind_ext()
            raise PeerRefused(exc) from exc
        self._peer_checked = True

    def simple_bind(self, *args: Any, **kwargs: Any) -> Any:
        self._check_peer()
        return super().simple_bind(*args, **kwargs)

    def search_ext(self, *args: Any, **kwargs: Any) -> Any:
        self._check_peer()
        return super().search_ext(*args, **kwargs)


def guarded_initialize(uri: str, *, connected: socket.socket | None = None, timeout: float = 5.0) -> Any:
    """``ldap.initialize`` through the outbound guard: the only way the console opens an LDAP connection.

    ldap:// (with or without StartTLS): libldap gets a socket the guard connected to a checked address
    (``connected``, or one opened here), so there is no second DNS resolution. ldaps://: the address is
    checked before and after libldap connects (``_PeerCheckedLDAPObject``). Raises ``OutboundRefused``.
    """
    parts = urlsplit(uri)
    port = parts.port or (636 if parts.scheme == "ldaps" else 389)
    if parts.scheme == "ldaps":
        if connected is not None:
            connected.close()
        outbound.check_destination(parts.hostname or "", port)
        return _PeerCheckedLDAPObject(uri, bytes_mode=False)
    sock = connected or outbound.connect(parts.hostname or "", port, timeout=timeout)
    sock.setblocking(True)
    # detach(): libldap owns the descriptor from now on (a closed Python socket would close it under libldap).
    return ldap.initialize(uri, bytes_mode=False, fileno=sock.detach())
