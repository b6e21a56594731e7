"""Which callback URLs the relay may call: syntax, and the addresses they must not reach (SSRF).

A callback URL is ``http`` or ``https`` with a host. The host is checked as the delivery client will read it:
aiohttp parses a URL with yarl, which folds Unicode digits and full stops (U+1FBF1 U+1FBF2 U+1FBF7 or
fullwidth one two seven, then ``.0.0.1``) into ``127.0.0.1``, and hands anything made of digits and dots to
the socket layer as an IP literal, where ``127.1``, ``0x7f.0.0.1`` or ``2130706433`` are still loopback. So a
host must be written plainly: ASCII letters, digits, ``-`` and ``_`` in dot-separated labels (an international
name in its ``xn--`` form), an IPv4 address as four decimal numbers, or an IPv6 address in brackets; no
percent-escapes, no zone id, no trailing dot; and every URL parser must find the same host and port in it. The
URL is then stored as given, which is exactly what was checked.

Unless the operator allows private targets, the addresses a host resolves to must be public: not loopback,
private, link-local, carrier-grade NAT, cloud metadata, IPv6 unique-local, multicast, reserved or
unspecified, nor any of those spelled as an IPv4-mapped, IPv4-compatible, 6to4 or NAT64 IPv6 address. These
functions are pure; resolving happens where connections are made.
"""

import ipaddress
import re
from urllib.parse import urlsplit

from yarl import URL

from subscriptions.core.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL_LENGTH = 2048

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_DOTTED_QUAD = re.compile(
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}"
)
_NUMBER = re.compile(r"[0-9]+|0x[0-9a-f]*")  # what inet_aton and WHATWG read as one part of an IPv4 address


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
    if any(c.isspace() for c in url):
        raise InvalidInput(f"url {url!r} contains whitespace")
    connect_host(url)
    if port == 0:
        raise InvalidInput(f"url {url!r} has port 0")
    return url


def connect_host(url: str) -> str:
    """The host an HTTP client connects to for ``url`` (as aiohttp reads it, through yarl), once it is known to
    be written plainly; :class:`InvalidInput` saying why it is not. An IP literal comes back in its canonical
    form (IPv6 without brackets)."""
    try:
        written = urlsplit(url)
        written_port = written.port
    except ValueError as error:
        raise InvalidInput(f"url {url!r} is not a valid URL: {error}") from None
    host = written.hostname or ""
    if not written.netloc.isascii():
        raise InvalidInput(
            f"url host {host!r} is not a valid host name: write it in ASCII "
            "(an international domain name in its xn-- form)"
        )
    try:
        parsed = URL(url)
        parsed_port = parsed.explicit_port
    except (ValueError, TypeError) as error:
        raise InvalidInput(f"url {url!r} is not a valid URL: {error}") from None
    literal = _bracketed_address(host)
    if literal is None:
        _check_host_name(host)
    seen = parsed.raw_host or ""
    same_host = seen == (str(literal) if literal is not None else host)
    if not same_host or parsed_port != written_port or parsed.scheme != written.scheme:
        raise InvalidInput(f"url {url!r} is not a valid URL: URL parsers disagree on its host or port")
    return seen


def _bracketed_address(host: str) -> ipaddress.IPv6Address | None:
    """The IPv6 address written in brackets as the host, if there is one."""
    if ":" not in host:
        return None
    if "%" in host:
        raise InvalidInput(f"url host {host!r} is not a valid host name: IPv6 zone ids are not allowed")
    try:
        return ipaddress.IPv6Address(host)
    except ValueError as error:
        raise InvalidInput(f"url host {host!r} is not a valid host name: {error}") from None


def _check_host_name(host: str) -> None:
    """Refuse a host that is not a plain name nor a dotted-quad IPv4 address."""
    if host.endswith("."):
        raise InvalidInput(f"url host {host!r} is not a valid host name: write it without the trailing dot")
    if "%" in host:
        raise InvalidInput(f"url host {host!r} is not a valid host name: percent-escapes are not allowed in a host")
    if not _HOST_NAME.fullmatch(host):
        raise InvalidInput(
            f"url host {host!r} is not a valid host name: use letters, digits, '-' and '_' in labels separated "
            "by single dots"
        )
    if _NUMBER.fullmatch(host.rsplit(".", 1)[-1]) and not _DOTTED_QUAD.fullmatch(host):
        # a name never ends in a number: clients read this as an IPv4 address, each in its own way
        raise InvalidInput(
            f"url host {host!r} is not a valid host name: write an IPv4 address as four decimal numbers "
            "from 0 to 255 without leading zeros, like 203.0.113.7"
        )
    try:
        host.encode("idna")  # label lengths: a host that fails here can never resolve
    except UnicodeError as error:
        raise InvalidInput(f"url host {host!r} is not a valid host name: {error}") from None


def host_address(host: str) -> IPAddress | None:
    """The IP address ``host`` (as :func:`connect_host` gives it) is, if it is an IP literal."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def literal_address(url: str) -> IPAddress | None:
    """The IP address written as the URL's host, if the host is one (no resolving needed)."""
    return host_address(connect_host(url))


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


def forbidden_host_reason(host: str) -> str | None:
    """Why a callback may not connect to ``host`` (as :func:`connect_host` gives it) without resolving it: a
    non-public IP literal, or a ``localhost`` name (RFC 6761: always loopback, whatever DNS says)."""
    address = host_address(host)
    if address is not None:
        return forbidden_reason(address)
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return "a loopback host name"
    return None
