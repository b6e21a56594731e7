"""The connection-time half of the SSRF guard: callbacks reach only public addresses.

Checking a URL when it is registered is not enough: its host may resolve elsewhere by the time a delivery is
sent (DNS rebinding). The delivery session's resolver drops every non-public address of a host, so the
connection is made only to an address that was checked; a host with none left fails with a clear error.
aiohttp does not resolve IP literals, so :func:`refusal` checks those before sending, reading the URL as aiohttp
does (yarl).
"""

import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from subscriptions.errors import InvalidInput
from subscriptions.targets import connect_host, forbidden_host_reason, forbidden_reason


class TargetRefused(OSError):
    """The callback's host resolves only to addresses the relay may not reach."""


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
        return f"refused: {seen} is {reason} (set RELAY_ALLOW_PRIVATE_TARGETS=true to allow)"
    try:
        connect_host(url)
    except InvalidInput as error:
        return f"refused: {error}"
    return None


class PublicOnlyResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, then keeps public addresses only."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [r for r in results if forbidden_reason(ipaddress.ip_address(r["host"])) is None]
        if not allowed:
            reasons = {f"{r['host']} is {forbidden_reason(ipaddress.ip_address(r['host']))}" for r in results}
            raise TargetRefused(
                f"refused: {host} resolves only to {', '.join(sorted(reasons))} "
                "(set RELAY_ALLOW_PRIVATE_TARGETS=true to allow)"
            )
        return allowed

    async def close(self) -> None:
        await self._inner.close()
