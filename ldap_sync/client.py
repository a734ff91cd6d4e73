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
LdapUnexpectedError            anything else            stop; the detail goes to the run log for support
(``unexpected``)
=============================  ======================  ===========================================================

Continuation references met inside a listing (a subtree delegated to another server) are not errors: the search
records them in ``PagedSearch.references`` and the sync treats the listing as incomplete (no removals).

Bind passwords never appear in messages, details or logs.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
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
from ldap.controls import RequestControl, SimplePagedResultsControl


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


def validate_uri(uri: str) -> str | None:
    """Return an admin message if ``uri`` is not a single ``ldap://`` or ``ldaps://`` URL, else None."""
    parts = urlsplit(uri.strip())
    if parts.scheme not in ("ldap", "ldaps") or not parts.hostname or " " in uri.strip():
        return _("L'adresse doit être de la forme ldap://hôte:389 ou ldaps://hôte:636.")
    try:
        parts.port  # noqa: B018 - parsing raises on a bad port
    except ValueError:
        return _("Le port de l'adresse n'est pas valide.")
    return None


def ca_cert_file(pem: str) -> str:
    """A file holding ``pem``, for libldap's OPT_X_TLS_CACERTFILE.

    Debian's libldap is built with GnuTLS, which has no OPT_X_TLS_CACERTDATA. CA certificates are public, so
    one file per distinct certificate (named by its hash) in a per-user directory is enough.
    """
    directory = Path(tempfile.gettempdir()) / f"mdm-ldap-ca-{os.getuid()}"
    directory.mkdir(mode=0o700, exist_ok=True)
    path = directory / f"{hashlib.sha256(pem.encode()).hexdigest()}.pem"
    if not path.exists():
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        partial.write_text(pem, encoding="utf-8")
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
        if not is_valid_dn(base_dn):
            raise LdapInvalidDn(_("Le DN de base n'est pas valide."), detail=base_dn)
        return PagedSearch(self, base_dn, filterstr, attributes, scope, self.settings.page_size)

    def read_entry(self, dn: str, attributes: list[str] | None = None) -> LdapEntry | None:
        """The entry at ``dn``, or None when it does not exist."""
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
        """Open and close a TCP connection first, so 'unreachable' is never confused with a TLS failure."""
        parts = urlsplit(self.settings.uri.strip())
        host = parts.hostname or ""
        port = parts.port or (636 if parts.scheme == "ldaps" else 389)
        try:
            with socket.create_connection((host, port), timeout=self.settings.network_timeout):
                pass
        except socket.gaierror as exc:
            raise LdapUnreachable(
                _("Le nom d'hôte du serveur LDAP est inconnu (DNS) : vérifiez l'adresse."), detail=str(exc)
            ) from exc
        except TimeoutError as exc:
            raise LdapUnreachable(
                _(
                    "Le serveur LDAP ne répond pas (délai de connexion dépassé) : vérifiez l'adresse et le pare-feu."
                ),
                detail=str(exc),
            ) from exc
        except OSError as exc:
            raise LdapUnreachable(detail=f"{host}:{port}: {exc.strerror or exc}") from exc

    def _initialize(self) -> Any:
        settings = self.settings
        conn = ldap.initialize(settings.uri.strip(), bytes_mode=False)
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
