"""How often each resource is really polled, and how late: the running mean as a table, then a real poller (the
sandbox, a real Redis) on a clock moved by hand, its polls started late or slowly as an overloaded worker would."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from relay.service import running
from relay.settings import Settings
from subscriptions.core.times import ms
from subscriptions.store.polls import PollPlan
from subscriptions.store.queue import DeliveryQueue
from tests.conftest import FakeClock
from tests.harness import Harness
from workers.cadence import behind_warning, mean_gap_s, poll_delay_s, record_start
from workers.metrics import Metrics
from workers.poller import Poller, PollPolicy

T0 = 1_800_000_000_000
TOKEN = "cadence-api-token-0123456789abcdefgh"


@pytest.mark.parametrize(
    ("mean", "previous_start", "previous_interval", "interval", "due", "started", "expected"),
    [
        (None, None, None, 10.0, T0, T0, None),  # the first poll: nothing to measure yet
        (None, T0, 10.0, 10.0, T0 + 10_000, T0 + 10_000, 10.0),  # the first gap is the mean
        (10.0, T0, 10.0, 10.0, T0 + 10_000, T0 + 13_000, 10.9),  # one slow poll: under 1.1 x
        (10.0, T0, 10.0, 10.0, T0 + 10_000, T0 + 15_000, 11.5),  # one very slow one: over it at once
        (15.0, T0, 10.0, 10.0, T0 + 10_000, T0 + 10_000, 13.5),  # back on time: the mean comes down
        (12.0, T0 + 9_000, 10.0, 10.0, T0 + 10_000, T0 + 19_000, 11.4),  # due soon after a late start
        (12.0, T0, 10.0, 10.0, 0, T0 + 2_000, 12.0),  # made due at once (hints waiting): left out
        (12.0, T0, 10.0, 10.0, T0 + 1_000, T0 + 1_000, 8.7),  # a PATCH made it due sooner: a real gap
        (12.0, T0, 10.0, 10.0, T0 + 60_000, T0 + 60_000, 12.0),  # postponed (an auth backoff): left out
        (12.0, T0, 10.0, 60.0, T0 + 10_000, T0 + 10_000, None),  # another interval: the mean starts again
        (12.0, T0, 10.0, 10.5, T0 + 10_000, T0 + 10_000, 11.4),  # the budget moved it a little: kept
    ],
)
def test_the_mean_gap(
    mean: float | None,
    previous_start: int | None,
    previous_interval: float | None,
    interval: float,
    due: int,
    started: int,
    expected: float | None,
) -> None:
    measured = mean_gap_s(
        mean,
        previous_start_ms=previous_start,
        previous_interval_s=previous_interval,
        interval_s=interval,
        due_ms=due,
        started_ms=started,
    )
    assert measured == expected


@pytest.mark.parametrize(
    ("due", "started", "delay"), [(T0, T0, 0.0), (T0, T0 + 4_250, 4.25), (T0, T0 - 5, 0.0), (0, T0, 0.0)]
)
def test_the_delay(due: int, started: int, delay: float) -> None:
    assert poll_delay_s(due, started) == delay


def test_the_warning_says_by_how_much_and_what_to_do() -> None:
    assert behind_warning("orders", 10.9, 10) is None
    assert behind_warning("orders", None, 10) is None
    assert behind_warning("orders", 14.62, 10) == (
        "orders is polled every 14.6 s instead of 10 s: the workers cannot keep up; add a worker "
        "(docs/operations.md#how-many-accounts-a-worker-carries)"
    )


def test_a_restarted_mean_shows_as_none_measured() -> None:
    plan = PollPlan(interval_s={"orders": 60.0}, polled_ms={"orders": T0}, poll_gap_s={"orders": 12.0})
    fields = record_start(plan, "orders", due_ms=T0 + 10_000, started_ms=T0 + 10_000, previous_interval_s=10.0)
    assert fields == {"orders:actual_poll_interval_s": "", "orders:poll_delay_s": "0"}
    assert (plan.polled_ms, plan.poll_gap_s) == ({"orders": T0 + 10_000}, {})


# --- a real poller --------------------------------------------------------------------------------------------


@dataclass
class Timed:
    """A poller on a clock moved by hand, and its account ``acme`` watching orders every 10 s."""

    harness: Harness
    clock: FakeClock
    poller: Poller
    registered_ms: int

    async def poll_at(self, seconds: float) -> dict[str, str]:
        """Run the account's poll job as the scheduler would, ``seconds`` after registration; its status after."""
        self.clock.now = datetime.fromtimestamp((self.registered_ms + seconds * 1000) / 1000, UTC)
        at_ms = ms(self.clock())
        (claim,) = await self.poller.polls.claim(now_ms=at_ms, lease_ms=10_000, limit=1, among=["acme"])
        await self.poller.poll(claim)
        return await self.harness.status()


