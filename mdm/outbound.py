"""Outbound connections are policy, not input: the one gate for every connection opened on a tenant's behalf.

A tenant admin types a server address (today: the LDAP URI). Without a gate that address reaches whatever the
web process reaches: the console's own PostgreSQL and Redis, cloud metadata services, the private network.
So every such connection goes through :func:`connect` (or :func:`check_destination` where a library must open
the socket itself), which:

1. resolves the host once and checks **every** resolved address (one refused address refuses the name: a
   round-robin record cannot smuggle an internal address in);
2. refuses internal addresses: loopback, private ranges (RFC 1918, fc00::/7), link-local (169.254/16 holds the
   cloud metadata services), shared (100.64/10), unspecified, multicast, reserved, documentation; an IPv6
   address that carries an IPv4 address (mapped ``::ffff:a.b.c.d``, compatible ``::a.b.c.d``, 6to4 2002::/16,
   NAT64 64:ff9b::/96 and 64:ff9b:1::/48, Teredo 2001::/32) is judged by that IPv4 address: a translator or
   tunnel on the way delivers it there;
3. always refuses the console's own services (the database, Redis as cache and broker): their exact
   address:port, and their port on any internal address, even inside a network the operator allowed;
4. allows only the LDAP ports (389, 636, 3268, 3269) plus the ones the operator adds;
5. connects to the address it checked (no second DNS resolution: a name that re-resolves elsewhere between
   the check and the connection, "DNS rebinding", is not followed).

Operator settings (environment, README "Configuration"):

=================================  ===========================================================================
``MDM_OUTBOUND_ALLOWED_NETWORKS``  CIDRs where internal addresses are allowed (e.g. the customers' LDAP servers
                                   reached over a VPN: ``10.20.0.0/16``); the demo and tests allow their own
                                   loopback slapd. The console's own services stay refused inside them.
``MDM_OUTBOUND_ALLOWED_PORTS``     ports or ranges (``3389,10389-10399``) allowed besides the LDAP ports
=================================  ===========================================================================

:func:`refuse_control_characters` keeps CR, LF, NUL and the other C0/C1 controls out of every value that goes on
the wire (DNs, user names, filters, passwords): a protocol that is not LDAP (Redis, SMTP, HTTP) reads lines, so
a CR/LF in a password is a command injection if the destination is not what the admin claimed.

Messages are French msgids marked with a local ``_`` (translated by the callers' views), like the LDAP client.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_ALLOWED_PORTS = frozenset({389, 636, 3268, 3269})
DEFAULT_SERVICE_PORTS = {"postgres": 5432, "postgresql": 5432, "redis": 6379, "rediss": 6379}


def _(message: str) -> str:
    """Marks a msgid for makemessages without translating (callers translate when they display)."""
    return message


class OutboundRefused(Exception):
    """The policy refuses this destination or value. ``message``: a msgid for admins; ``detail``: for logs."""

    code: ClassVar[str] = "refused"
    default_message: ClassVar[str] = _("Connexion refusée par la politique de sécurité de la console.")

    def __init__(self, message: str | None = None, *, detail: str = "") -> None:
        self.message = message or self.default_message
        self.detail = detail
        super().__init__(f"{self.message} ({detail})" if detail else self.message)


class AddressRefused(OutboundRefused):
    code = "address_refused"
    default_message = _(
        "Connexion refusée : cette adresse est interne (boucle locale, réseau privé, lien local ou "
        "multidiffusion). Seuls les serveurs des réseaux autorisés par l'exploitant de la console sont joignables."
    )


class ServiceRefused(OutboundRefused):
    code = "service_refused"
    default_message = _(
        "Connexion refusée : cette adresse est celle d'un service interne de la console (base de données, Redis)."
    )


class PortRefused(OutboundRefused):
    code = "port_refused"
    default_message = _(
        "Connexion refusée : seuls les ports LDAP (389, 636, 3268, 3269) sont autorisés, ainsi que ceux que "
        "l'exploitant de la console a ajoutés."
    )


class HostUnknown(OutboundRefused):
    code = "dns"
    default_message = _("Le nom d'hôte du serveur est inconnu (DNS) : vérifiez l'adresse.")


class ControlCharacters(OutboundRefused):
    code = "control_characters"
    default_message = _(
        "Un champ contient des caractères de contrôle (retour chariot, saut de ligne, caractère nul…) : "
        "rien n'a été envoyé au serveur."
    )


# -- values ------------------------------------------------------------------------------------------------------
def has_control_characters(value: str) -> bool:
    """C0 (including TAB, CR, LF, NUL), DEL and C1: never part of a DN, a user name, a filter or a password."""
    return any(ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F for char in value)


def refuse_control_characters(**values: str | None) -> None:
    """Raise :class:`ControlCharacters` naming the first field (keyword) whose value holds a control character."""
    for name, value in values.items():
        if value and has_control_characters(value):
            raise ControlCharacters(detail=name)


# -- policy ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Policy:
    allowed_networks: tuple[IPNetwork, ...]
    allowed_ports: frozenset[int]
    extra_port_ranges: tuple[tuple[int, int], ...]
    # (host, port) of the console's own services, resolved at each check (a service may move).
    services: tuple[tuple[str, int], ...]

    def port_allowed(self, port: int) -> bool:
        return port in self.allowed_ports or any(low <= port <= high for low, high in self.extra_port_ranges)

    def network_allowed(self, address: IPAddress) -> bool:
        return any(address.version == net.version and address in net for net in self.allowed_networks)


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"MDM_OUTBOUND_ALLOWED_NETWORKS: not a network (CIDR): {value!r}"
            ) from exc
    return tuple(networks)


def parse_ports(values: Iterable[str]) -> tuple[frozenset[int], tuple[tuple[int, int], ...]]:
    ports: set[int] = set()
    ranges: list[tuple[int, int]] = []
    for value in values:
        low_text, _sep, high_text = value.strip().partition("-")
        try:
            low, high = int(low_text), int(high_text or low_text)
        except ValueError as exc:
            raise ImproperlyConfigured(f"MDM_OUTBOUND_ALLOWED_PORTS: not a port or range: {value!r}") from exc
        if not 1 <= low <= high <= 65535:
            raise ImproperlyConfigured(f"MDM_OUTBOUND_ALLOWED_PORTS: out of 1-65535: {value!r}")
        if low == high:
            ports.add(low)
        else:
            ranges.append((low, high))
    return frozenset(ports), tuple(ranges)


def _service_endpoints() -> tuple[tuple[str, int], ...]:
    endpoints: list[tuple[str, int]] = []
    for database in settings.DATABASES.values():
        host = str(database.get("HOST") or "")
        if host and not host.startswith("/"):  # a Unix socket is not reachable over TCP
            endpoints.append((host, int(database.get("PORT") or 5432)))
    urls = [getattr(settings, "REDIS_URL", ""), getattr(settings, "CELERY_BROKER_URL", "")]
    for cache in settings.CACHES.values():
        location = cache.get("LOCATION") or ""
        urls.extend([location] if isinstance(location, str) else list(location))
    for url in urls:
        if not url or "://" not in str(url):
            continue
        parts = urlsplit(str(url))
        try:
            port = parts.port or DEFAULT_SERVICE_PORTS.get(parts.scheme)
        except ValueError:
            continue
        if parts.hostname and port:
            endpoints.append((parts.hostname, port))
    return tuple(dict.fromkeys(endpoints))


@lru_cache(maxsize=8)
def _policy(
    networks: tuple[str, ...], ports: tuple[str, ...], services: tuple[tuple[str, int], ...]
) -> Policy:
    allowed_ports, ranges = parse_ports(ports)
    return Policy(
        allowed_networks=parse_networks(networks),
        allowed_ports=DEFAULT_ALLOWED_PORTS | allowed_ports,
        extra_port_ranges=ranges,
        services=services,
    )


def policy() -> Policy:
    """The policy from the current settings (tests override them with ``settings`` and get a fresh policy)."""
    return _policy(
        tuple(getattr(settings, "MDM_OUTBOUND_ALLOWED_NETWORKS", ())),
        tuple(str(port) for port in getattr(settings, "MDM_OUTBOUND_ALLOWED_PORTS", ())),
        _service_endpoints(),
    )


# -- addresses ---------------------------------------------------------------------------------------------------
_LOW_32_BITS = 0xFFFFFFFF
_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # RFC 4291 (deprecated, still routed by some stacks)
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: only ever used as a /96
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: the operator's prefix, /48 to /96
# Where RFC 6052 puts the IPv4 address (bit spans) for the prefix lengths a 64:ff9b:1::/48 prefix can have; bits
# 64-71 (the "u" octet) are always skipped.
_RFC6052_SPANS = (((48, 16), (72, 16)), ((56, 8), (72, 24)), (((72, 32),)), ((96, 32),))


def _bits(value: int, spans: tuple[tuple[int, int], ...]) -> int:
    result = 0
    for start, length in spans:
        result = (result << length) | ((value >> (128 - start - length)) & ((1 << length) - 1))
    return result


def _plain(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address stands for where there is exactly one (mapped, compatible, 6to4, NAT64's
    well-known prefix); the address itself otherwise."""
    if not isinstance(address, ipaddress.IPv6Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    # :: and ::1 are the IPv6 unspecified and loopback addresses, not IPv4-compatible ones.
    if (address in _IPV4_COMPATIBLE and int(address) > 1) or address in _NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(address) & _LOW_32_BITS)
    return address


