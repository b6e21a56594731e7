"""Which callback URLs the relay may call: syntax, and the addresses they must not reach (SSRF).

A callback URL is ``http`` or ``https`` with a host. Unless the operator allows private targets, the
addresses a host resolves to must be public: not loopback, private, link-local, carrier-grade NAT, cloud
metadata, IPv6 unique-local, multicast, reserved or unspecified, nor any of those spelled as an IPv4-mapped,
IPv4-compatible, 6to4 or NAT64 IPv6 address. These functions are pure; resolving happens where connections
are made.
"""

import ipaddress
from urllib.parse import urlsplit

from subscriptions.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL_LENGTH = 2048

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")


def check_url(url: str) -> str:
    """``url`` if it can be a callback URL, else :class:`InvalidInput` saying why."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"url is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise InvalidInput(f"url {url!r} is not a valid URL: {error}") from error
    if parts.scheme not in ("http", "https"):
        raise InvalidInput(f"url must start with http:// or https://, got {url!r}")
    if not parts.hostname:
        raise InvalidInput(f"url {url!r} has no host")
    try:
        parts.hostname.encode("idna")  # what resolving does first: a host that fails here can never resolve
    except UnicodeError as error:
        raise InvalidInput(f"url host {parts.hostname!r} is not a valid host name: {error}") from None
    if port == 0:
        raise InvalidInput(f"url {url!r} has port 0")
    if any(c.isspace() for c in url):
        raise InvalidInput(f"url {url!r} contains whitespace")
    return url


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address spells (mapped, compatible, 6to4 or NAT64), if it spells one."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _SIX_TO_FOUR:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if int(address) >> 32 == 0 and int(address) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(address))
    return None


def forbidden_reason(address: IPAddress) -> str | None:
    """Why a callback may not reach ``address``, or ``None`` if it is a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            reason = forbidden_reason(inner)
            return f"{reason} (as {address})" if reason else None
    checks = (
        (address in _METADATA, "a cloud metadata address"),
        (address.is_loopback, "a loopback address"),
        (address.is_unspecified, "an unspecified address"),
        (address.is_link_local, "a link-local address"),
        (isinstance(address, ipaddress.IPv4Address) and address in _CGNAT, "a carrier-grade NAT address"),
        (
            isinstance(address, ipaddress.IPv6Address) and address in ipaddress.ip_network("fc00::/7"),
            "an IPv6 unique-local address",
        ),
        (address.is_multicast, "a multicast address"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "not a public address"),
    )
    for hit, reason in checks:
        if hit:
            return reason
    return None


def literal_address(url: str) -> IPAddress | None:
    """The IP address written as the URL's host, if the host is one (no resolving needed)."""
    host = urlsplit(url).hostname or ""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
