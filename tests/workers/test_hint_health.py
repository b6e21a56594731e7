"""Hint health: the judge of a lane as a table, and against the sandbox with the real poller: a change no hint
announced is a suspect, then a miss, the lane degraded (its asked interval again), healthy again later; a hint
slower than the poll is no miss; the safety interval applies only to covered, healthy resources."""

from datetime import UTC, datetime, timedelta

import pytest

from subscriptions.core.times import ms
from subscriptions.store.polls import HintLane
from tests.harness import Harness
from tests.workers.test_hint_reads import hint, job, register_hinted
from workers.hint_health import (
    GRACE_MS,
    MAX_SUSPECTS,
    SLACK_MS,
    degradation_ms,
    due_suspects,
    judged,
    suspected,
)
from workers.plan import with_safety_net

T = 1_800_000_000_000
HOUR_MS = 3_600_000


@pytest.mark.parametrize(
    ("degradations", "expected_ms"),
    [(0, 300_000), (1, 600_000), (2, 1_200_000), (3, 2_400_000), (4, HOUR_MS), (40, HOUR_MS)],
)
def test_a_degradation_lasts_longer_each_time_in_a_row(degradations: int, expected_ms: int) -> None:
    assert degradation_ms(degradations) == expected_ms


@pytest.mark.parametrize(
    ("lane", "hinted", "now_ms", "state", "misses", "change", "left"),
    [
        # too young to judge: kept
        (HintLane(suspects={"7": T}), {}, T + GRACE_MS - 1, "healthy", 0, None, {"7": T}),
        # never hinted: a miss
        (HintLane(suspects={"7": T}), {}, T + GRACE_MS, "degraded", 1, "degraded", {}),
        # hinted after the poll found it: slower than the poll, announced
        (HintLane(suspects={"7": T}), {7: T + 2_000}, T + GRACE_MS, "healthy", 0, None, {}),
        # hinted a little before (within the slack): announced
        (HintLane(suspects={"7": T}), {7: T - SLACK_MS}, T + GRACE_MS, "healthy", 0, None, {}),
        # hinted long before: an older change's hint, this one missed
        (HintLane(suspects={"7": T}), {7: T - SLACK_MS - 1}, T + GRACE_MS, "degraded", 1, "degraded", {}),
        # degraded, no miss, before recovery: still degraded
        (
            HintLane(state="degraded", since_ms=T, recover_at_ms=T + 300_000, degradations=1),
            {},
            T + 1,
            "degraded",
            0,
            None,
            {},
        ),
        # degraded, no miss until recover_at: healthy again
        (
            HintLane(state="degraded", since_ms=T, recover_at_ms=T + 300_000, degradations=1),
            {},
            T + 300_000,
            "healthy",
            0,
            "recovered",
            {},
        ),
    ],
)
def test_judging_a_lane(
    lane: HintLane,
    hinted: dict[int, int],
    now_ms: int,
    state: str,
    misses: int,
    change: str | None,
    left: dict[str, int],
) -> None:
    verdict = judged(lane, hinted, now_ms)
    assert (verdict.lane.state, verdict.misses, verdict.change, verdict.lane.suspects) == (state, misses, change, left)


def test_a_degradation_and_its_recovery_in_full() -> None:
    lane = HintLane(since_ms=T, suspects={"1": T, "2": T})
    degraded = judged(lane, {1: T + 1}, T + GRACE_MS).lane
    assert degraded.model_dump() == {
        "state": "degraded",
        "since_ms": T + GRACE_MS,
        "recover_at_ms": T + GRACE_MS + 300_000,
        "misses": 1,
        "last_miss_ms": T + GRACE_MS,
        "degradations": 1,
        "suspects": {},
    }
    # a miss while degraded starts the wait again, no new degradation
    again = judged(degraded.model_copy(update={"suspects": {"3": T + 60_000}}), {}, T + 100_000)
    assert again.change is None
    assert again.misses == 1
    assert (again.lane.degradations, again.lane.recover_at_ms) == (1, T + 100_000 + 300_000)
    recovered = judged(again.lane, {}, T + 400_000)
    assert (recovered.change, recovered.lane.state, recovered.lane.degradations) == ("recovered", "healthy", 1)
    # a second degradation soon after lasts twice as long
    second = judged(recovered.lane.model_copy(update={"suspects": {"4": T + 500_000}}), {}, T + 520_000)
    assert (second.change, second.lane.recover_at_ms, second.lane.degradations) == (
        "degraded",
        T + 520_000 + 600_000,
        2,
    )
    # after a healthy hour, degradations no longer count as in a row
    healthy = judged(second.lane, {}, T + 520_000 + 600_000).lane
    assert healthy.degradations == 2
    assert judged(healthy, {}, healthy.since_ms + HOUR_MS).lane.degradations == 0


