"""What a webhook says: an event as a detector or a ping makes it, before it is stored and fanned out.

Every event is made by :func:`build_event`, which alone decides the three things a receiver relies on: the id
(derived from what changed, so the same change detected twice keeps it; see :func:`subscriptions.core.ids.event_id`),
the timestamp's form (:func:`format_timestamp`) and the body, ``{"type", "timestamp", "data"}`` serialised once
(:func:`event_body`). Detectors describe a change to a Brightpearl resource with :func:`resource_event`, which
also writes the ``data`` every such event shares; the API's test event is :func:`ping_event`. Pure: no clock,
no randomness, no I/O (a ping's random id is passed in).
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from subscriptions.core import ids
from subscriptions.core.events import EVENT_TYPES

PING = "ping"
PING_MESSAGE = "a test webhook from the relay"
_KNOWN_TYPES = frozenset(EVENT_TYPES)


@dataclass(frozen=True)
class NewEvent:
    """An event as detected, before it is stored."""

    id: str
    type: str
    account: str
    resource_id: int | str | None
    timestamp: str
    body: str


def format_timestamp(value: datetime) -> str:
    """``2026-11-26T10:15:02Z`` (milliseconds only when there are any): the form the relay sends and shows."""
    value = value.astimezone(UTC)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def event_body(event_type: str, timestamp: str, data: dict[str, Any]) -> str:
    """The JSON text of a webhook: ``{"type", "timestamp", "data"}``, serialised once for every delivery."""
    return json.dumps({"type": event_type, "timestamp": timestamp, "data": data}, separators=(",", ":"))


def build_event(
    *,
    account: str,
    event_type: str,
    resource_id: int | str | None,
    at: datetime,
    data: dict[str, Any],
    state_after: object = None,
    event_id: str | None = None,
) -> NewEvent:
    """The event of ``event_type`` (one of :data:`~subscriptions.core.events.EVENT_TYPES`) that happened ``at``.

    Its id derives from (account, type, resource id) and, when given, ``state_after``: the state after the
    change, whatever tells two changes to one resource apart. Only an event that is no change (a ping) brings
    its own ``event_id``. ``at`` is always a real time: Brightpearl's stamp of the change, or, where Brightpearl
    gives none, the time the relay saw it; a receiver parses ``timestamp`` as the UTC time it documents, so it is
    never empty.
    """
    if event_type not in _KNOWN_TYPES:
        raise ValueError(f"{event_type!r} is not an event the relay sends (subscriptions.core.events.EVENT_TYPES)")
    if event_id is None:
        if resource_id is None:
            raise ValueError(f"a {event_type!r} event without a resource id needs an event id of its own")
        event_id = ids.event_id(account, event_type, resource_id, state_after)
    if not isinstance(at, datetime):
        raise TypeError(f"a {event_type!r} event needs the time it happened, not {at!r}")
    timestamp = format_timestamp(at)
    return NewEvent(event_id, event_type, account, resource_id, timestamp, event_body(event_type, timestamp, data))


def resource_event(
    account: str,
    event_type: str,
    resource_id: int | str,
    resource: dict[str, Any],
    at: datetime,
    *,
    state_after: object = None,
    more: Mapping[str, Any] | None = None,
) -> NewEvent:
    """A change to a Brightpearl resource. Its ``data`` says which (``accountCode``, ``resourceType``, ``id``,
    ``lifecycleEvent``, ``fullEvent``, read from the event's name ``{resource}.{lifecycle}[.{detail}]``), then
    holds the ``resource`` as Brightpearl returns it, then ``more`` (``changes``, ``before`` and ``after``)."""
    resource_type, lifecycle = event_type.split(".")[:2]
    data = {
        "accountCode": account,
        "resourceType": resource_type,
        "id": resource_id,
        "lifecycleEvent": lifecycle,
        "fullEvent": event_type,
        "resource": resource,
        **(more or {}),
    }
    return build_event(
        account=account, event_type=event_type, resource_id=resource_id, at=at, data=data, state_after=state_after
    )


def ping_event(account: str, subscription_id: str, at: datetime, event_id: str) -> NewEvent:
    """The test event sent to one subscription on request, stamped to the second it was asked for. A ping is
    no change, so nothing derives its id: the caller gives a random one (``random_id(EVENT_PREFIX)``)."""
    data = {"accountCode": account, "subscription": subscription_id, "message": PING_MESSAGE}
    return build_event(
        account=account, event_type=PING, resource_id=None, at=at.replace(microsecond=0), data=data, event_id=event_id
    )
