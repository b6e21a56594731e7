import re

import pytest

from subscriptions.core.ids import _base32, delivery_id, event_id, random_id


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


def test_ids_stay_what_earlier_versions_derived() -> None:
    # a change detected again after an upgrade must keep its id, or receivers would see it twice
    assert event_id("acme", "order.modified", 5, {"a": 1}) == "evt_kcka3d7c0n400gnr5bcch6yv7w"
    assert delivery_id("evt_1", "sub_1") == "dlv_wh1px0wd2sm2yqp8j5da3eh8q3"


@pytest.mark.parametrize("length", [1, 2, 7, 26])
def test_base32_digits_are_the_low_bits_most_significant_first(length: int) -> None:
    data = bytes(range(200, 232))
    number, expected = int.from_bytes(data, "big"), ""
    for _ in range(length):
        number, digit = divmod(number, 32)
        expected = "0123456789abcdefghjkmnpqrstvwxyz"[digit] + expected
    assert _base32(data, length) == expected


def test_delivery_id() -> None:
    assert delivery_id("evt_a", "sub_b") == delivery_id("evt_a", "sub_b")
    assert delivery_id("evt_a", "sub_b") != delivery_id("evt_a", "sub_c")
    assert delivery_id("evt_a", "sub_b").startswith("dlv_")


def test_random_ids_are_unique() -> None:
    ids = {random_id("sub") for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"sub_[0-9a-z]{26}", i) for i in ids)
