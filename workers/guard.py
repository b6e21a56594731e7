"""The connection-time half of the SSRF guard: callbacks reach only public addresses.

Checking a URL when it is registered is not enough: its host may resolve elsewhere by the time a delivery is
sent (DNS rebinding), and a URL stored before a check was tightened was never checked as it is now. Three
layers, each seeing what the one before may miss:

- :func:`refusal` reads the URL as aiohttp will (yarl) and refuses, before any I/O, a host that is not written
  plainly or that is a non-public IP literal or a ``localhost`` name;
- :class:`PublicOnlyResolver` drops every non-public address a host name resolves to, so that a host with
  public and private addresses is reached on a public one, and one with none fails with a clear error;
- :func:`public_socket`, the delivery session's socket factory, is called with every address aiohttp is
  about to connect to, IP literal or resolved, right before the socket exists: it refuses any that is not
  public. aiohttp treats a host of digits and dots as an IP literal and never asks the resolver about it, so
  this is the one place that sees every connection.
"""

import ipaddress
import socket
from functools import lru_cache

from aiohttp import AddrInfoType
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from subscriptions.core.errors import InvalidInput, RelayError
from subscriptions.core.targets import connect_host, forbidden_host_reason, forbidden_reason


class TargetRefused(RelayError, OSError):
    """The callback's host is, or resolves only to, addresses the relay may not reach; an :class:`OSError` too,
    so that aiohttp's connector treats it as the failed connection it is (``ClientConnectorError``)."""


def refused(why: str) -> str:
    """How a refusal reads in an attempt's ``error``."""
    return f"refused: {why} (set RELAY_ALLOW_PRIVATE_TARGETS=true to allow)"


@lru_cache(maxsize=4096)  # a pure function of the URL, asked before every attempt: a subscription's few URLs
def refusal(url: str) -> str | None:
    """Why ``url`` may not be called, when that shows without resolving: the host aiohttp would connect to is
    a non-public IP literal or a ``localhost`` name, or it is not written plainly (a URL stored before the
    registration check refused such hosts)."""
    try:
        seen = URL(url).raw_host or ""
    except (ValueError, TypeError):
        seen = ""
    reason = forbidden_host_reason(seen)
    if reason is not None:
        return refused(f"{seen} is {reason}")
    try:
        connect_host(url)
    except InvalidInput as error:
        return f"refused: {error}"
    return None


def unreachable(host: object) -> str | None:
    """Why the relay may not connect to ``host`` (a socket address's host, such as ``"127.0.0.1"``), or ``None``
    if it is a public IP address; anything but an IP address is refused."""
    try:
        address = ipaddress.ip_address(host) if isinstance(host, str) else None
    except ValueError:
        address = None
    if address is None:
        return f"{host!r} is not an IP address"
    reason = forbidden_reason(address)
    return f"{address} is {reason}" if reason else None


def public_socket(addr_info: AddrInfoType) -> socket.socket:
    """A socket to connect to ``addr_info``'s address (aiohttp's ``socket_factory``), or :class:`TargetRefused`
    before any socket exists when the address is not public."""
    family, kind, proto, _, sockaddr = addr_info
    if family not in (socket.AF_INET, socket.AF_INET6):
        raise TargetRefused(refused(f"address family {family!r} is not IPv4 or IPv6"))
    why = unreachable(sockaddr[0] if sockaddr else None)
    if why is not None:
        raise TargetRefused(refused(why))
    return socket.socket(family=family, type=kind, proto=proto)


class PublicOnlyResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, then keeps public addresses only."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        whys = {r["host"]: unreachable(r["host"]) for r in results}
        allowed = [r for r in results if whys[r["host"]] is None]
        if not allowed:
            raise TargetRefused(refused(f"{host} resolves only to {', '.join(sorted(map(str, whys.values())))}"))
        return allowed

    async def close(self) -> None:
        await self._inner.close()
