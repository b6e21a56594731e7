"""A delivery's transitions, table by table: record + change + now -> record and index moves (fixed clocks)."""

from datetime import UTC, datetime, timedelta

import pytest

from subscriptions.core.models import Attempt, DeliveryRecord, SubscriptionRecord, SubscriptionState
from subscriptions.core.models import DeliveryStatus as S
from subscriptions.core.retry import JITTER_RATIO
from subscriptions.core.transitions import (
    Attempted,
    Change,
    GiveUp,
    Moves,
    Outcome,
    Requeue,
    Skip,
    Transition,
    created,
    transition,
)

CREATED = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
NOW = CREATED + timedelta(minutes=5)
NOW_MS = int(NOW.timestamp() * 1000)
SCHEDULE = (5.0, 60.0)


def at_ms(seconds: float) -> int:
    """Unix ms of ``seconds`` after NOW."""
    return NOW_MS + round(seconds * 1000)


def delivery(status: S = S.pending, count: int = 0, due: datetime | None = CREATED) -> DeliveryRecord:
    return DeliveryRecord(
        id="dlv_1",
        event_id="evt_1",
        subscription="sub_1",
        account="acme",
        type="order.created",
        status=status,
        created_at=CREATED,
        next_attempt_at=due,
        attempt_count=count,
        last_attempt_at=CREATED if count else None,
    )


def answered(status_code: int | None) -> Attempt:
    return Attempt(at=NOW, status_code=status_code, error=None if status_code else "timeout", duration_ms=12)


def attempted(status_code: int | None, *, jitter: float = 0.0, retry_after_s: float | None = None) -> Attempted:
    ok = status_code is not None and 200 <= status_code < 300
    return Attempted(answered(status_code), ok, jitter, SCHEDULE, retry_after_s)


def after(status: S, count: int, next_at: datetime | None, *, attempted_now: bool = True) -> DeliveryRecord:
    base = delivery(count=count)
    return base.model_copy(
        update={"status": status, "next_attempt_at": next_at, "last_attempt_at": NOW if attempted_now else None}
    )


ROWS: list[tuple[str, DeliveryRecord, Change, DeliveryRecord, Moves]] = [
    # attempt outcomes
    (
        "first attempt succeeds",
        delivery(),
        attempted(204),
        after(S.succeeded, 1, None),
        Moves(S.pending, S.succeeded, None),
    ),
    (
        "first attempt fails: retrying on the schedule",
        delivery(),
        attempted(500),
        after(S.retrying, 1, NOW + timedelta(seconds=5)),
        Moves(S.pending, S.retrying, at_ms(5)),
    ),
    (
        "a retry fails again: still retrying, status index unchanged",
        delivery(S.retrying, 1),
        attempted(None),
        after(S.retrying, 2, NOW + timedelta(seconds=60)),
        Moves(None, None, at_ms(60)),
    ),
    (
        "jitter spreads the retry",
        delivery(),
        attempted(503, jitter=1.0),
        after(S.retrying, 1, NOW + timedelta(seconds=5 * (1.0 + JITTER_RATIO))),
        Moves(S.pending, S.retrying, at_ms(5 * (1.0 + JITTER_RATIO))),
    ),
    (
        "Retry-After replaces the schedule's wait",
        delivery(),
        attempted(429, retry_after_s=120.0),
        after(S.retrying, 1, NOW + timedelta(seconds=120)),
        Moves(S.pending, S.retrying, at_ms(120)),
    ),
    (
        "the schedule is spent: failed for good, taken off the due set",
        delivery(S.retrying, 2),
        attempted(500),
        after(S.failed, 3, None),
        Moves(S.retrying, S.failed, None),
    ),
    (
        "Retry-After does not extend a spent schedule",
        delivery(S.retrying, 2),
        attempted(429, retry_after_s=30.0),
        after(S.failed, 3, None),
        Moves(S.retrying, S.failed, None),
    ),
    (
        "410 Gone ends it at once",
        delivery(),
        attempted(410),
        after(S.failed, 1, None),
        Moves(S.pending, S.failed, None),
    ),
    (
        "a retry succeeds",
        delivery(S.retrying, 2),
        attempted(200),
        after(S.succeeded, 3, None),
        Moves(S.retrying, S.succeeded, None),
    ),
    # give up, skip, requeue
    (
        "given up: failed, attempts uncounted",
        delivery(),
        GiveUp("not sent: its event is no longer kept"),
        delivery(S.failed, 0, None),
        Moves(S.pending, S.failed, None),
    ),
    (
        "given up while retrying",
        delivery(S.retrying, 1),
        GiveUp("not sent: its subscription was deleted"),
        delivery(S.failed, 1, None),
        Moves(S.retrying, S.failed, None),
    ),
    (
        "skipped: kept, not due",
        delivery(),
        Skip(),
        delivery(S.skipped, 0, None),
        Moves(S.pending, S.skipped, None),
    ),
    (
        "requeued before any attempt: pending, due now",
        delivery(S.skipped, 0, None),
        Requeue(),
        delivery(S.pending, 0, NOW),
        Moves(S.skipped, S.pending, NOW_MS),
    ),
    (
        "requeued after attempts: retrying, due now",
        delivery(S.failed, 3, None),
        Requeue(),
        delivery(S.retrying, 3, NOW),
        Moves(S.failed, S.retrying, NOW_MS),
    ),
    (
        "a succeeded delivery requeued by hand",
        delivery(S.succeeded, 1, None),
        Requeue(),
        delivery(S.retrying, 1, NOW),
        Moves(S.succeeded, S.retrying, NOW_MS),
    ),
    (
        "requeued while already pending: due now, status index unchanged",
        delivery(S.pending, 0, CREATED),
        Requeue(),
        delivery(S.pending, 0, NOW),
        Moves(None, None, NOW_MS),
    ),
]


