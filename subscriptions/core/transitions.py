"""A delivery's life as a pure function: from its record and what happened to it, the record it becomes and
the index moves that make Redis agree (no Redis, no clock: ``now`` is an argument).

A delivery is created ``pending`` (or ``skipped`` while its subscription is disabled). An attempt ends it
``succeeded``, sends it back ``retrying`` on its subscription's schedule (or as late as the receiver asked
with ``Retry-After``), or ends it ``failed`` once the schedule is spent or the receiver answered 410 Gone. One
that can no longer be sent is given up (``failed``), one whose subscription is disabled is ``skipped``, and a
manual retry or a recovery requeues any of them, due at once.

Every transition answers its moves (tuples: one is made for every delivery on the hot path): the status index
the delivery leaves and the one it joins (scored by its creation time), and its due time, which is always its
record's ``next_attempt_at``: the due set holds the deliveries with one, and no other. The queue's Lua scripts
only apply these moves.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from subscriptions.core.ids import delivery_id
from subscriptions.core.models import Attempt, DeliveryRecord, DeliveryStatus, SubscriptionRecord, SubscriptionState
from subscriptions.core.retry import DEFAULT_RETRY_SCHEDULE_S, GONE, next_attempt_delay_s
from subscriptions.core.times import ms


class Moves(NamedTuple):
    """The index writes of one transition: the status index left and the one joined (both ``None`` when the
    status stays), and the due time (Unix ms; ``None``: not due, taken out of the due set)."""

    leaves: DeliveryStatus | None
    joins: DeliveryStatus | None
    due_ms: int | None


class Transition(NamedTuple):
    """A delivery's new record, the attempt to add to its history (if any), and the index moves."""

    record: DeliveryRecord
    moves: Moves
    attempt: Attempt | None = None


class Attempted(NamedTuple):
    """An attempt ended: whether the receiver accepted it, and what decides the next one (the subscription's
    retry schedule, and a ``Retry-After`` it asked for, bounded)."""

    attempt: Attempt
    succeeded: bool
    jitter: float  # in [-1, 1], drawn by the caller
    schedule_s: Sequence[float] = DEFAULT_RETRY_SCHEDULE_S
    retry_after_s: float | None = None

    @property
    def gone(self) -> bool:
        """The receiver answered 410 Gone: no more attempts."""
        return self.attempt.status_code == GONE


@dataclass(frozen=True)
class GiveUp:
    """The delivery can no longer be sent (its subscription or event is gone): failed, with the reason kept
    as an attempt that made no request."""

    reason: str


@dataclass(frozen=True)
class Skip:
    """The delivery's subscription is disabled: kept as ``skipped``, visible and replayable, not sent."""


@dataclass(frozen=True)
class Requeue:
    """Send the delivery again at once, whatever its state (a manual retry or a recovery)."""


Change = Attempted | GiveUp | Skip | Requeue


@dataclass(frozen=True)
class Outcome:
    """What became of one attempt of ``delivery`` (see :class:`Attempted`), and whether it held slots in its
    subscription's and account's caps (to free when it is recorded)."""

    delivery: DeliveryRecord
    attempt: Attempt
    succeeded: bool
    jitter: float  # in [-1, 1], drawn by the caller
    schedule_s: Sequence[float] = DEFAULT_RETRY_SCHEDULE_S
    retry_after_s: float | None = None
    held_slots: bool = True

    @property
    def gone(self) -> bool:
        """The receiver answered 410 Gone: no more attempts, and the subscription is disabled."""
        return self.attempt.status_code == GONE

    @property
    def change(self) -> Attempted:
        """The attempt as a change alone (``transition`` also takes the outcome itself, as ``record`` does)."""
        return Attempted(self.attempt, self.succeeded, self.jitter, self.schedule_s, self.retry_after_s)


def created(event_id: str, event_type: str, account: str, sub: SubscriptionRecord, now: datetime) -> Transition:
    """The delivery of an event to a subscription: due now, or ``skipped`` while the subscription is disabled
    (kept, visible and replayable, never silently dropped)."""
    skipped = sub.state == SubscriptionState.disabled
    status = DeliveryStatus.skipped if skipped else DeliveryStatus.pending
    record = DeliveryRecord(
        id=delivery_id(event_id, sub.id),
        event_id=event_id,
        subscription=sub.id,
        account=account,
        type=event_type,
        status=status,
        created_at=now,
        next_attempt_at=None if skipped else now,
    )
    return Transition(record, Moves(None, status, None if skipped else ms(now)))


def transition(delivery: DeliveryRecord, change: Change | Outcome, now: datetime) -> Transition:
    """``delivery`` once ``change`` has happened to it at ``now`` (an :class:`Outcome` is its attempt's change)."""
    attempt = None
    match change:
        case Attempted() | Outcome():
            update = _after_attempt(delivery, change, now)
            attempt = change.attempt
        case GiveUp(reason=reason):
            update = {"status": DeliveryStatus.failed, "next_attempt_at": None}
            attempt = Attempt(at=now, status_code=None, error=reason, duration_ms=0)
        case Skip():
            update = {"status": DeliveryStatus.skipped, "next_attempt_at": None}
        case Requeue():
            status = DeliveryStatus.retrying if delivery.attempt_count else DeliveryStatus.pending
            update = {"status": status, "next_attempt_at": now}
    record = delivery.model_copy(update=update)
    return Transition(record, _moves(delivery.status, record), attempt)


def _after_attempt(delivery: DeliveryRecord, change: Attempted | Outcome, now: datetime) -> dict[str, object]:
    """Succeeded, retrying at a later time, or failed for good. A retry waits as the schedule says, or as long
    as the receiver asked with ``Retry-After``; either way the attempt counts, so the schedule still ends. A 410
    ends it at once."""
    count = delivery.attempt_count + 1
    delay_s = None if change.gone else next_attempt_delay_s(count, change.schedule_s, change.jitter)
    if change.succeeded:
        status, next_at = DeliveryStatus.succeeded, None
    elif delay_s is None:
        status, next_at = DeliveryStatus.failed, None
    else:
        if change.retry_after_s is not None:
            delay_s = change.retry_after_s
        status, next_at = DeliveryStatus.retrying, now + timedelta(seconds=delay_s)
    return {"status": status, "attempt_count": count, "last_attempt_at": change.attempt.at, "next_attempt_at": next_at}


def _moves(before: DeliveryStatus | None, after: DeliveryRecord) -> Moves:
    """The index moves from status ``before`` (``None``: a new delivery) to ``after``."""
    due_ms = ms(after.next_attempt_at) if after.next_attempt_at is not None else None
    if before == after.status:
        return Moves(None, None, due_ms)
    return Moves(before, after.status, due_ms)
