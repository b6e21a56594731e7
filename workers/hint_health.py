"""Whether a resource's hints can be trusted to announce its changes: the judge of each :class:`HintLane`. Pure.

Brightpearl does not guarantee a webhook for every change, so hints are checked against what the polls find.
A poll (not a hint's read) that stores an event no hint's read stored before it found that change first: its
resource id becomes a *suspect*, with the time (:func:`suspected`). A suspect is judged once it is older than a
grace (:data:`GRACE_MS`), by when its id was last hinted (``Hints.last_hinted``): a hint at or after the time
the poll found it, less a slack (:data:`SLACK_MS`), announced the change and was only slower than the poll; none
is a *miss* (:func:`judged`).

A miss makes a healthy lane ``degraded``: its resource is polled at the asked interval again (not the safety
interval) until ``recover_at_ms``, 5 minutes doubled at each degradation in a row (capped at an hour), and a miss
while degraded starts that wait again. A degraded lane with no miss until then is ``healthy`` again; after a
healthy hour, degradations no longer count as in a row.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from subscriptions.store.polls import HintLane

GRACE_MS = 10_000  # a suspect is judged once this old: a hint slower than the poll has had time to come
SLACK_MS = 5_000  # a hint this long before the poll found the change still announced it (clocks, coalescing)
MAX_SUSPECTS = 100  # a lane keeps the newest this many suspects; the oldest are dropped
FIRST_DEGRADATION_MS = 300_000  # how long a first degradation lasts without a miss; doubled each one in a row
MAX_DEGRADATION_MS = 3_600_000
HEALTHY_RESET_MS = 3_600_000  # a lane healthy this long starts counting degradations from nought


@dataclass(frozen=True)
class Verdict:
    """A lane after judging its due suspects: the lane, how many of them were missed, and whether it just
    degraded or recovered (logged once, counted once)."""

    lane: HintLane
    misses: int = 0
    change: Literal["degraded", "recovered"] | None = None


def degradation_ms(degradations: int) -> int:
    """How long a degradation lasts, ``degradations`` being those in a row before it."""
    return min(MAX_DEGRADATION_MS, FIRST_DEGRADATION_MS << min(degradations, 16))


def suspected(lane: HintLane, ids: Mapping[int, int]) -> HintLane:
    """``lane`` with ``ids`` (resource id -> Unix ms a poll found its change) as suspects, a suspect already kept
    keeping its first time, the newest :data:`MAX_SUSPECTS` kept."""
    suspects = {str(i): at for i, at in ids.items()} | lane.suspects
    newest = sorted(suspects.items(), key=lambda item: (item[1], item[0]))[-MAX_SUSPECTS:]
    return lane.model_copy(update={"suspects": dict(newest)})


def due_suspects(lane: HintLane, now_ms: int) -> list[int]:
    """The suspects old enough to be judged."""
    return sorted(int(i) for i, at in lane.suspects.items() if now_ms - at >= GRACE_MS)


def judged(lane: HintLane, hinted: Mapping[int, int], now_ms: int) -> Verdict:
    """Judge the due suspects of ``lane`` (``hinted``: when each was last hinted, for those hinted at all) and
    move the lane's state: degraded on a miss, healthy again once a degradation passed without one."""
    due = set(due_suspects(lane, now_ms))
    missed = [i for i in due if hinted.get(i, -1) < lane.suspects[str(i)] - SLACK_MS]
    kept = {i: at for i, at in lane.suspects.items() if int(i) not in due}
    update: dict[str, object] = {"suspects": kept}
    change: Literal["degraded", "recovered"] | None = None
    if missed:
        update |= {"misses": lane.misses + len(missed), "last_miss_ms": now_ms}
        if lane.state == "healthy":
            change = "degraded"
            update |= {
                "state": "degraded",
                "since_ms": now_ms,
                "recover_at_ms": now_ms + degradation_ms(lane.degradations),
                "degradations": lane.degradations + 1,
            }
        else:  # missed again while degraded: the wait starts again, as long as this degradation's
            update["recover_at_ms"] = now_ms + degradation_ms(max(0, lane.degradations - 1))
    elif lane.state == "degraded" and (lane.recover_at_ms is None or now_ms >= lane.recover_at_ms):
        change = "recovered"
        update |= {"state": "healthy", "since_ms": now_ms, "recover_at_ms": None}
    after = lane.model_copy(update=update)
    if after.state == "healthy" and after.degradations and now_ms - after.since_ms >= HEALTHY_RESET_MS:
        after = after.model_copy(update={"degradations": 0})
    return Verdict(after, len(missed), change)
