"""The dashboard's sessions: the cookie holds an opaque id (``Secure`` whenever the browser used https, behind a
proxy that ended TLS too), Redis its digest with who and until when; logging out, revoking the key, deleting its
account, changing the admin token or 12 hours end it. No cookie, header or form value is ever a 500."""

import asyncio
import hashlib
import json
import re
from datetime import timedelta
from typing import cast
from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis

from tests.conftest import FakeClock
from tests.ui.world import TOKEN, Dashboard, Relay


@pytest.mark.parametrize(
    ("forwarded", "secure"),
    [
        ({}, False),
        ({"X-Forwarded-Proto": "http"}, False),
        ({"X-Forwarded-Proto": "https"}, True),
        ({"X-Forwarded-Proto": "HTTPS, http"}, True),  # the proxy nearest the browser comes first
        ({"Forwarded": "for=192.0.2.1;proto=https"}, True),
        ({"Forwarded": "for=192.0.2.1;proto=http"}, False),
    ],
)
async def test_the_login_cookie_is_secure_whenever_the_browser_used_https(
    relay: Relay, forwarded: dict[str, str], secure: bool
) -> None:
    async with relay.http.post(
        f"{relay.url}/ui/login",
        data={"token": TOKEN, "next": "/ui"},
        headers={"Origin": relay.url, **forwarded},
        allow_redirects=False,
    ) as response:
        assert response.status == 303
        cookie = response.cookies["relay_ui_session"]
    assert bool(cookie["secure"]) is secure
    assert cookie["httponly"]
    assert cookie["samesite"] == "Strict"


# sessions: an opaque id in the cookie, its SHA-256 with who and until when in Redis ------------------------------


async def redis_text(redis: Redis) -> str:
    """Every key, and every value of every kind, in the test's database, as one text."""
    stored: list[str] = []
    async for name in redis.scan_iter(count=1000):
        stored.append(name)
        kind = await redis.type(name)
        if kind == "string":
            stored.append(cast(str, await redis.get(name)))
        elif kind == "hash":
            stored += [f"{k}={v}" for k, v in (await redis.hgetall(name)).items()]  # type: ignore[misc]
        elif kind == "zset":
            stored += await redis.zrange(name, 0, -1)
        elif kind == "set":
            stored += await redis.smembers(name)  # type: ignore[misc]
        elif kind == "list":
            stored += await redis.lrange(name, 0, -1)  # type: ignore[misc]
    return "\n".join(stored)


def digest(session: str) -> str:
    return hashlib.sha256(session.encode()).hexdigest()


async def at_login_page(dashboard: Dashboard, session: str, path: str = "/ui") -> bool:
    answer = await dashboard.request("GET", path, session=session)
    return answer.status == 303 and answer.headers["Location"].startswith("/ui/login?next=")


async def test_the_cookie_names_a_session_and_redis_keeps_only_its_digest(
    dashboard: Dashboard, redis_client: Redis, clock: FakeClock
) -> None:
    key = await dashboard.api("POST", "/v1/api-keys", {"account": "acme"}, expect=201)
    admin, scoped = await dashboard.session(TOKEN), await dashboard.session(key["key"])
    for session in (admin, scoped):
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", session)  # 256 random bits
        assert (await dashboard.request("GET", "/ui", session=session)).status == 200
        ttl_ms = await redis_client.pttl(f"relay:ui:session:{digest(session)}")
        assert 12 * 3600_000 - 60_000 < ttl_ms <= 12 * 3600_000
    assert admin != scoped
    record = json.loads(cast(str, await redis_client.get(f"relay:ui:session:{digest(scoped)}")))
    assert (record["kind"], record["account"], record["key_id"]) == ("key", "acme", key["id"])
    assert record["expires_at"] == (clock() + timedelta(hours=12)).isoformat().replace("+00:00", "Z")

    everything = await redis_text(redis_client)
    for secret in (TOKEN, key["key"], admin, scoped):
        assert secret not in everything  # no token, no key, no session id: nothing in Redis lets anyone in


