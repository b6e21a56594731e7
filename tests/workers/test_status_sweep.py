"""Order status changes that do not move ``updatedOn`` (API.md 8: unconfirmed), against the sandbox doing both, and
with a real Redis: the status sweep delivers what the orders poll cannot see, and adds nothing to what it can."""

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from subscriptions.store import keyspace
from tests.harness import Harness, now
from workers.brightpearl.timestamps import parse_timestamp
from workers.records import ORDERS, modified_events
from workers.status_sweep import STATE_KEY, StatusSweepState, assumed_before, changed_statuses

STATUS = "order.modified.order-status"


def corrections(harness: Harness) -> float:
    value = harness.poller.metrics.registry.get_sample_value("relay_status_sweep_corrections_total")
    return value or 0.0


def sweep_every_poll(harness: Harness) -> None:
    harness.poller.policy = replace(harness.poller.policy, status_sweep_interval_s=0)


async def status_moves_updated_on(harness: Harness, moves: bool) -> None:
    await harness.sandbox_call("PATCH", "", {"status_moves_updated_on": moves})


async def put_status(harness: Harness, order_id: int, status_id: int) -> dict[str, Any]:
    return dict(await harness.sandbox_call("PUT", f"/orders/{order_id}/status", {"status_id": status_id}))


async def event_ids(harness: Harness, event_type: str) -> list[str]:
    page = await harness.store.list_events(limit=1000, cursor=None, account="acme", type_=event_type)
    return [event.id for event in reversed(page.items)]


async def test_a_status_change_that_leaves_updated_on_alone_is_delivered_once_by_the_sweep(harness: Harness) -> None:
    sweep_every_poll(harness)
    await status_moves_updated_on(harness, False)
    await harness.register()
    (order_id,) = await harness.create_orders(1)
    await harness.poll()
    assert await harness.emitted() == [order_id]
    changed = await put_status(harness, order_id, 4)
    assert (changed["version"], changed["updated_on"]) == (1, None)  # nothing an updatedOn stream could see
    await harness.poll()
    await harness.poll()
    [event] = await harness.bodies(STATUS)
    assert event["data"]["changes"] == {
        "orderStatus": {"before": {"orderStatusId": 3, "name": "New phone order"}, "after": changed_status(changed)}
    }
    assert event["data"]["resource"]["orderStatus"]["orderStatusId"] == 4
    assert parse_timestamp(event["timestamp"])  # when the relay saw it: never empty
    assert await harness.bodies("order.modified") == []
    assert corrections(harness) == 1
    back = await put_status(harness, order_id, 3)  # back again, still without a new version: a new event, a new id
    await harness.poll()
    await harness.poll()
    ids = await event_ids(harness, STATUS)
    assert len(ids) == len(set(ids)) == 2
    assert (await harness.bodies(STATUS))[-1]["data"]["changes"]["orderStatus"]["after"] == changed_status(back)
    assert corrections(harness) == 2


def changed_status(answer: dict[str, Any]) -> dict[str, Any]:
    return {"orderStatusId": answer["status_id"], "name": answer["name"]}


async def test_a_status_change_that_moves_updated_on_is_the_polls_and_the_sweep_adds_nothing(
    harness: Harness,
) -> None:
    sweep_every_poll(harness)
    await harness.register()
    (order_id,) = await harness.create_orders(1)
    await harness.poll()
    changed = await put_status(harness, order_id, 4)
    assert changed["version"] == 2
    await harness.poll()
    await harness.poll()
    [event] = await harness.bodies(STATUS)
    assert event["data"]["changes"]["orderStatus"]["after"] == changed_status(changed)
    assert parse_timestamp(event["timestamp"]) == parse_timestamp(changed["updated_on"])  # Brightpearl's stamp
    assert corrections(harness) == 0
    state = StatusSweepState.parse(await harness.store.get_position("acme", STATE_KEY))
    assert state.last_corrections == 0
    assert state.last_completed_at is not None


async def test_an_order_from_before_registration_is_known_by_its_listed_status(harness: Harness) -> None:
    sweep_every_poll(harness)
    await status_moves_updated_on(harness, False)
    (order_id,) = await harness.create_orders(1)
    await harness.register()
    await harness.poll()  # the first poll: the first sweep is an interval (here none) away
    assert await harness.redis.hgetall(keyspace.order_statuses("acme")) == {}
    await harness.poll()  # no snapshot of it: the sweep remembers its status
    assert await harness.redis.hgetall(keyspace.order_statuses("acme")) == {str(order_id): "3"}
    changed = await put_status(harness, order_id, 4)
    await harness.poll()
    await harness.poll()
    [event] = await harness.bodies(STATUS)
    assert event["data"]["changes"]["orderStatus"] == {
        "before": {"orderStatusId": 3},  # the search named only the statuses orders hold now
        "after": changed_status(changed),
    }
    assert await harness.bodies("order.modified") == []  # nothing else is known to have changed
    assert corrections(harness) == 1


