"""Signing secrets at rest, on a real Redis: sealed when written, opened when read, re-sealed at start."""

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from subscriptions.core.crypto import TokenCipher, TokenKeyError, generate_key
from subscriptions.core.models import SubscriptionRecord, SubscriptionState
from subscriptions.core.signing import new_secret
from subscriptions.store.records import Store
from tests.conftest import FakeClock

OLD, NEW, OTHER = generate_key(), generate_key(), generate_key()


def rotated(sub_id: str, clock: FakeClock) -> SubscriptionRecord:
    """A subscription with a current secret and a previous one still in its grace."""
    return SubscriptionRecord(
        id=sub_id,
        account="acme",
        url="https://example.com/hook",
        events=["*"],
        secret=new_secret(),
        previous_secret=new_secret(),
        previous_secret_valid_until=clock() + timedelta(hours=1),
        created_at=clock(),
        updated_at=clock(),
    )


async def stored(redis_client: Redis, sub_id: str) -> dict[str, Any]:
    raw = await redis_client.get(f"relay:sub:{sub_id}")
    assert raw is not None
    record: dict[str, Any] = json.loads(raw)
    return record


async def test_with_a_key_secrets_are_stored_sealed_and_every_read_opens_them(
    redis_client: Redis, clock: FakeClock
) -> None:
    store = Store(redis_client, TokenCipher([NEW]))
    sub = rotated("sub_a", clock)
    await store.create_subscription(sub)
    at_rest = await stored(redis_client, "sub_a")
    assert at_rest["secret"].startswith("enc:v1:")
    assert at_rest["previous_secret"].startswith("enc:v1:")
    assert sub.secret not in json.dumps(at_rest)
    assert str(sub.previous_secret) not in json.dumps(at_rest)

    reads = [
        await store.get_subscription("sub_a"),
        *(await store.load_subscriptions(["sub_a"])),
        *(await store.account_subscriptions("acme")),
        *(await store.list_subscriptions(limit=10, cursor=None)).items,
    ]
    assert [(r.secret, r.previous_secret) for r in reads if r] == [(sub.secret, sub.previous_secret)] * 4

    changed = sub.model_copy(update={"secret": new_secret(), "description": "saved"})
    await store.save_subscription(changed)
    assert TokenCipher([NEW]).decrypt((await stored(redis_client, "sub_a"))["secret"]) == changed.secret
    await store.reenable_subscription(changed)
    assert (await stored(redis_client, "sub_a"))["secret"].startswith("enc:v1:")
    assert (await store.get_subscription("sub_a")).secret == changed.secret


async def test_without_a_key_secrets_are_stored_as_they_are(redis_client: Redis, clock: FakeClock) -> None:
    sub = rotated("sub_a", clock)
    await Store(redis_client).create_subscription(sub)
    assert (await stored(redis_client, "sub_a"))["secret"] == sub.secret
    assert (await Store(redis_client).get_subscription("sub_a")).secret == sub.secret


async def test_a_sealed_subscription_is_disabled_and_deleted_without_the_key(
    redis_client: Redis, clock: FakeClock
) -> None:
    await Store(redis_client, TokenCipher([NEW])).create_subscription(rotated("sub_a", clock))
    before = await stored(redis_client, "sub_a")
    keyless = Store(redis_client)
    with pytest.raises(TokenKeyError, match="signing secret of subscription 'sub_a'"):
        await keyless.get_subscription("sub_a")
    assert await keyless.disable_subscription("sub_a", "410 Gone", clock())
    after = await stored(redis_client, "sub_a")
    assert after["state"] == SubscriptionState.disabled
    assert (after["secret"], after["previous_secret"]) == (before["secret"], before["previous_secret"])
    await keyless.delete_subscription("sub_a")
    assert not await redis_client.exists("relay:sub:sub_a")


async def test_reseal_encrypts_plain_and_old_key_secrets_leaves_current_ones_and_names_unreadable_ones(
    redis_client: Redis, clock: FakeClock
) -> None:
    subs = {name: rotated(f"sub_{name}", clock) for name in ("plain", "old", "current", "lost")}
    await Store(redis_client).create_subscription(subs["plain"])
    await Store(redis_client, TokenCipher([OLD])).create_subscription(subs["old"])
    await Store(redis_client, TokenCipher([NEW])).create_subscription(subs["current"])
    await Store(redis_client, TokenCipher([OTHER])).create_subscription(subs["lost"])
    current_before = await stored(redis_client, "sub_current")

    store = Store(redis_client, TokenCipher([NEW, OLD]))
    assert await store.reseal_subscription_secrets() == (2, ["sub_lost"])
    assert await stored(redis_client, "sub_current") == current_before  # already under the first key: untouched
    only_new = Store(redis_client, TokenCipher([NEW]))
    for name in ("plain", "old", "current"):
        opened = await only_new.get_subscription(f"sub_{name}")
        assert (opened.secret, opened.previous_secret) == (subs[name].secret, subs[name].previous_secret)
    assert await store.reseal_subscription_secrets() == (0, ["sub_lost"])  # nothing left to do


async def test_a_previous_secret_under_an_old_key_alone_is_resealed(redis_client: Redis, clock: FakeClock) -> None:
    sub = rotated("sub_a", clock)
    await Store(redis_client, TokenCipher([NEW])).create_subscription(sub)
    record = await stored(redis_client, "sub_a")
    record["previous_secret"] = TokenCipher([OLD]).encrypt(sub.previous_secret or "")
    await redis_client.set("relay:sub:sub_a", json.dumps(record))
    assert await Store(redis_client, TokenCipher([NEW, OLD])).reseal_subscription_secrets() == (1, [])
    assert (await Store(redis_client, TokenCipher([NEW])).get_subscription("sub_a")).previous_secret == (
        sub.previous_secret
    )


async def test_without_a_key_reseal_rewrites_nothing_and_names_sealed_secrets(
    redis_client: Redis, clock: FakeClock
) -> None:
    await Store(redis_client).create_subscription(rotated("sub_plain", clock))
    await Store(redis_client, TokenCipher([NEW])).create_subscription(rotated("sub_sealed", clock))
    plain_before = await stored(redis_client, "sub_plain")
    assert await Store(redis_client).reseal_subscription_secrets() == (0, ["sub_sealed"])
    assert await stored(redis_client, "sub_plain") == plain_before


async def test_processes_starting_together_reseal_each_subscription_once(redis_client: Redis, clock: FakeClock) -> None:
    subs = [rotated(f"sub_{n:03d}", clock) for n in range(40)]
    for sub in subs:
        await Store(redis_client).create_subscription(sub)
    results = await asyncio.gather(
        *(Store(redis_client, TokenCipher([NEW, OLD])).reseal_subscription_secrets() for _ in range(3))
    )
    assert sum(resealed for resealed, _ in results) == len(subs)
    assert all(unreadable == [] for _, unreadable in results)
    opened = await Store(redis_client, TokenCipher([NEW])).load_subscriptions([s.id for s in subs])
    assert [(o.secret, o.previous_secret) for o in opened if o] == [(s.secret, s.previous_secret) for s in subs]