async def test_logging_out_ends_the_session_for_good(dashboard: Dashboard, redis_client: Redis) -> None:
    session = await dashboard.session(TOKEN)
    other = await dashboard.session(TOKEN)  # another browser
    answer = await dashboard.request("POST", "/ui/logout", session=session)
    assert (answer.status, answer.headers["Location"]) == (303, "/ui/login")
    assert answer.cookies["relay_ui_session"] == ""
    assert not await redis_client.exists(f"relay:ui:session:{digest(session)}")
    assert await at_login_page(dashboard, session)  # the old cookie, sent again, is nobody
    assert (await dashboard.request("GET", "/ui", session=other)).status == 200


async def test_revoking_a_key_or_deleting_its_account_ends_its_sessions_at_once(
    dashboard: Dashboard, redis_client: Redis
) -> None:
    first = await dashboard.api("POST", "/v1/api-keys", {"account": "acme"}, expect=201)
    second = await dashboard.api("POST", "/v1/api-keys", {"account": "acme"}, expect=201)
    revoked = [await dashboard.session(first["key"]), await dashboard.session(first["key"])]
    kept, admin = await dashboard.session(second["key"]), await dashboard.session(TOKEN)

    await dashboard.api("DELETE", f"/v1/api-keys/{first['id']}", expect=204)
    for session in revoked:
        assert not await redis_client.exists(f"relay:ui:session:{digest(session)}")  # deleted, not just refused
        assert await at_login_page(dashboard, session)
    assert not await redis_client.exists(f"relay:ui:sessions:key:{first['id']}")
    assert (await dashboard.request("GET", "/ui", session=kept)).status == 200

    await dashboard.api("DELETE", "/v1/accounts/acme", expect=204)
    assert not await redis_client.exists(f"relay:ui:session:{digest(kept)}")
    assert await at_login_page(dashboard, kept)
    assert (await dashboard.request("GET", "/ui", session=admin)).status == 200


async def test_a_session_whose_key_is_gone_is_refused_even_if_revocation_missed_it(
    dashboard: Dashboard, redis_client: Redis
) -> None:
    key = await dashboard.api("POST", "/v1/api-keys", {"account": "acme"}, expect=201)
    session = await dashboard.session(key["key"])
    await redis_client.delete(f"relay:apikey:{key['id']}")  # as if revoked between login and the session's write
    assert await at_login_page(dashboard, session)
    assert not await redis_client.exists(f"relay:ui:session:{digest(session)}")


async def test_a_session_lasts_12_hours(dashboard: Dashboard, clock: FakeClock) -> None:
    session = await dashboard.session(TOKEN)
    clock.advance(12 * 3600 - 1)
    assert (await dashboard.request("GET", "/ui/deliveries", session=session)).status == 200
    clock.advance(1)
    assert await at_login_page(dashboard, session, "/ui/deliveries")


async def test_changing_the_admin_token_ends_admin_sessions(dashboard: Dashboard) -> None:
    key = await dashboard.api("POST", "/v1/api-keys", {"account": "acme"}, expect=201)
    admin, scoped = await dashboard.session(TOKEN), await dashboard.session(key["key"])
    dashboard.ctx.admin_token = "another-admin-token-0123456789abcdef"  # RELAY_API_TOKEN changed, process restarted
    assert await at_login_page(dashboard, admin)
    assert (await dashboard.request("GET", "/ui", session=scoped)).status == 200
    dashboard.ctx.admin_token = TOKEN  # and back: the session was ended, not merely refused
    assert await at_login_page(dashboard, admin)


@pytest.mark.parametrize(
    "cookies",
    [
        {"relay_ui_token": TOKEN},  # what the dashboard kept before sessions: the raw token is no longer accepted
        {"relay_ui_session": TOKEN},
        {"relay_ui_session": "A" * 43},
        {"relay_ui_session": "relay:ui:session:x"},
    ],
)
async def test_a_cookie_that_is_not_a_session_is_nobody_and_is_dropped(
    dashboard: Dashboard, cookies: dict[str, str]
) -> None:
    answer = await dashboard.request("GET", "/ui", cookies=cookies)
    assert answer.status == 303
    assert answer.headers["Location"] == "/ui/login?next=/ui"
    assert answer.cookies == {"relay_ui_session": "", "relay_ui_token": ""}


