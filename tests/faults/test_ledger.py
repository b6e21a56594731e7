"""The fault suite's ledger counts what it says it counts (pure, no I/O)."""

from typing import Any

import pytest

from tests.faults.ledger import Ledger, change_key, format_table


def body(kind: str, resource_id: int, **data: Any) -> dict[str, Any]:
    return {"type": kind, "data": {"id": resource_id, **data}}


@pytest.mark.parametrize(
    ("webhook", "key"),
    [
        (body("order.created", 7), ("order.created", 7)),
        (
            body("order.modified.order-status", 7, changes={"orderStatus": {"after": {"orderStatusId": 4}}}),
            ("order.modified.order-status", 7, 4),
        ),
        (
            body("contact.modified", 9, resource={"communication": {"emails": {"PRI": {"email": "a@x"}}}}),
            ("contact.modified", 9, "a@x"),
        ),
        (
            body("order.modified", 7, changes={"reference": {"after": "R2"}}),
            ("order.modified", 7, '{"reference": "R2"}'),
        ),
    ],
)
def test_a_webhook_names_the_state_its_change_led_to(webhook: dict[str, Any], key: tuple[object, ...]) -> None:
    assert change_key(webhook) == key


def test_lost_duplicates_conflicts_and_extras() -> None:
    ledger = Ledger("case")
    ledger.made(("order.created", 1), ("order.created", 2), ("order.created", 3), path="a")
    ledger.expect_also(("order.created", 1), path="b")
    ledger.arrived("evt_1", body("order.created", 1), verified=True, path="a")
    ledger.arrived("evt_1", body("order.created", 1), verified=True, path="a")  # a duplicate: allowed
    ledger.arrived("evt_1", body("order.created", 1), verified=True, path="b")  # another subscription: no duplicate
    ledger.arrived("evt_2", body("order.created", 2), verified=True, path="a")
    ledger.arrived("evt_2b", body("order.created", 2), verified=False, path="a")  # the same change, another id
    ledger.arrived("evt_9", body("order.created", 9), verified=True, path="a")  # no such change made
    tally = ledger.tally()
    assert (tally.changes, tally.expected, tally.delivered, tally.lost) == (3, 4, 3, 1)
    assert (tally.duplicates, tally.conflicts, tally.extra, tally.unsigned) == (1, 1, 1, 1)
    assert ledger.missing() == [("a", ("order.created", 3))]
    assert ledger.seen(("order.created", 9))
    with pytest.raises(AssertionError, match="1 of 4 events never arrived"):
        ledger.check()
    header, rule, line = format_table([tally])
    assert header.split()[:3] == ["case", "changes", "expected"]
    assert len(rule) == len(header)
    assert line.split()[:8] == ["case", "3", "4", "3", "1", "1", "1", "1"]
