"""How often each resource is really polled, and how late: what the account status shows beside the interval asked.

The planner says when each resource is next due (``workers.plan.next_due_ms``); whether a worker gets to it then is
another matter. A worker that cannot keep up starts polls late, and the interval between them grows, while the
planned interval stays what it was. So each poll measures two things as it starts:

- ``poll_delay_s``: how late it started after it was due;
- ``actual_poll_interval_s``: the interval between the starts of the resource's polls, as a running mean with weight
  :data:`GAP_SMOOTHING` on the newest gap. A single slow poll (a slow Brightpearl answer of the resource polled
  before it) must not raise a warning, while a worker that is behind shows within a poll or two: from a mean on
  time, one gap has to be a third over the interval to pass the warning's 10 %; gaps 20 % over pass it at the
  second poll, 50 % over at the first. The last gap alone flickers; a long window hides a worker just added.

Only gaps of the resource's own cadence count: a poll made due at once (a PATCH, hints waiting) or postponed (an
authentication backoff, an account waiting for an authorization) is not a measure of the workers, so it leaves
the mean as it was. When the planned interval changes by more than a tenth (a PATCH, hints judged degraded), the
mean starts again: gaps of the old interval say nothing of the new one.

Pure: the times are arguments; the state lives in the account's :class:`~subscriptions.store.polls.PollPlan`.
"""

from subscriptions.store.polls import PollPlan

GAP_SMOOTHING = 0.3  # weight of the newest gap in the running mean (as workers.plan.COST_SMOOTHING for costs)
INTERVAL_CHANGE = 0.1  # a planned interval changed by more than this share restarts the mean
BEHIND = 1.1  # an actual interval over this many times the planned one is reported as the workers falling behind


def poll_delay_s(due_ms: int, started_ms: int) -> float:
    """How late a poll started after it was due (0 for one due at once: it has no time it was due)."""
    return round(max(0, started_ms - due_ms) / 1000, 3) if due_ms > 0 else 0.0


def mean_gap_s(
    mean_s: float | None,
    *,
    previous_start_ms: int | None,
    previous_interval_s: float | None,
    interval_s: float,
    due_ms: int,
    started_ms: int,
) -> float | None:
    """The running mean of the gaps between a resource's polls, with the poll starting at ``started_ms`` (due at
    ``due_ms``, planned by the previous poll, which started at ``previous_start_ms`` with ``previous_interval_s``);
    ``None`` while nothing is measured at the interval now planned (``interval_s``)."""
    if previous_start_ms is None or previous_interval_s is None:
        return None
    if abs(interval_s - previous_interval_s) > INTERVAL_CHANGE * previous_interval_s:
        return None
    on_cadence = previous_start_ms < due_ms <= previous_start_ms + int(previous_interval_s * 1000)
    if not on_cadence:
        return mean_s
    gap_s = (started_ms - previous_start_ms) / 1000
    mean = gap_s if mean_s is None else GAP_SMOOTHING * gap_s + (1 - GAP_SMOOTHING) * mean_s
    return round(mean, 3)


def record_start(
    plan: PollPlan, resource: str, *, due_ms: int, started_ms: int, previous_interval_s: float | None
) -> dict[str, str]:
    """Note in ``plan`` that a poll of ``resource`` (due at ``due_ms``) starts at ``started_ms``, with the interval
    ``plan.interval_s`` now plans for it; answer the status fields it reports (an empty actual interval while
    none is measured)."""
    mean = mean_gap_s(
        plan.poll_gap_s.get(resource),
        previous_start_ms=plan.polled_ms.get(resource),
        previous_interval_s=previous_interval_s,
        interval_s=plan.interval_s[resource],
        due_ms=due_ms,
        started_ms=started_ms,
    )
    plan.polled_ms[resource] = started_ms
    if mean is None:
        plan.poll_gap_s.pop(resource, None)
    else:
        plan.poll_gap_s[resource] = mean
    return {
        f"{resource}:actual_poll_interval_s": "" if mean is None else f"{mean:g}",
        f"{resource}:poll_delay_s": f"{poll_delay_s(due_ms, started_ms):g}",
    }


def behind_warning(resource: str, actual_s: float | None, effective_s: float) -> str | None:
    """What a person should know when a resource is polled less often than planned because the workers are late."""
    if actual_s is None or actual_s <= effective_s * BEHIND:
        return None
    return (
        f"{resource} is polled every {actual_s:.1f} s instead of {effective_s:g} s: the workers cannot keep up; add a "
        "worker (docs/operations.md#how-many-accounts-a-worker-carries)"
    )