async def test_logging_in_replaces_a_raw_token_cookie_and_an_older_session(
    dashboard: Dashboard, redis_client: Redis
) -> None:
    old = await dashboard.session(TOKEN)
    answer = await dashboard.request(
        "POST",
        "/ui/login",
        cookies={"relay_ui_token": TOKEN, "relay_ui_session": old},
        data={"token": TOKEN, "next": "/ui"},
    )
    assert answer.status == 303
    assert answer.cookies["relay_ui_token"] == ""
    assert answer.cookies["relay_ui_session"] not in ("", old)
    assert not await redis_client.exists(f"relay:ui:session:{digest(old)}")


async def raw_request(url: str, request: bytes) -> tuple[int, str]:
    """``request`` sent byte for byte; the answer's status and head."""
    split = urlsplit(url)
    reader, writer = await asyncio.open_connection(split.hostname, split.port)
    try:
        writer.write(request)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
        await writer.wait_closed()
    head = raw.partition(b"\r\n\r\n")[0].decode("latin-1")
    return int(head.split()[1]), head


@pytest.mark.parametrize("name", [b"relay_ui_session", b"relay_ui_token"])
@pytest.mark.parametrize("value", [b"\xff\xfe", b"abc\x80def", b"\xed\xa0\x80" * 15])
@pytest.mark.parametrize(
    ("path", "status"), [(b"/ui", 303), (b"/ui/deliveries/dlv_x", 303), (b"/ui/nowhere", 404), (b"/ui/logout", 303)]
)
async def test_a_cookie_that_is_not_utf8_is_no_session_never_an_error(
    dashboard: Dashboard, name: bytes, value: bytes, path: bytes, status: int
) -> None:
    request = b"GET " + path + b" HTTP/1.1\r\nHost: relay\r\nCookie: " + name + b"=" + value
    answer, head = await raw_request(dashboard.url, request + b"\r\nConnection: close\r\n\r\n")
    assert answer == status, head
    if status == 303 and path != b"/ui/logout":
        assert "Location: /ui/login?next=" in head


@pytest.mark.parametrize(
    ("next_", "goes_to"),
    [
        ("/ui/deliveries?status=failed", "/ui/deliveries?status=failed"),
        ("/ui?\r\nSet-Cookie: x=1", "/ui"),  # a line break would end the Location header
        ("/ui/deliveries?subscription=é", "/ui"),
        ("//evil.example/ui", "/ui"),
        ("https://evil.example/ui", "/ui"),
    ],
)
async def test_where_a_login_goes_next_is_always_a_dashboard_path(
    dashboard: Dashboard, next_: str, goes_to: str
) -> None:
    answer = await dashboard.log_in(TOKEN, next_=next_)
    assert (answer.status, answer.headers["Location"]) == (303, goes_to)


@pytest.mark.parametrize("origin", ["http://[", "http://[::1", "null", "https://evil.example"])
async def test_a_login_from_a_strange_origin_is_refused_never_an_error(dashboard: Dashboard, origin: str) -> None:
    answer = await dashboard.log_in(TOKEN, headers={"Origin": origin})
    assert answer.status == 403
    assert "relay_ui_session" not in answer.cookies


async def test_a_login_form_that_is_not_utf8_is_refused_never_an_error(dashboard: Dashboard) -> None:
    port = urlsplit(dashboard.url).port
    body = b"token=\xff\xfe&next=/ui"
    request = (
        b"POST /ui/login HTTP/1.1\r\nHost: 127.0.0.1:"
        + str(port).encode()
        + b"\r\nOrigin: "
        + dashboard.url.encode()
        + b"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\nConnection: close\r\n\r\n"
        + body
    )
    status, head = await raw_request(dashboard.url, request)
    assert 400 <= status < 500, head