@pytest.mark.parametrize(("record", "change", "expected", "moves"), [row[1:] for row in ROWS], ids=[r[0] for r in ROWS])
def test_transition(record: DeliveryRecord, change: Change, expected: DeliveryRecord, moves: Moves) -> None:
    found = transition(record, change, NOW)
    assert found.record == expected
    assert found.moves == moves
    if isinstance(change, Attempted):
        assert found.attempt == change.attempt
    elif isinstance(change, GiveUp):
        assert found.attempt == Attempt(at=NOW, status_code=None, error=change.reason, duration_ms=0)
    else:
        assert found.attempt is None


def test_the_due_time_is_always_the_records_next_attempt() -> None:
    for _, record, change, _, _ in ROWS:
        found = transition(record, change, NOW)
        next_at = found.record.next_attempt_at
        assert found.moves.due_ms == (int(next_at.timestamp() * 1000) if next_at else None)


def subscription(state: SubscriptionState) -> SubscriptionRecord:
    return SubscriptionRecord(
        id="sub_1",
        account="acme",
        url="https://example.com/h",
        events=["*"],
        secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        state=state,
        created_at=CREATED,
        updated_at=CREATED,
    )


@pytest.mark.parametrize(
    ("state", "status", "due", "moves"),
    [
        (SubscriptionState.active, S.pending, NOW, Moves(None, S.pending, NOW_MS)),
        (SubscriptionState.failing, S.pending, NOW, Moves(None, S.pending, NOW_MS)),
        (SubscriptionState.disabled, S.skipped, None, Moves(None, S.skipped, None)),
    ],
)
def test_a_new_delivery(state: SubscriptionState, status: S, due: datetime | None, moves: Moves) -> None:
    found = created("evt_1", "order.created", "acme", subscription(state), NOW)
    assert found == Transition(
        DeliveryRecord(
            id=found.record.id,
            event_id="evt_1",
            subscription="sub_1",
            account="acme",
            type="order.created",
            status=status,
            created_at=NOW,
            next_attempt_at=due,
        ),
        moves,
    )
    assert found.record.id.startswith("dlv_")


def test_an_outcome_is_an_attempted_change() -> None:
    outcome = Outcome(delivery(), answered(410), False, 0.5, schedule_s=SCHEDULE, retry_after_s=3.0)
    assert outcome.gone
    assert outcome.change == Attempted(answered(410), False, 0.5, SCHEDULE, 3.0)
