"""Failed dashboard logins, limited per client address: ``MAX_FAILURES`` in any ``WINDOW``, then 429.

Each login attempt is counted before its token is checked (so a burst of parallel attempts cannot slip past
the limit) and taken back if the token was good: only failures count. A success takes back that attempt only;
it clears no earlier failure, neither its own client's nor anyone else's, so a valid key cannot be used to reset
the count while guessing another token. Once a client has ``MAX_FAILURES`` failures within ``WINDOW`` every
attempt from it (even with a good token) gets 429 with ``Retry-After``: the seconds until the oldest of them is
``WINDOW`` old.

The client is the address the connection came from. When that is not a global address (loopback, private or
shared: a reverse proxy or ingress in front, as in ``deploy/``), it is the last address in ``X-Forwarded-For``,
the one that proxy appended, so clients behind one proxy are counted apart rather than locking each other out.
A client connecting straight from a public address cannot choose its count that way: its header is ignored.
"""

import ipaddress
from datetime import timedelta

from aiohttp import web
from redis.asyncio import Redis

from subscriptions.store import keyspace
from subscriptions.store.quotas import SlidingWindow

MAX_FAILURES = 10
WINDOW = timedelta(minutes=15)


def client_address(request: web.Request) -> str:
    """The address failed logins are counted against (see the module's docstring)."""
    peer = request.remote or ""
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return peer or "unknown"  # not an IP connection (a Unix socket): one client
    if not address.is_global:  # loopback, private, shared (100.64/10), link-local: a proxy of ours
        hops = [hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",")]
        if hops[-1]:
            try:
                return str(ipaddress.ip_address(hops[-1]))
            except ValueError:
                pass  # not an address: count against the proxy
    return str(address)


def failed_logins(redis: "Redis", client: str) -> SlidingWindow:
    """The window counting ``client``'s login attempts: each is taken before its token is checked and given back
    if the token was good (see the module's docstring)."""
    return SlidingWindow(
        redis, keyspace.login_failures(client), limit=MAX_FAILURES, window_ms=int(WINDOW.total_seconds() * 1000)
    )
