"""Changing a sandbox account: a clock that drifts (gains or loses seconds every minute, continuously), a token
replaced in Brightpearl."""

from datetime import UTC, datetime, timedelta

import pytest

from relay.sandbox.drift import DriftingClock, drift_of, drifting
from tests.sandbox.conftest import Client, WallClock

START = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("drift_s_per_min", "after_s", "shown_s"),
    [
        (0.0, 60, 60),
        (6.0, 60, 66),  # six seconds a minute fast
        (-6.0, 60, 54),
        (30.0, 120, 180),
        (-30.0, 120, 60),  # half speed, still forwards
        (6.0, 0, 0),
    ],
)
def test_a_drifting_clock_gains_its_drift_every_minute(drift_s_per_min: float, after_s: int, shown_s: int) -> None:
    wall = WallClock(START)
    clock = drifting(wall, drift_s_per_min)
    wall.advance(after_s)
    assert clock() == START + timedelta(seconds=shown_s)
    assert drift_of(clock) == drift_s_per_min


def test_changing_the_drift_keeps_time_continuous() -> None:
    wall = WallClock(START)
    fast = drifting(wall, 12.0)
    wall.advance(60)
    assert fast() == START + timedelta(seconds=72)
    slow = drifting(fast, -12.0)  # from here on it loses; what it gained so far stays
    assert slow() == START + timedelta(seconds=72)
    assert slow.base is wall  # drifts do not stack: the new one wraps the underlying clock
    wall.advance(60)
    assert slow() == START + timedelta(seconds=72 + 48)
    stopped = drifting(slow, 0.0)
    wall.advance(60)
    assert stopped() == START + timedelta(seconds=72 + 48 + 60)
    assert drift_of(wall) == 0.0


def test_a_drift_of_a_minute_a_minute_is_refused() -> None:
    with pytest.raises(ValueError, match="at most 30"):
        drifting(WallClock(START), -60.0)
    assert isinstance(drifting(WallClock(START), 30.0), DriftingClock)


async def test_the_control_api_sets_a_drift_and_new_records_carry_the_drifted_time(
    client: Client, wall_clock: WallClock
) -> None:
    reply = await client.control("PATCH", "/accounts/acme", {"clock_drift_s_per_min": 6, "clock_skew_s": 30})
    assert reply.status == 200, reply.text
    assert (reply.body["clock_drift_s_per_min"], reply.body["clock_skew_s"]) == (6, 30)
    assert reply.body["now"] == "2026-11-26T10:00:30Z"
    wall_clock.advance(600)  # ten minutes: a minute gained, on top of the skew
    created = await client.control("POST", "/accounts/acme/orders", {})
    assert created.body["created_on"] == "2026-11-26T10:11:30Z"
    answer = await client.search(columns="createdOn")
    assert answer["response"]["results"] == [["2026-11-26T04:11:30.000-06:00"]]
    shown = (await client.control("GET", "/accounts/acme")).body
    assert (shown["clock_drift_s_per_min"], shown["now"]) == (6, "2026-11-26T10:11:30Z")
    stopped = await client.control("PATCH", "/accounts/acme", {"clock_drift_s_per_min": 0})
    wall_clock.advance(60)
    assert stopped.body["clock_drift_s_per_min"] == 0
    assert (await client.control("GET", "/accounts/acme")).body["now"] == "2026-11-26T10:12:30Z"
    kiwi = (await client.control("GET", "/accounts/kiwi")).body
    assert (kiwi["clock_drift_s_per_min"], kiwi["now"]) == (0, "2026-11-26T10:11:00Z")


@pytest.mark.parametrize("drift", [31, -31, "fast"])
async def test_a_drift_out_of_bounds_is_a_400(client: Client, drift: object) -> None:
    reply = await client.control("PATCH", "/accounts/acme", {"clock_drift_s_per_min": drift})
    assert reply.status == 400, reply.text


async def test_a_replaced_token_makes_the_old_one_answer_401(client: Client) -> None:
    old = client.credentials()
    reply = await client.control("PATCH", "/accounts/acme", {"account_token": "new-token", "staff_token": "new-staff"})
    assert (reply.status, reply.body["account_token"], reply.body["staff_token"]) == (200, "new-token", "new-staff")
    assert (await client.bp("GET", "order-service/order/1", headers=old)).status == 401
    assert (await client.bp("GET", "order-service/order/1")).status == 200  # the account's credentials: the new ones
