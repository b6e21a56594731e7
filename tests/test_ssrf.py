"""SSRF: no spelling of a callback URL makes the relay connect to loopback while private targets are not allowed.

A real TCP service listens on 127.0.0.1 (and ::1 where there is IPv6), standing for an internal service: it
answers any request ``200`` with a secret and counts the connections it accepts. Each URL is registered through
the real HTTP API (refused with a 422) and also sent to directly, by ``workers.sender.send`` and by the delivery
session alone (as for a URL stored before the registration check knew the spelling): the listener must never
see a connection, and the attempt must say why it failed.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from relay.api.app import create_app
from relay.api.context import ApiContext
from subscriptions.store.records import Store
from tests.e2e import register_unpolled
from workers.deadlines import Deadlines
from workers.sender import AttemptResult, delivery_session, describe_error, send

TOKEN = "test-admin-token-0123456789abcdefgh"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = b"internal secret: the tenant must never read this"

ApiClient = TestClient[aiohttp.web.Request, aiohttp.web.Application]


class Listener:
    """An internal HTTP service on loopback that counts the connections it accepts."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0
        self._servers: list[asyncio.Server] = []

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            await reader.readuntil(b"\r\n\r\n")
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(SECRET)}\r\nConnection: close\r\n\r\n"
            writer.write(head.encode() + SECRET)
            await writer.drain()
        writer.close()

    async def start(self) -> None:
        server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        self._servers.append(server)
        self.port = server.sockets[0].getsockname()[1]
        with contextlib.suppress(OSError):  # no IPv6 here, or the port is taken on ::1: IPv4 only
            self._servers.append(await asyncio.start_server(self._answer, "::1", self.port))

    async def settled_connections(self) -> int:
        """The connections accepted so far, once any under way have been accepted."""
        for _ in range(5):
            await asyncio.sleep(0.01)
        return self.connections

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
            await server.wait_closed()


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    service = Listener()
    await service.start()
    yield service
    await service.stop()


async def api_client(redis_client: Redis, *, allow_private: bool) -> AsyncIterator[ApiClient]:
    """The relay's real API (real resolver) with account ``acme`` registered."""
    async with aiohttp.ClientSession() as session:
        ctx = ApiContext(
            redis=redis_client,
            admin_token=TOKEN,
            brightpearl_session=session,
            budget_per_minute=100,
            allow_private_targets=allow_private,
            clock=lambda: datetime.now(UTC),
        )
        await register_unpolled(Store(redis_client), "acme")
        async with TestClient(TestServer(create_app(ctx), host="127.0.0.1")) as client:
            yield client


@pytest.fixture
async def api(redis_client: Redis) -> AsyncIterator[ApiClient]:
    async for client in api_client(redis_client, allow_private=False):
        yield client


@pytest.fixture
async def open_api(redis_client: Redis) -> AsyncIterator[ApiClient]:
    async for client in api_client(redis_client, allow_private=True):
        yield client


@pytest.fixture
async def deadlines() -> AsyncIterator[Deadlines]:
    keeper = Deadlines(tick_s=0.05)
    task = asyncio.create_task(keeper.run())
    yield keeper
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.fixture
async def guarded() -> AsyncIterator[aiohttp.ClientSession]:
    session = delivery_session(allow_private=False)
    yield session
    await session.close()


async def register(api: ApiClient, url: str) -> tuple[int, dict[str, object]]:
    response = await api.post("/v1/subscriptions", json={"account": "acme", "url": url, "events": ["*"]}, headers=AUTH)
    assert response.status < 500, await response.text()
    body: dict[str, object] = await response.json(content_type=None)
    return response.status, body


async def deliver(
    session: aiohttp.ClientSession, url: str, deadlines: Deadlines, *, allow_private: bool = False
) -> AttemptResult:
    return await send(
        session,
        url=url,
        msg_id="msg_ssrf",
        body=b'{"type": "ping"}',
        keys=[b"k" * 32],
        timeout_s=2.0,
        deadlines=deadlines,
        now=datetime.now(UTC),
        allow_private=allow_private,
    )