def _carried(address: IPAddress) -> tuple[ipaddress.IPv4Address, ...]:
    """IPv4 addresses an IPv6 address may deliver to, where which one depends on a prefix length we cannot know
    (NAT64 local-use) or where it holds two (Teredo: server and client)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return ()
    if address in _NAT64_LOCAL:
        # A translator never delivers to 0.0.0.0/8 ("this network"): such a candidate is the zero bits of another
        # layout, and keeping it would refuse every local-use NAT64 address.
        candidates = (ipaddress.IPv4Address(_bits(int(address), spans)) for spans in _RFC6052_SPANS)
        return tuple(candidate for candidate in candidates if candidate not in _THIS_NETWORK)
    if address.teredo is not None:
        return address.teredo
    return ()


def _internal(address: IPAddress) -> bool:
    return not address.is_global or address.is_multicast or address.is_unspecified


def is_internal(address: IPAddress) -> bool:
    address = _plain(address)
    return _internal(address) or any(_internal(carried) for carried in _carried(address))


def _resolve_quietly(host: str, port: int) -> set[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return set()
    return {_plain(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])) for info in infos}


def check_address(address: IPAddress, port: int, rules: Policy | None = None) -> None:
    """Raise :class:`OutboundRefused` unless ``address:port`` is an allowed destination."""
    rules = rules or policy()
    address = _plain(address)
    internal = is_internal(address)
    for host, service_port in rules.services:
        if port == service_port and (internal or address in _resolve_quietly(host, service_port)):
            raise ServiceRefused(detail=f"{address}:{port}")
    if not rules.port_allowed(port):
        raise PortRefused(detail=f"{address}:{port}")
    # A carried internal IPv4 address must be allowed as well as the IPv6 address that carries it.
    judged = [address, *(carried for carried in _carried(address) if _internal(carried))]
    if internal and not all(rules.network_allowed(each) for each in judged):
        raise AddressRefused(detail=f"{address}:{port}")


@dataclass(frozen=True)
class Destination:
    family: int
    sockaddr: tuple
    address: IPAddress


def check_destination(host: str, port: int) -> list[Destination]:
    """Resolve ``host`` once and check every address; return them in resolver order, or raise."""
    if not host or has_control_characters(host):
        raise HostUnknown(detail=repr(host))
    rules = policy()
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise HostUnknown(detail=f"{host}: {exc}") from exc
    destinations = []
    for family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        check_address(address, port, rules)
        destinations.append(Destination(family, tuple(sockaddr), address))
    if not destinations:
        raise HostUnknown(detail=host)
    return destinations


def connect(host: str, port: int, *, timeout: float) -> socket.socket:
    """A TCP socket connected to a checked address of ``host`` (blocking mode, no timeout set on it).

    Raises :class:`OutboundRefused` (nothing was sent, no connection was attempted), or ``OSError`` /
    ``TimeoutError`` like :func:`socket.create_connection` when every checked address failed.
    """
    last_error: OSError | None = None
    for destination in check_destination(host, port):
        sock = socket.socket(destination.family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(destination.sockaddr)
        except OSError as exc:
            sock.close()
            last_error = exc
            continue
        sock.settimeout(None)
        return sock
    assert last_error is not None  # check_destination returned at least one destination
    raise last_error


def check_peer(fd: int) -> None:
    """Check the address an already connected socket (opened by a library) really reached."""
    with socket.socket(fileno=fd) as sock:
        try:
            peer = sock.getpeername()
        finally:
            sock.detach()  # the library owns the descriptor
    check_address(ipaddress.ip_address(str(peer[0]).split("%", 1)[0]), int(peer[1]))
