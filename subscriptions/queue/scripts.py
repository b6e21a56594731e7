"""The delivery queue's Lua scripts and their arguments: the keys each one touches, declared in ``KEYS`` (named
by ``subscriptions.keys``), and one JSON document naming the rest, built here from records and transitions.

Keys used by many items of a batch (a subscription's index, a status index) are declared once; an item names
each of its keys by its position in ``KEYS``.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from subscriptions import keys
from subscriptions.due import ms
from subscriptions.envelope import NewEvent
from subscriptions.lua import Script
from subscriptions.models import EventRecord
from subscriptions.queue.transitions import Transition

CLAIM = Script.beside(__file__, "claim.lua")
COMMIT = Script.beside(__file__, "commit.lua")
APPLY = Script.beside(__file__, "apply.lua")


class KeyList:
    """The ``KEYS`` of one script call: each name declared once, known by its (1-based) position."""

    def __init__(self, *fixed: str) -> None:
        self.names: list[str] = []
        self._at: dict[str, int] = {}
        for name in fixed:
            self(name)

    def __call__(self, name: str) -> int:
        at = self._at.get(name)
        if at is None:
            self.names.append(name)
            at = self._at[name] = len(self.names)
        return at


def claim_args(now: datetime, lease_ms: int, limit: int) -> tuple[list[str], dict[str, Any]]:
    """Keys and argument of ``claim.lua``."""
    args = {"now_ms": ms(now), "lease_ms": lease_ms, "limit": limit, "record_prefix": keys.delivery("")}
    return [keys.DUE], args


def commit_args(
    planned: Sequence[tuple[NewEvent, Sequence[Transition]]], now: datetime
) -> tuple[list[str], dict[str, Any]]:
    """Keys and argument of ``commit.lua``: events and their new deliveries (see ``transitions.created``), all
    created ``now``."""
    key = KeyList(keys.EVENTS, keys.DELIVERIES, keys.DUE)
    events = []
    for event, deliveries in planned:
        record = EventRecord(
            id=event.id,
            type=event.type,
            account=event.account,
            resource_id=event.resource_id,
            timestamp=event.timestamp,
            created_at=now,
            body=event.body,
        )
        items = []
        for new in deliveries:
            delivery, moves = new.record, new.moves
            item = {
                "id": delivery.id,
                "record": delivery.model_dump_json(),
                "key": key(keys.delivery(delivery.id)),
                "subscription_deliveries": key(keys.subscription_deliveries(delivery.subscription)),
                "joins": key(keys.status_deliveries(moves.joins or delivery.status)),
            }
            if moves.due_ms is not None:
                item["due_ms"] = moves.due_ms
            items.append(item)
        events.append(
            {
                "id": event.id,
                "record": record.model_dump_json(),
                "key": key(keys.event(event.id)),
                "account_events": key(keys.account_events(event.account)),
                "account_deliveries": key(keys.account_deliveries(event.account)),
                "event_deliveries": key(keys.event_deliveries(event.id)),
                "deliveries": items,
            }
        )
    return key.names, {"created_ms": ms(now), "events": events}


def apply_args(transitions: Sequence[Transition]) -> tuple[list[str], dict[str, Any]]:
    """Keys and argument of ``apply.lua``: each transition's attempt, record and moves, in order."""
    key = KeyList(keys.DUE)
    items = []
    for change in transitions:
        record, moves = change.record, change.moves
        item: dict[str, Any] = {
            "id": record.id,
            "record": record.model_dump_json(),
            "key": key(keys.delivery(record.id)),
            "created_ms": ms(record.created_at),
        }
        if change.attempt is not None:
            item["attempt"] = change.attempt.model_dump_json()
            item["attempts"] = key(keys.attempts(record.id))
        if moves.leaves is not None:
            item["leaves"] = key(keys.status_deliveries(moves.leaves))
        if moves.joins is not None:
            item["joins"] = key(keys.status_deliveries(moves.joins))
        if moves.due_ms is not None:
            item["due_ms"] = moves.due_ms
        items.append(item)
    return key.names, {"items": items}