# {port} is the listener's: each of these reaches it if the relay connects where the HTTP client points.
FORMS = [
    "http://\U0001fbf1\U0001fbf2\U0001fbf7.0.0.1:{port}/x",  # segmented digits, the finding itself
    "http://\U0001fbf1\U0001fbf2\U0001fbf7.\U0001fbf0.\U0001fbf0.\U0001fbf1:{port}/x",
    "http://\uff11\uff12\uff17.0.0.1:{port}/x",  # fullwidth digits
    "http://\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11:{port}/x",  # fullwidth digits and full stops
    "http://127\u30020\u30020\u30021:{port}/x",  # ideographic full stops
    "http://127\uff610\uff610\uff611:{port}/x",  # halfwidth ideographic full stops
    "http://\u0661\u0662\u0667.0.0.1:{port}/x",  # Arabic-Indic
    "http://\u06f1\u06f2\u06f7.0.0.1:{port}/x",  # extended Arabic-Indic
    "http://\u0967\u0968\u096d.0.0.1:{port}/x",  # Devanagari
    "http://\u09e7\u09e8\u09ed.0.0.1:{port}/x",  # Bengali
    "http://\U0001d7cf\U0001d7d0\U0001d7d5.0.0.1:{port}/x",  # mathematical bold
    "http://\u2460\u2461\u2466.0.0.1:{port}/x",  # circled digits
    "http://127.0.0.\u00b9:{port}/x",  # superscript one
    "http://127.0.0.1.:{port}/x",  # trailing dot
    "http://127.0.0.1..:{port}/x",
    "http://localhost:{port}/x",
    "http://LOCALHOST:{port}/x",
    "http://localhost.:{port}/x",
    "http://relay.localhost:{port}/x",
    "http://127.1:{port}/x",
    "http://127.0.1:{port}/x",
    "http://0x7f.0.0.1:{port}/x",
    "http://0x7f.1:{port}/x",
    "http://0X7F.0X0.0X0.0X1:{port}/x",
    "http://0177.0.0.1:{port}/x",
    "http://0177.0.0.01:{port}/x",
    "http://2130706433:{port}/x",
    "http://0x7f000001:{port}/x",
    "http://017700000001:{port}/x",
    "http://0.0.0.0:{port}/x",
    "http://0:{port}/x",
    "http://[::1]:{port}/x",
    "http://[::ffff:127.0.0.1]:{port}/x",
    "http://[::ffff:7f00:1]:{port}/x",
    "http://[0:0:0:0:0:ffff:127.0.0.1]:{port}/x",
    "http://[::127.0.0.1]:{port}/x",
    "http://[64:ff9b::7f00:1]:{port}/x",
    "http://[::]:{port}/x",
    "http://[::ffff:127.0.0.1%25lo]:{port}/x",
    "http://example.com@127.0.0.1:{port}/x",
    "http://example.com:443@127.0.0.1:{port}/x",
    "http://user:pass@localhost:{port}/x",
    "http://127.0.0.1:{port}\\@example.com/x",
    "http://127.0.0.1:{port}#@example.com/x",
    "http://127.0.0.1:{port}?@example.com/x",
    "http://%31%32%37.0.0.1:{port}/x",
    "http://127%2e0%2e0%2e1:{port}/x",
    "http://127.0.0.1:{port}/x",
    "HTTP://127.0.0.1:{port}/x",
]


@pytest.mark.parametrize("form", FORMS)
async def test_registration_refuses_every_spelling_of_loopback(api: ApiClient, listener: Listener, form: str) -> None:
    status, body = await register(api, form.format(port=listener.port))
    assert status == 422, body
    assert body["detail"]
    assert await listener.settled_connections() == 0


@pytest.mark.parametrize("form", FORMS)
async def test_sending_to_any_spelling_of_loopback_makes_no_connection(
    guarded: aiohttp.ClientSession, deadlines: Deadlines, listener: Listener, form: str
) -> None:
    result = await deliver(guarded, form.format(port=listener.port), deadlines)
    assert await listener.settled_connections() == 0
    assert not result.succeeded
    assert result.attempt.status_code is None
    assert result.attempt.error
    assert SECRET.decode() not in (result.attempt.response_excerpt or "")


@pytest.mark.parametrize("form", FORMS)
async def test_the_delivery_session_alone_makes_no_connection(
    guarded: aiohttp.ClientSession, listener: Listener, form: str
) -> None:
    # no check before sending: what a URL stored before the registration check knew its spelling would meet
    with pytest.raises((aiohttp.ClientError, ValueError, OSError)):
        async with guarded.post(form.format(port=listener.port), data=b"{}") as response:
            pytest.fail(f"answered {response.status}: {await response.text()}")
    assert await listener.settled_connections() == 0


@pytest.mark.parametrize(
    "form",
    [
        "http://\U0001fbf1\U0001fbf2\U0001fbf7.0.0.1:{port}/x",
        "http://\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11:{port}/x",
        "http://127\u30020\u30020\u30021:{port}/x",
        "http://0.0.0.0:{port}/x",
        "http://example.com@127.0.0.1:{port}/x",
        "http://127.0.0.1:{port}#@example.com/x",
    ],
)
async def test_without_the_guard_these_forms_do_reach_the_listener(listener: Listener, form: str) -> None:
    # the table is not vacuous: an HTTP client that does not check connects to loopback for these
    async with aiohttp.ClientSession() as session, session.post(form.format(port=listener.port)) as response:
        assert response.status == 200
        assert await response.read() == SECRET
    assert listener.connections == 1


async def test_a_refusal_at_connection_says_which_address_and_why(
    guarded: aiohttp.ClientSession, deadlines: Deadlines, listener: Listener
) -> None:
    with pytest.raises(aiohttp.ClientConnectorError) as caught:
        await guarded.post(f"http://\U0001fbf1\U0001fbf2\U0001fbf7.0.0.1:{listener.port}/x", data=b"{}")
    assert describe_error(caught.value, 2.0).startswith("refused: 127.0.0.1 is a loopback address")
    result = await deliver(guarded, f"http://\U0001fbf1\U0001fbf2\U0001fbf7.0.0.1:{listener.port}/x", deadlines)
    assert result.attempt.error is not None
    assert result.attempt.error.startswith("refused: 127.0.0.1 is a loopback address")
    assert "RELAY_ALLOW_PRIVATE_TARGETS" in result.attempt.error
    assert listener.connections == 0