@pytest.fixture
async def timed(harness: Harness) -> Timed:
    clock = FakeClock(datetime.fromtimestamp(int(datetime.now(UTC).timestamp()), UTC))
    await harness.register()
    account = await harness.store.get_account("acme")
    registered_ms = ms(clock())
    await harness.store.save_account(account.model_copy(update={"poll_interval_s": 10}), {}, registered_ms)
    poller = Poller(
        harness.store,
        DeliveryQueue(harness.redis),
        harness.redis,
        harness.http,
        PollPolicy(overlap_s=60, budget_per_minute=200),
        Metrics(),
        clock=clock,
        on_deliveries=lambda: None,
    )
    return Timed(harness, clock, poller, registered_ms)


def cadence(status: dict[str, str]) -> tuple[str, str]:
    return status["orders:actual_poll_interval_s"], status["orders:poll_delay_s"]


async def test_a_poll_started_late_shows_its_delay(timed: Timed) -> None:
    assert cadence(await timed.poll_at(4.0)) == ("", "4")  # due at registration; one poll: no interval yet
    assert cadence(await timed.poll_at(10.0)) == ("6", "0")  # on its cadence (due at 10 s), not 10 s after
    assert cadence(await timed.poll_at(22.5)) == ("7.95", "2.5")
    assert cadence(await timed.poll_at(30.0)) == ("7.815", "0")  # due at 30 s still: late polls push none back


async def test_a_worker_keeping_up_shows_the_interval_asked(timed: Timed) -> None:
    for n in range(5):
        status = await timed.poll_at(10.0 * n)
    assert cadence(status) == ("10", "0")


async def test_a_slow_cadence_shows_the_actual_interval(timed: Timed) -> None:
    delays = []
    for n in range(6):  # every 15 s, as a saturated worker gets to it
        status = await timed.poll_at(15.0 * n)
        delays.append(status["orders:poll_delay_s"])
    assert status["orders:actual_poll_interval_s"] == "15"
    # 5 s late, then 10 (a whole interval: the next is planned from then), and again
    assert delays == ["0", "5", "10", "5", "10", "5"]
    plan = await timed.poller.polls.plan("acme")
    assert plan.interval_s["orders"] == 10  # what the planner asks stays what it was


async def test_the_api_shows_the_actual_interval_and_warns(timed: Timed, redis_url: str) -> None:
    settings = Settings(redis_url=redis_url, api_token=SecretStr(TOKEN))
    async with running(settings, api=True, worker=False, api_port=0) as parts, aiohttp.ClientSession() as http:
        assert parts.api_url is not None

        async def shown() -> dict[str, Any]:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with http.get(f"{parts.api_url}/v1/accounts/acme", headers=headers) as answer:
                assert answer.status == 200
                view: dict[str, Any] = await answer.json()
                return view

        before = await shown()
        orders = before["status"]["resources"]["orders"]
        assert (orders["actual_poll_interval_s"], orders["poll_delay_s"]) == (None, None)  # never polled yet
        for n in range(3):
            await timed.poll_at(10.0 * n)
        on_time = await shown()
        orders = on_time["status"]["resources"]["orders"]
        assert (orders["effective_poll_interval_s"], orders["actual_poll_interval_s"]) == (10, 10)
        assert on_time["warnings"] == []
        for n in range(3, 7):  # the workers fall behind: every 14.6 s from here
            await timed.poll_at(20 + 14.6 * (n - 2))
        behind = await shown()
    orders = behind["status"]["resources"]["orders"]
    assert orders["effective_poll_interval_s"] == 10  # what the planner asks is unchanged...
    assert orders["actual_poll_interval_s"] == 13.495  # ...what happens is not (the mean nears 14.6)
    assert orders["poll_delay_s"] == 4.6
    assert behind["warnings"] == [
        "orders is polled every 13.5 s instead of 10 s: the workers cannot keep up; add a worker "
        "(docs/operations.md#how-many-accounts-a-worker-carries)"
    ]
