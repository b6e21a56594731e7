import pytest

from subscriptions.errors import InvalidInput
from subscriptions.events import EVENT_TYPES, matches_any, pattern_matches, validate_patterns


@pytest.mark.parametrize(
    ("pattern", "event", "matches"),
    [
        ("order.created", "order.created", True),
        ("order.created", "order.created.x", False),
        ("order.*", "order.created", True),
        ("order.*", "order.modified.order-status", True),  # '*' crosses dots
        ("order.*", "orders.created", False),
        ("*", "goods-out-note.modified.shipped", True),
        ("*.created", "contact.created", True),
        ("goods-out-note.modified.*", "goods-out-note.modified.packed", True),
        ("goods-out-note.modified.*", "goods-out-note.created", False),
        ("order.modified", "order.modified.order-status", False),  # exact names are exact
        ("product.*modified", "product.modified", True),
    ],
)
def test_pattern_matches(pattern: str, event: str, matches: bool) -> None:
    assert pattern_matches(pattern, event) is matches


def test_matches_any() -> None:
    assert matches_any(["contact.*", "order.created"], "order.created")
    assert not matches_any(["contact.*"], "order.created")


def test_validate_patterns_keeps_order_and_drops_duplicates() -> None:
    assert validate_patterns(["order.*", "order.created", "order.*"]) == ["order.*", "order.created"]


@pytest.mark.parametrize("pattern", ["order.deleted", "orders.*", "", "ORDER.created", "order created", "x*"])
def test_patterns_matching_no_event_are_refused(pattern: str) -> None:
    with pytest.raises(InvalidInput, match="matches no event"):
        validate_patterns([pattern])


def test_at_least_one_pattern() -> None:
    with pytest.raises(InvalidInput, match="at least one"):
        validate_patterns([])


def test_the_contract_table() -> None:
    assert set(EVENT_TYPES) == {
        "order.created",
        "order.modified.order-status",
        "order.modified",
        "product.modified.on-hand-modified",
        "goods-out-note.created",
        "goods-out-note.modified.printed",
        "goods-out-note.modified.picked",
        "goods-out-note.modified.packed",
        "goods-out-note.modified.shipped",
        "product.created",
        "product.modified",
        "contact.created",
        "contact.modified",
        "ping",
    }