async def test_allowed_private_targets_are_reached(
    open_api: ApiClient, deadlines: Deadlines, listener: Listener
) -> None:
    url = f"http://127.0.0.1:{listener.port}/x"
    status, body = await register(open_api, url)
    assert status == 201, body
    assert body["url"] == url
    session = delivery_session(allow_private=True)
    try:
        result = await deliver(session, url, deadlines, allow_private=True)
    finally:
        await session.close()
    assert result.attempt.status_code == 200
    assert result.attempt.response_excerpt == SECRET.decode()
    assert listener.connections == 1


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/hooks",
        "https://xn--bcher-kva.example/hooks",  # an international name written as the DNS has it
        "https://hooks.not-yet-registered.example:8443/h?x=1",
        "https://user:secret@example.com/hooks",
        "https://8.8.8.8/hooks",
        "https://[2606:4700:4700::1111]/hooks",
        "https://under_score.example.com/hooks",
    ],
)
async def test_plain_public_urls_are_still_accepted_and_stored_as_given(api: ApiClient, url: str) -> None:
    status, body = await register(api, url)
    assert status == 201, body
    assert body["url"] == url


# Hosts built from what confuses URL parsers: digits of many scripts, Unicode full stops, hex and octal parts,
# percent-escapes, brackets and colons, userinfo; half of them spell a non-public address part by part.
DIGITS = [
    "0123456789",
    "".join(chr(c) for c in range(0x1FBF0, 0x1FBFA)),  # segmented
    "".join(chr(c) for c in range(0xFF10, 0xFF1A)),  # fullwidth
    "".join(chr(c) for c in range(0x0660, 0x066A)),  # Arabic-Indic
    "".join(chr(c) for c in range(0x06F0, 0x06FA)),  # extended Arabic-Indic
    "".join(chr(c) for c in range(0x0966, 0x0970)),  # Devanagari
    "".join(chr(c) for c in range(0x1D7CE, 0x1D7D8)),  # mathematical bold
    "".join(chr(c) for c in range(0x1D7F6, 0x1D800)),  # mathematical monospace
]
DOTS = [".", "\u3002", "\uff0e", "\uff61", "%2e"]
PIECES = [
    *"0123456789abcdefxX.:[]@",
    *DOTS,
    *(d for script in DIGITS[1:] for d in script),
    "%31",
    "%37",
    "%00",
    "%25",
    "0x",
    "0x7f",
    "0177",
    "127",
    "::",
    "ffff",
    "localhost",
]


def octet(value: int, style: str, script: str) -> str:
    if style == "hex":
        return hex(value)
    if style == "octal":
        return "0" + oct(value)[2:]
    return "".join(script[int(d)] for d in str(value))


@st.composite
def spelled_addresses(draw: st.DrawFn) -> str:
    """A non-public IPv4 address spelled part by part in the ways some client reads as that address."""
    address = draw(st.sampled_from([(127, 0, 0, 1), (0, 0, 0, 0), (127, 1, 2, 3), (169, 254, 169, 254), (10, 0, 0, 1)]))
    script = draw(st.sampled_from(DIGITS))
    parts = [octet(value, draw(st.sampled_from(["decimal", "decimal", "hex", "octal"])), script) for value in address]
    if draw(st.booleans()):  # the short forms: 127.1, 127.0.1 and 2130706433
        cut = draw(st.integers(0, 2))
        rest = int.from_bytes(bytes(address[cut:]), "big")
        parts = [*parts[:cut], octet(rest, draw(st.sampled_from(["decimal", "hex", "octal"])), script)]
    host = parts[0] + "".join(draw(st.sampled_from(DOTS)) + part for part in parts[1:])
    if draw(st.booleans()):
        host += draw(st.sampled_from(DOTS))
    if draw(st.integers(0, 3)) == 0:
        host = f"[::ffff:{host}]"
    if draw(st.integers(0, 3)) == 0:
        host = f"example.com@{host}"
    return host


hosts = st.one_of(spelled_addresses(), st.lists(st.sampled_from(PIECES), min_size=1, max_size=12).map("".join))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(host=hosts)
async def test_generated_hosts_never_reach_loopback(
    api: ApiClient, guarded: aiohttp.ClientSession, deadlines: Deadlines, listener: Listener, host: str
) -> None:
    url = f"http://{host}:{listener.port}/x"
    status, body = await register(api, url)
    if status == 201:
        await api.delete(f"/v1/subscriptions/{body['id']}", headers=AUTH)
    else:
        assert status == 422, body
    result = await deliver(guarded, url, deadlines)
    assert result.attempt.status_code is None, (url, result.attempt)
    assert result.attempt.error
    assert listener.connections == 0, url
