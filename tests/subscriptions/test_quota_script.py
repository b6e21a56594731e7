"""``sliding_window.lua`` run directly with fixed clocks: uses taken while the window has room, the wait until the
oldest leaves it, uses falling out as ``now_ms`` advances, and the pause a second key holds."""

from typing import Any

from redis.asyncio import Redis

from subscriptions.store import quotas
from subscriptions.store.lua import Script
from subscriptions.store.quotas import SlidingWindow

TAKE = Script.beside(quotas.__file__, "sliding_window.lua")
WINDOW = "relay:test:window"
PAUSE = "relay:test:pause"


async def take(redis: Redis, now_ms: int, member: str, *, limit: int = 2, pause: bool = False) -> int:
    args: dict[str, Any] = {"now_ms": now_ms, "window_ms": 60_000, "limit": limit, "member": member}
    return int(await TAKE.run(redis, [WINDOW, PAUSE] if pause else [WINDOW], args))


async def test_takes_while_there_is_room_then_says_when_the_oldest_leaves(redis_client: Redis) -> None:
    assert await take(redis_client, 1_000, "a") == 0
    assert await take(redis_client, 21_000, "b") == 0
    assert await redis_client.zrange(WINDOW, 0, -1, withscores=True) == [("a", 1_000.0), ("b", 21_000.0)]
    assert 59_000 < await redis_client.pttl(WINDOW) <= 60_000  # the window's key goes with its newest use

    assert await take(redis_client, 30_000, "c") == 31_000  # full: "a" leaves at 61,000
    assert await take(redis_client, 60_999, "c") == 1
    assert await redis_client.zcard(WINDOW) == 2  # nothing recorded when refused
    assert await take(redis_client, 61_000, "c") == 0  # "a" is out of the window now
    assert await redis_client.zrange(WINDOW, 0, -1) == ["b", "c"]


async def test_a_use_at_the_window_edge_still_counts(redis_client: Redis) -> None:
    assert await take(redis_client, 1_000, "a", limit=1) == 0
    assert await take(redis_client, 60_999, "b", limit=1) == 1  # at least 1 ms, never 0 while refused
    assert await take(redis_client, 61_000, "b", limit=1) == 0


async def test_a_pause_refuses_every_use_until_it_ends(redis_client: Redis) -> None:
    await redis_client.set(PAUSE, "1", px=5_000)
    wait_ms = await take(redis_client, 1_000, "a", pause=True)
    assert 4_000 < wait_ms <= 5_000  # the pause's time left, whatever the window holds
    assert not await redis_client.exists(WINDOW)
    assert await take(redis_client, 1_000, "a") == 0  # a window without the pause key does not honour it
    await redis_client.delete(PAUSE)
    assert await take(redis_client, 1_000, "b", pause=True) == 0


async def test_sliding_window_takes_and_gives_back(redis_client: Redis) -> None:
    window = SlidingWindow(redis_client, WINDOW, limit=1, window_ms=10_000)
    use = await window.take(1_000)
    assert (use.refused, use.member.startswith("1000-")) == (False, True)
    refused = await window.take(2_000)
    assert (refused.refused, refused.wait_ms) == (True, 9_000)
    await window.give_back(use)
    assert not (await window.take(2_000)).refused
