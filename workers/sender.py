"""One delivery attempt: sign, POST, and say exactly what happened.

A 2xx answer is success; anything else is a failed attempt, recorded with what a person needs to see why:
the status and the start of the body, or for no answer the class of the error (timeout, refused connection,
DNS, TLS, reset) in words. Redirects are not followed: a 3xx is a failure that names where it pointed.
"""

import asyncio
import ssl
import time
from dataclasses import dataclass
from datetime import datetime

import aiohttp

from subscriptions.core.models import Attempt
from subscriptions.core.signing import signature_header
from workers.deadlines import Deadlines
from workers.guard import PublicOnlyResolver, TargetRefused, public_socket, refusal

EXCERPT_BYTES = 1024
USER_AGENT = "brightpearl-webhook-relay/0.1 (+https://www.standardwebhooks.com)"


@dataclass(frozen=True)
class AttemptResult:
    attempt: Attempt
    succeeded: bool
    retry_after: str | None = None  # the answer's Retry-After header, as sent


def describe_error(error: BaseException, timeout_s: float) -> str:
    """A one-line account of why no HTTP answer came."""
    if isinstance(error, TimeoutError | asyncio.TimeoutError):
        return f"timeout: no complete answer within {timeout_s:g} s"
    if isinstance(error, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError | ssl.SSLError):
        return f"TLS: {error}"
    if isinstance(error, aiohttp.ClientConnectorError) and isinstance(error.os_error, TargetRefused):
        return str(error.os_error)
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        return f"DNS: cannot resolve {error.host}"
    if isinstance(error, aiohttp.ClientConnectorError):
        reason = error.os_error.strerror or str(error.os_error)
        return f"connection failed: {reason} ({error.host}:{error.port})"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "disconnected: the server closed the connection without answering"
    if isinstance(error, aiohttp.ClientOSError):
        return f"connection error: {error.strerror or error}"
    if isinstance(error, aiohttp.ClientPayloadError):
        return f"bad response: {error}"
    if isinstance(error, aiohttp.InvalidURL):
        return f"invalid URL: {error}"
    return f"{type(error).__name__}: {error}"


async def send(
    session: aiohttp.ClientSession,
    *,
    url: str,
    msg_id: str,
    body: bytes,
    keys: list[bytes],
    timeout_s: float,
    deadlines: Deadlines,
    now: datetime,
    allow_private: bool = False,
) -> AttemptResult:
    """POST one signed webhook to ``url`` and describe the outcome as an :class:`Attempt`; it is given up after
    ``timeout_s`` (give or take ``deadlines.tick_s``), counting from the call (a connection, if aiohttp has none
    free, is waited for within it: the dispatcher starts no more attempts to a receiver than its connections)."""
    refused = None if allow_private else refusal(url)
    if refused is not None:
        return AttemptResult(Attempt(at=now, status_code=None, error=refused, duration_ms=0), False)
    timestamp_s = int(now.timestamp())
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp_s),
        "webhook-signature": signature_header(keys, msg_id, timestamp_s, body),
    }
    started = time.perf_counter()
    status: int | None = None
    error: str | None = None
    excerpt = ""
    retry_after = None
    task = deadlines.enter(timeout_s)
    try:
        async with session.post(url, data=body, headers=headers, allow_redirects=False) as response:
            status = response.status
            retry_after = response.headers.get("retry-after")
            excerpt = (await response.content.read(EXCERPT_BYTES)).decode("utf-8", errors="replace")
            if 300 <= status < 400:
                error = f"redirect to {response.headers.get('location', '?')} not followed"
    except asyncio.CancelledError:
        if not deadlines.timed_out(task):
            raise
        status, error, excerpt, retry_after = None, describe_error(TimeoutError(), timeout_s), "", None
    except (aiohttp.ClientError, TimeoutError, ssl.SSLError, OSError) as failure:
        error = describe_error(failure, timeout_s)
    finally:
        deadlines.leave(task)
    duration_ms = int((time.perf_counter() - started) * 1000)
    attempt = Attempt(at=now, status_code=status, error=error, duration_ms=duration_ms, response_excerpt=excerpt)
    return AttemptResult(attempt, status is not None and 200 <= status < 300, retry_after)


def delivery_session(*, allow_private: bool, max_connections: int = 512, per_host: int = 64) -> aiohttp.ClientSession:
    """The HTTP session deliveries go through: public addresses only unless private targets are allowed (see
    :mod:`workers.guard`: the resolver keeps public addresses, the socket factory refuses any other).

    At most ``per_host`` connections are open to one receiver (host, port and scheme); requests beyond them
    would wait for one to come free, but the dispatcher starts no more than that at once (``workers.lanes``).
    Hundreds of sockets to one host cost both ends far more CPU per request than a few dozen kept busy, and a
    receiver is spared a storm of new connections."""
    connector = aiohttp.TCPConnector(
        limit=max_connections,
        limit_per_host=per_host,
        ttl_dns_cache=30,
        resolver=None if allow_private else PublicOnlyResolver(),
        socket_factory=None if allow_private else public_socket,  # sees every address, IP literals included
    )
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=True,
        trust_env=False,
        timeout=aiohttp.ClientTimeout(total=None),  # each attempt's is kept by the dispatcher's Deadlines
        cookie_jar=aiohttp.DummyCookieJar(),  # a cookie one receiver sets is never sent with another's webhooks
    )
