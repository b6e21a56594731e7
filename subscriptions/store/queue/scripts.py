"""The delivery queue's Lua scripts and their arguments: the keys each one touches, declared in ``KEYS`` (named
by ``subscriptions.store.keyspace``), and one JSON document naming the rest, built here from records and transitions.

Keys used by many items of a batch (a subscription's index, a status index) are declared once; an item names
each of its keys by its position in ``KEYS``. Stored texts (records' and attempts' JSON) follow the JSON argument
as they are, ``ARGV[2]`` onwards, each named by its position too: escaping them into the JSON argument, and
decoding them again in Lua, cost the commit and record paths about a third more CPU.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from subscriptions.core.envelope import NewEvent
from subscriptions.core.models import DeliveryStatus, EventRecord
from subscriptions.core.times import ms
from subscriptions.core.transitions import Transition
from subscriptions.store import keyspace
from subscriptions.store.lua import Script

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
    args = {"now_ms": ms(now), "lease_ms": lease_ms, "limit": limit}
    return [keyspace.DUE], args


def commit_args(
    planned: Sequence[tuple[NewEvent, Sequence[Transition]]], now: datetime
) -> tuple[list[str], dict[str, Any], list[str]]:
    """Keys, argument and texts of ``commit.lua``: events and their new deliveries (see ``transitions.created``), all
    created ``now``. (The hot path of every poll: keys an event or a delivery alone uses are declared without
    looking them up, and the shared ones once per account and per subscription and status.)"""
    key = KeyList(keyspace.EVENTS, keyspace.DELIVERIES, keyspace.DUE)
    names, blobs = key.names, [""]  # ARGV[1] is the JSON argument: texts start at ARGV[2]
    by_account: dict[str, tuple[int, int]] = {}
    by_subscription: dict[tuple[str, str], tuple[int, int]] = {}
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
        account = by_account.get(event.account)
        if account is None:
            account = by_account[event.account] = (
                key(keyspace.account_events(event.account)),
                key(keyspace.account_deliveries(event.account)),
            )
        names += (keyspace.event(event.id), keyspace.event_deliveries(event.id))
        event_key = len(names) - 1
        items = [_delivery_item(new, key, blobs, by_subscription) for new in deliveries]
        blobs.append(record.model_dump_json())
        events.append(
            {
                "id": event.id,
                "record": len(blobs),
                "key": event_key,
                "event_deliveries": event_key + 1,
                "account_events": account[0],
                "account_deliveries": account[1],
                "deliveries": items,
            }
        )
    return names, {"created_ms": ms(now), "events": events}, blobs[1:]


def _delivery_item(
    new: Transition, key: KeyList, blobs: list[str], by_subscription: dict[tuple[str, str], tuple[int, int]]
) -> dict[str, Any]:
    """One new delivery in ``commit.lua``'s argument: its record's text and key, and the indexes it joins."""
    delivery, moves = new.record, new.moves
    status = moves.joins or delivery.status
    shared = by_subscription.get((delivery.subscription, status))
    if shared is None:
        shared = by_subscription[delivery.subscription, status] = (
            key(keyspace.subscription_deliveries(delivery.subscription)),
            key(keyspace.status_deliveries(status)),
        )
    key.names.append(keyspace.delivery(delivery.id))
    blobs.append(delivery.model_dump_json())
    item = {
        "id": delivery.id,
        "record": len(blobs),
        "key": len(key.names),
        "subscription_deliveries": shared[0],
        "joins": shared[1],
    }
    if moves.due_ms is not None:
        item["due_ms"] = moves.due_ms
    return item


def apply_args(transitions: Sequence[Transition]) -> tuple[list[str], dict[str, Any], list[str]]:
    """Keys, argument and texts of ``apply.lua``: each transition's attempt, record and moves, in order. (The
    hot path of every recorded attempt: a delivery's own keys are declared without looking them up, the status
    indexes once each.)"""
    key = KeyList(keyspace.DUE)
    names, blobs = key.names, [""]  # ARGV[1] is the JSON argument: texts start at ARGV[2]
    statuses = {status: key(keyspace.status_deliveries(status)) for status in DeliveryStatus}
    items = []
    for change in transitions:
        record, moves, attempt = change
        names.append(keyspace.delivery(record.id))
        blobs.append(record.model_dump_json())
        item: dict[str, Any] = {"id": record.id, "record": len(blobs), "key": len(names)}
        if attempt is not None:
            names.append(keyspace.attempts(record.id))
            blobs.append(attempt.model_dump_json())
            item["attempt"], item["attempts"] = len(blobs), len(names)
        if moves.joins is not None:
            item["created_ms"] = ms(record.created_at)
            item["joins"] = statuses[moves.joins]
            if moves.leaves is not None:
                item["leaves"] = statuses[moves.leaves]
        if moves.due_ms is not None:
            item["due_ms"] = moves.due_ms
        items.append(item)
    return names, {"items": items}, blobs[1:]
