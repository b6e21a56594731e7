from datetime import UTC, datetime, timedelta

import pytest

from subscriptions.health import Health, disable_reason, shown_state
from subscriptions.models import SubscriptionState

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
FIVE_DAYS_S = 5 * 86_400


@pytest.mark.parametrize(
    ("stored", "failing_since", "shown"),
    [
        (SubscriptionState.active, None, SubscriptionState.active),
        (SubscriptionState.active, T0, SubscriptionState.failing),
        (SubscriptionState.disabled, None, SubscriptionState.disabled),
        (SubscriptionState.disabled, T0, SubscriptionState.disabled),
    ],
)
def test_shown_state(stored: SubscriptionState, failing_since: datetime | None, shown: SubscriptionState) -> None:
    assert shown_state(stored, Health(failing_since=failing_since)) == shown


@pytest.mark.parametrize(
    ("failing_for", "disabled"),
    [(timedelta(0), False), (timedelta(days=4, hours=23), False), (timedelta(days=5), True), (timedelta(days=9), True)],
)
def test_disabled_after_sustained_failure(failing_for: timedelta, disabled: bool) -> None:
    reason = disable_reason(T0, T0 + failing_for, FIVE_DAYS_S)
    assert (reason is not None) is disabled
    if reason:
        assert reason == "no successful delivery since 2026-11-21T09:00:00+00:00 (5 days, RELAY_DISABLE_AFTER_S)"


@pytest.mark.parametrize(("attempts", "successes", "rate"), [(0, 0, None), (4, 1, 0.25), (100, 100, 1.0)])
def test_success_rate(attempts: int, successes: int, rate: float | None) -> None:
    assert Health(recent_attempts=attempts, recent_successes=successes).success_rate == rate