async def test_the_sweep_waits_its_interval_and_lets_the_poll_have_the_budget(harness: Harness) -> None:
    await status_moves_updated_on(harness, False)
    await harness.register()
    (order_id,) = await harness.create_orders(1)
    await harness.poll()
    state = StatusSweepState.parse(await harness.store.get_position("acme", STATE_KEY))
    assert state.last_completed_at is None
    assert state.due_ms // 1000 - int(now().timestamp()) in range(298, 301)  # the first sweep: 300 s after
    await put_status(harness, order_id, 4)
    await harness.poll()
    assert await harness.bodies(STATUS) == []  # the next sweep is 300 s away
    await harness.redis.set(keyspace.position("acme", STATE_KEY), StatusSweepState().text())  # due now
    budget = harness.poller.budgets.of("acme")
    for _ in range(int(budget.per_minute * 0.5)):
        await budget.acquire(max_wait_s=1, priority="high")  # others used half the budget in the last minute
    await harness.poll()
    assert await harness.bodies(STATUS) == []  # the sweep waits for room
    assert StatusSweepState.parse(await harness.store.get_position("acme", STATE_KEY)).due_ms == 0
    await harness.redis.delete(keyspace.budget("acme"))  # a minute later
    await harness.poll()
    assert len(await harness.bodies(STATUS)) == 1
    assert corrections(harness) == 1


@pytest.mark.parametrize(
    ("listed", "in_snapshots", "seen", "changed"),
    [
        pytest.param({1: 2, 2: 3}, {1: 2, 2: 3}, {}, [], id="as-snapshotted"),
        pytest.param({1: 4, 2: 3}, {1: 2, 2: 3}, {1: 4}, [1], id="the-snapshot-decides-where-there-is-one"),
        pytest.param({1: 4}, {}, {1: 2}, [1], id="else-what-the-sweep-saw"),
        pytest.param({1: 4}, {}, {1: 4}, [], id="seen-alike"),
        pytest.param({1: 4, 7: 1}, {}, {}, [], id="first-sight-is-no-change"),
        pytest.param({1: 4}, {1: None}, {1: 2}, [], id="a-snapshot-without-a-status-is-no-evidence"),
    ],
)
def test_changed_statuses(
    listed: dict[int, int], in_snapshots: dict[int, int | None], seen: dict[int, int], changed: list[int]
) -> None:
    assert changed_statuses(listed, in_snapshots, seen) == changed


def test_assumed_before_names_the_old_status_when_the_search_did() -> None:
    order = {"id": 3, "orderStatus": {"orderStatusId": 4, "name": "Invoiced"}, "reference": "x"}
    named = assumed_before(order, 1, {"1": "Draft / Quote", "4": "Invoiced"})
    assert named == order | {"orderStatus": {"orderStatusId": 1, "name": "Draft / Quote"}}
    assert assumed_before(order, 9, {})["orderStatus"] == {"orderStatusId": 9}


def test_a_silent_status_change_has_an_id_of_its_own_and_the_time_it_was_seen() -> None:
    seen = datetime(2026, 12, 3, 18, 0, 5, tzinfo=UTC)
    order = {"id": 5, "version": 2, "updatedOn": "2026-12-03T17:00:00Z", "orderStatus": {"orderStatusId": 3}}
    moved = modified_events(
        "acme", ORDERS, order | {"version": 1, "orderStatus": {"orderStatusId": 1}}, order, seen_at=seen
    )
    silent = modified_events("acme", ORDERS, order | {"orderStatus": {"orderStatusId": 4}}, order, seen_at=seen)
    back = modified_events("acme", ORDERS, order, order | {"orderStatus": {"orderStatusId": 4}}, seen_at=seen)
    assert [e.type for e in moved + silent + back] == [STATUS] * 3
    assert len({e.id for e in moved + silent + back}) == 3  # one version, three changes
    assert moved[0].timestamp == "2026-12-03T17:00:00Z"  # Brightpearl's stamp, where it moved
    assert silent[0].timestamp == back[0].timestamp == "2026-12-03T18:00:05Z"  # else when the relay saw it
    again = modified_events(
        "acme", ORDERS, order | {"version": 1, "orderStatus": {"orderStatusId": 1}}, order, seen_at=seen
    )
    assert again[0].id == moved[0].id  # a change that moved the version keeps the id it always had
