"""The connect flow's states in the real Redis: bound to one account, single-use, expiring, a few per account,
stored only as digests."""

from redis.asyncio import Redis

from subscriptions.store import keyspace
from subscriptions.store.oauth_states import MAX_PER_ACCOUNT, STATE_TTL_S, OAuthStates, account_of, digest

NOW_MS = 1_800_000_000_000


async def test_a_state_works_once_for_its_account(redis_client: Redis) -> None:
    states = OAuthStates(redis_client)
    state = await states.issue("acme", now_ms=NOW_MS)
    assert account_of(state) == "acme"
    assert await states.take(state, now_ms=NOW_MS + 1) == "acme"
    assert await states.take(state, now_ms=NOW_MS + 2) is None


async def test_only_a_digest_is_stored_and_it_expires_in_ten_minutes(redis_client: Redis) -> None:
    states = OAuthStates(redis_client)
    state = await states.issue("acme", now_ms=NOW_MS)
    stored = await redis_client.zrange(keyspace.oauth_states("acme"), 0, -1, withscores=True)
    assert stored == [(digest(state), float(NOW_MS + STATE_TTL_S * 1000))]
    assert state.partition(".")[2] not in str(stored)
    assert 0 < await redis_client.ttl(keyspace.oauth_states("acme")) <= STATE_TTL_S
    assert await states.take(state, now_ms=NOW_MS + STATE_TTL_S * 1000) is None  # at its expiry: refused
    fresh = await states.issue("acme", now_ms=NOW_MS)
    assert await states.take(fresh, now_ms=NOW_MS + STATE_TTL_S * 1000 - 1) == "acme"


async def test_a_state_is_bound_to_the_account_it_names(redis_client: Redis) -> None:
    states = OAuthStates(redis_client)
    state = await states.issue("acme", now_ms=NOW_MS)
    secret = state.partition(".")[2]
    assert await states.take(f"other.{secret}", now_ms=NOW_MS) is None  # another account's set: not there
    assert await states.take(state, now_ms=NOW_MS) == "acme"  # (and the attempt did not spend it)


async def test_nonsense_is_no_state(redis_client: Redis) -> None:
    states = OAuthStates(redis_client)
    for text in ("", "acme", "acme.", ".secret", "a" * 300 + ".x"):
        assert await states.take(text, now_ms=NOW_MS) is None


async def test_an_account_holds_a_few_states_and_the_oldest_go_first(redis_client: Redis) -> None:
    states = OAuthStates(redis_client)
    issued = [await states.issue("acme", now_ms=NOW_MS + i) for i in range(MAX_PER_ACCOUNT + 3)]
    assert await states.outstanding("acme") == MAX_PER_ACCOUNT
    assert await states.take(issued[0], now_ms=NOW_MS + 100) is None
    assert await states.take(issued[2], now_ms=NOW_MS + 100) is None
    assert await states.take(issued[3], now_ms=NOW_MS + 100) == "acme"
    assert await states.take(issued[-1], now_ms=NOW_MS + 100) == "acme"
