import re

import pytest

from subscriptions.ids import delivery_id, event_id, random_id


def test_event_id_is_derived_from_what_changed() -> None:
    first = event_id("acme", "order.created", 1234)
    assert first == event_id("acme", "order.created", 1234)  # seen twice, same id
    assert re.fullmatch(r"evt_[0-9a-z]{26}", first)


@pytest.mark.parametrize(
    ("args"),
    [
        ("beta", "order.created", 1234),
        ("acme", "order.modified", 1234),
        ("acme", "order.created", 1235),
        ("acme", "order.created", "1234x"),
    ],
)
def test_event_id_differs_when_anything_differs(args: tuple[str, str, int]) -> None:
    assert event_id(*args) != event_id("acme", "order.created", 1234)


def test_modified_events_depend_on_the_state_after() -> None:
    a = event_id("acme", "order.modified.order-status", 7, {"orderStatusId": 4})
    b = event_id("acme", "order.modified.order-status", 7, {"orderStatusId": 5})
    assert a != b
    # key order does not matter, the state does
    one, other = {"a": 1, "b": 2}, {"b": 2, "a": 1}
    assert event_id("acme", "order.modified", 7, one) == event_id("acme", "order.modified", 7, other)


def test_field_boundaries_cannot_collide() -> None:
    assert event_id("ac", "me.order.created", 1) != event_id("acme", ".order.created", 1)


def test_delivery_id() -> None:
    assert delivery_id("evt_a", "sub_b") == delivery_id("evt_a", "sub_b")
    assert delivery_id("evt_a", "sub_b") != delivery_id("evt_a", "sub_c")
    assert delivery_id("evt_a", "sub_b").startswith("dlv_")


def test_random_ids_are_unique() -> None:
    ids = {random_id("sub") for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"sub_[0-9a-z]{26}", i) for i in ids)
