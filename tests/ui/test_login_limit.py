"""Failed dashboard logins are limited per client address: 10 in 15 minutes, then 429 with ``Retry-After`` and a
page that says when to try again. Other clients are not affected, and a success clears nobody's count."""

import pytest
from aiohttp.test_utils import make_mocked_request

from relay.ui.login_limit import MAX_FAILURES, WINDOW, client_address
from tests.conftest import FakeClock
from tests.ui.world import TOKEN, Answer, Dashboard

WINDOW_S = int(WINDOW.total_seconds())


def from_client(address: str) -> dict[str, str]:
    """Headers of a request from ``address`` through a proxy in front (the test's own address is loopback)."""
    return {"X-Forwarded-For": f"198.51.100.1, {address}"}


async def fail(dashboard: Dashboard, times: int, client: str = "203.0.113.1") -> None:
    for _ in range(times):
        answer = await dashboard.log_in("not-the-token", headers=from_client(client))
        assert answer.status == 401, answer.text


def limited(answer: Answer, wait_s: int) -> None:
    assert answer.status == 429, answer.text
    assert answer.headers["Retry-After"] == str(wait_s)
    assert "Too many failed logins from your address" in answer.text
    assert "relay_ui_session" not in answer.cookies


async def test_the_eleventh_failure_in_15_minutes_is_refused_until_the_first_is_old_enough(
    dashboard: Dashboard, clock: FakeClock
) -> None:
    await fail(dashboard, 1)
    clock.advance(60)
    await fail(dashboard, MAX_FAILURES - 1)
    clock.advance(30)
    answer = await dashboard.log_in("not-the-token", headers=from_client("203.0.113.1"))
    limited(answer, WINDOW_S - 90)
    assert "Try again in 14 minutes, after 10:15:00 UTC" in answer.text  # the clock started at 10:00
    limited(await dashboard.log_in(TOKEN, headers=from_client("203.0.113.1")), WINDOW_S - 90)  # even a good token

    clock.advance(WINDOW_S - 90)  # the first failure is now 15 minutes old: one more try
    assert (await dashboard.log_in(TOKEN, headers=from_client("203.0.113.1"))).status == 303
    await fail(dashboard, 1)
    limited(await dashboard.log_in(TOKEN, headers=from_client("203.0.113.1")), 60)  # the second one next


async def test_other_clients_are_not_limited_and_a_success_resets_nobodys_count(dashboard: Dashboard) -> None:
    await fail(dashboard, MAX_FAILURES, client="203.0.113.1")
    limited(await dashboard.log_in(TOKEN, headers=from_client("203.0.113.1")), WINDOW_S)
    assert (await dashboard.log_in(TOKEN, headers=from_client("203.0.113.2"))).status == 303
    limited(await dashboard.log_in(TOKEN, headers=from_client("203.0.113.1")), WINDOW_S)

    await fail(dashboard, MAX_FAILURES - 1, client="203.0.113.2")
    key = await dashboard.api("POST", "/v1/api-keys", {"account": "acme"}, expect=201)
    assert (await dashboard.log_in(key["key"], headers=from_client("203.0.113.2"))).status == 303
    await fail(dashboard, 1, client="203.0.113.2")  # the tenth failure: a valid key did not clear the nine before
    limited(await dashboard.log_in(TOKEN, headers=from_client("203.0.113.2")), WINDOW_S)


async def test_the_count_lives_in_redis_by_address_with_a_ttl(dashboard: Dashboard) -> None:
    await fail(dashboard, 3, client="2001:db8::7")
    name = "relay:ui:login-failures:2001:db8::7"
    assert await dashboard.ctx.redis.zcard(name) == 3
    assert 0 < await dashboard.ctx.redis.pttl(name) <= WINDOW_S * 1000


@pytest.mark.parametrize(
    ("remote", "forwarded_for", "client"),
    [
        ("93.184.215.14", None, "93.184.215.14"),
        ("93.184.215.14", "198.51.100.4", "93.184.215.14"),  # a public peer is no proxy of ours: header ignored
        ("100.64.3.2", "198.51.100.4", "198.51.100.4"),  # shared address space, as some clusters' pods have
        ("10.0.0.5", "198.51.100.4", "198.51.100.4"),  # an ingress in front
        ("127.0.0.1", "1.2.3.4, 198.51.100.4", "198.51.100.4"),  # the address the nearest proxy appended
        ("10.0.0.5", "198.51.100.4, not-an-address", "10.0.0.5"),
        ("10.0.0.5", "", "10.0.0.5"),
        ("::1", "2001:db8::1", "2001:db8::1"),
        (None, None, "unknown"),
    ],
)
def test_the_client_address(remote: str | None, forwarded_for: str | None, client: str) -> None:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {}
    request = make_mocked_request("POST", "/ui/login", headers=headers).clone(remote=remote)
    assert client_address(request) == client
