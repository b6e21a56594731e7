"""How a subscription is doing: when it started failing, when it last succeeded, and its recent success rate.

Every recorded attempt updates a small hash and a capped list per subscription, in the same transaction as
the attempt itself. From them, pure functions below decide what a person sees (``failing`` while no attempt
has succeeded since the first failure) and when sustained failure disables the subscription.
"""

import itertools
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from subscriptions.core.models import SubscriptionState
from subscriptions.core.times import ms
from subscriptions.store import keyspace

RECENT_ATTEMPTS = 100  # the success rate is over this many latest attempts


@dataclass(frozen=True)
class Health:
    """What the attempts to one subscription say about it."""

    failing_since: datetime | None = None  # the first failure with no success after it
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    recent_attempts: int = 0
    recent_successes: int = 0

    @property
    def success_rate(self) -> float | None:
        """Successes among the latest attempts (up to 100), or ``None`` before any attempt."""
        return self.recent_successes / self.recent_attempts if self.recent_attempts else None


def shown_state(stored: SubscriptionState, health: Health) -> SubscriptionState:
    """The state a person sees: ``disabled`` as stored, else ``failing`` while attempts keep failing."""
    if stored == SubscriptionState.disabled:
        return stored
    return SubscriptionState.failing if health.failing_since is not None else SubscriptionState.active


def disable_reason(failing_since: datetime, now: datetime, disable_after_s: float) -> str | None:
    """Why a subscription failing since ``failing_since`` is disabled at ``now``, or ``None`` if not yet."""
    if now - failing_since < timedelta(seconds=disable_after_s):
        return None
    return (
        f"no successful delivery since {failing_since.isoformat(timespec='seconds')} "
        f"({disable_after_s / 86400:g} days, RELAY_DISABLE_AFTER_S)"
    )


def gone_reason(at: datetime) -> str:
    return f"the receiver answered 410 Gone at {at.isoformat(timespec='seconds')}"


def queue_outcomes(pipe: Pipeline, sub_id: str, outcomes: Sequence[tuple[bool, datetime]]) -> None:
    """Queue the health writes of a subscription's attempts, oldest first: (succeeded, when) each."""
    if not outcomes:
        return
    health, recent = keyspace.subscription_health(sub_id), keyspace.subscription_recent(sub_id)
    newest = outcomes[-RECENT_ATTEMPTS:]  # all that the trim below would keep
    pipe.lpush(recent, *("1" if succeeded else "0" for succeeded, _ in newest))
    pipe.ltrim(recent, 0, RECENT_ATTEMPTS - 1)
    successes = [at for succeeded, at in outcomes if succeeded]
    failures = [at for succeeded, at in outcomes if not succeeded]
    if successes:
        pipe.hset(health, "last_success_at", str(ms(max(successes))))
    if failures:
        pipe.hset(health, "last_failure_at", str(ms(max(failures))))
    if outcomes[-1][0]:
        pipe.hdel(health, "failing_since")
    else:  # failing since the first failure after the last success (or since before this batch)
        trailing = list(itertools.takewhile(lambda outcome: not outcome[0], reversed(outcomes)))
        first_failure = str(ms(trailing[-1][1]))
        if successes:
            pipe.hset(health, "failing_since", first_failure)
        else:
            pipe.hsetnx(health, "failing_since", first_failure)


def queue_reset(pipe: Pipeline, sub_id: str) -> None:
    """Queue forgetting that a subscription was failing (it was re-enabled by hand)."""
    pipe.hdel(keyspace.subscription_health(sub_id), "failing_since")


def queue_forget(pipe: Pipeline, sub_id: str) -> None:
    """Queue removing everything kept about a subscription's health (it was deleted)."""
    pipe.delete(
        keyspace.subscription_health(sub_id),
        keyspace.subscription_recent(sub_id),
        keyspace.subscription_in_flight(sub_id),
        keyspace.subscription_rate(sub_id),
        keyspace.subscription_parked(sub_id),
    )


async def load_health(redis: "Redis", sub_ids: Sequence[str]) -> list[Health]:
    """The health of each subscription, in order, in one round trip."""
    if not sub_ids:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for sub_id in sub_ids:
            pipe.hgetall(keyspace.subscription_health(sub_id))
            pipe.lrange(keyspace.subscription_recent(sub_id), 0, -1)
        raw = await cast(Awaitable[list[object]], pipe.execute())
    healths = []
    for fields, recent in zip(raw[::2], raw[1::2], strict=True):
        values = cast(dict[str, str], fields)
        outcomes = cast(list[str], recent)
        healths.append(
            Health(
                failing_since=time_of(values.get("failing_since")),
                last_success_at=time_of(values.get("last_success_at")),
                last_failure_at=time_of(values.get("last_failure_at")),
                recent_attempts=len(outcomes),
                recent_successes=outcomes.count("1"),
            )
        )
    return healths


def time_of(value: str | None) -> datetime | None:
    """A time stored as Unix ms text (``None`` when absent)."""
    return datetime.fromtimestamp(int(value) / 1000, UTC) if value else None
