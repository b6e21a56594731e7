from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from subscriptions.core.models import SubscriptionState
from subscriptions.store.health import Health, disable_reason, load_health, queue_outcomes, shown_state

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
FIVE_DAYS_S = 5 * 86_400


@pytest.mark.parametrize(
    ("stored", "failing_since", "shown"),
    [
        (SubscriptionState.active, None, SubscriptionState.active),
        (SubscriptionState.active, T0, SubscriptionState.failing),
        (SubscriptionState.disabled, None, SubscriptionState.disabled),
        (SubscriptionState.disabled, T0, SubscriptionState.disabled),
    ],
)
def test_shown_state(stored: SubscriptionState, failing_since: datetime | None, shown: SubscriptionState) -> None:
    assert shown_state(stored, Health(failing_since=failing_since)) == shown


@pytest.mark.parametrize(
    ("failing_for", "disabled"),
    [(timedelta(0), False), (timedelta(days=4, hours=23), False), (timedelta(days=5), True), (timedelta(days=9), True)],
)
def test_disabled_after_sustained_failure(failing_for: timedelta, disabled: bool) -> None:
    reason = disable_reason(T0, T0 + failing_for, FIVE_DAYS_S)
    assert (reason is not None) is disabled
    if reason:
        assert reason == "no successful delivery since 2026-11-21T09:00:00+00:00 (5 days, RELAY_DISABLE_AFTER_S)"


@pytest.mark.parametrize(("attempts", "successes", "rate"), [(0, 0, None), (4, 1, 0.25), (100, 100, 1.0)])
def test_success_rate(attempts: int, successes: int, rate: float | None) -> None:
    assert Health(recent_attempts=attempts, recent_successes=successes).success_rate == rate


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


@pytest.mark.parametrize(
    ("batches", "failing_since", "rate"),
    [
        ([[(False, at(1))]], at(1), 0.0),
        ([[(False, at(1))], [(False, at(2))]], at(1), 0.0),  # still failing since the first failure
        ([[(False, at(1)), (True, at(2))]], None, 0.5),
        ([[(True, at(1)), (False, at(2)), (False, at(3))]], at(2), 1 / 3),
        ([[(False, at(1))], [(True, at(2)), (False, at(3))]], at(3), 1 / 3),  # a success restarts the spell
        ([[(True, at(1))]], None, 1.0),
    ],
)
async def test_outcomes_in_batches(
    redis_client: Redis,
    batches: list[list[tuple[bool, datetime]]],
    failing_since: datetime | None,
    rate: float,
) -> None:
    for batch in batches:
        async with redis_client.pipeline(transaction=True) as pipe:
            queue_outcomes(pipe, "sub_h", batch)
            await pipe.execute()
    (health,) = await load_health(redis_client, ["sub_h"])
    assert health.failing_since == failing_since
    assert health.success_rate == pytest.approx(rate)


async def test_the_success_rate_is_over_the_newest_100_attempts_however_they_were_batched(redis_client: Redis) -> None:
    older = [(False, at(0))] * 30
    batch = [(True, at(1))] * 120 + [(False, at(2))] * 25  # the newest 100: 75 successes, then 25 failures
    for outcomes in (older, batch):
        async with redis_client.pipeline(transaction=True) as pipe:
            queue_outcomes(pipe, "sub_h", outcomes)
            await pipe.execute()
    (health,) = await load_health(redis_client, ["sub_h"])
    assert health.recent_attempts == 100
    assert health.success_rate == pytest.approx(0.75)
    assert health.failing_since == at(2)