def test_suspects_are_bounded_and_keep_their_first_time() -> None:
    lane = suspected(HintLane(), {i: T + i for i in range(MAX_SUSPECTS + 20)})
    assert len(lane.suspects) == MAX_SUSPECTS
    assert "0" not in lane.suspects
    again = suspected(lane, {MAX_SUSPECTS + 19: T + 10**6})
    assert again.suspects[str(MAX_SUSPECTS + 19)] == T + MAX_SUSPECTS + 19
    assert due_suspects(again, T + 20 + GRACE_MS) == list(range(20, 21))


@pytest.mark.parametrize(
    ("healthy", "expected"),
    [
        ({"orders", "stock"}, {"orders": 60.0, "stock": 60.0, "contacts": 5.0}),
        ({"orders"}, {"orders": 60.0, "stock": 1.0, "contacts": 5.0}),
        (set(), {"orders": 1.0, "stock": 1.0, "contacts": 5.0}),
        ({"contacts"}, {"orders": 1.0, "stock": 1.0, "contacts": 60.0}),
    ],
)
def test_the_safety_net_interval(healthy: set[str], expected: dict[str, float]) -> None:
    assert with_safety_net({"orders": 1.0, "stock": 1.0, "contacts": 5.0}, healthy, 60.0) == expected
    assert with_safety_net({"orders": 120.0}, {"orders"}, 60.0) == {"orders": 120.0}  # asked slower stays


class ShiftedClock:
    """The real time, moved on by hand (the sandbox keeps the real time)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


def sample(harness: Harness, name: str) -> float:
    value = harness.poller.metrics.registry.get_sample_value(name, {"resource": "orders"})
    return value or 0.0


async def lane(harness: Harness) -> HintLane:
    return (await harness.poller.polls.plan("acme")).hints["orders"]


async def test_the_safety_interval_applies_when_covered_and_healthy(harness: Harness) -> None:
    await register_hinted(harness, ["orders"])
    await harness.poll()
    assert (await harness.poller.polls.plan("acme")).interval_s == {"orders": 60.0}
    plan = await harness.poller.polls.plan("acme")
    plan.hints["orders"] = HintLane(state="degraded", recover_at_ms=ms(datetime.now(UTC)) + 600_000)
    await harness.poller.polls.save("acme", plan, idle_ms=0, claim=None)
    await harness.poll()
    assert (await harness.poller.polls.plan("acme")).interval_s == {"orders": 1.0}


async def test_no_safety_interval_when_not_covered(harness: Harness) -> None:
    await register_hinted(harness, ["orders"], covered=False)
    await harness.poll()
    plan = await harness.poller.polls.plan("acme")
    assert (plan.interval_s, plan.hints) == ({"orders": 1.0}, {})


async def test_a_dropped_hint_is_a_suspect_then_a_miss_then_degraded_then_healthy(harness: Harness) -> None:
    clock = ShiftedClock()
    harness.poller.clock = clock
    await register_hinted(harness, ["orders"])
    await harness.poll()
    (order_id,) = await harness.create_orders(1)  # its hint is dropped
    await harness.poll()
    assert await harness.emitted() == [order_id]
    assert list((await lane(harness)).suspects) == [str(order_id)]
    clock.advance(GRACE_MS / 1000 + 1)
    await harness.poll()
    judged_lane = await lane(harness)
    assert (judged_lane.state, judged_lane.misses, judged_lane.suspects) == ("degraded", 1, {})
    assert sample(harness, "relay_hint_misses_total") == 1
    assert sample(harness, "relay_hint_degradations_total") == 1
    assert (await harness.status())["hints:state"] == "degraded"
    await harness.poll()
    assert (await harness.poller.polls.plan("acme")).interval_s == {"orders": 1.0}  # the asked interval again
    clock.advance(degradation_ms(0) / 1000)
    await harness.poll()
    assert (await lane(harness)).state == "healthy"
    assert sample(harness, "relay_hint_degradations_total") == 1
    await harness.poll()
    assert (await harness.poller.polls.plan("acme")).interval_s == {"orders": 60.0}
    assert (await harness.status())["hints:state"] == "healthy"


async def test_a_hint_slower_than_the_poll_is_not_a_miss(harness: Harness) -> None:
    clock = ShiftedClock()
    harness.poller.clock = clock
    await register_hinted(harness, ["orders"])
    await harness.poll()
    (order_id,) = await harness.create_orders(1)
    await harness.poll()  # the poll found it first
    assert list((await lane(harness)).suspects) == [str(order_id)]
    clock.advance(2)
    await hint(harness, "orders", [order_id])  # the hint comes late
    await job(harness)
    assert await harness.emitted() == [order_id]  # its read found nothing new
    clock.advance(GRACE_MS / 1000)
    await harness.poll()
    judged_lane = await lane(harness)
    assert (judged_lane.state, judged_lane.misses, judged_lane.suspects) == ("healthy", 0, {})
    assert sample(harness, "relay_hint_misses_total") == 0


async def test_a_change_a_hint_read_first_is_no_suspect(harness: Harness) -> None:
    await register_hinted(harness, ["orders"])
    await harness.poll()
    (order_id,) = await harness.create_orders(1)
    await hint(harness, "orders", [order_id])
    await job(harness)
    await harness.poll()
    assert (await lane(harness)).suspects == {}
