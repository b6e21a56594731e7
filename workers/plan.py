"""How often each resource can really be polled within the account's budget. Pure, no I/O.

Each poll of a resource costs some requests even when nothing changed (its searches), more when things did
(the GETs). When the intervals asked for would cost more than the relay's share of the account's minute, the
effective intervals stretch, in priority order: orders keep theirs as long as anything does, then stock,
goods-out notes, products and contacts. A part of the budget is held back for the GETs that changes bring and
for the stock reconciliation sweep.
"""

from collections.abc import Mapping

from subscriptions.core.models import RESOURCES

# requests of one poll with nothing new: the searches it always makes
RESTING_COST = {"orders": 2.0, "stock": 1.0, "goods-out-notes": 2.0, "products": 2.0, "contacts": 2.0}
STOCK_FOLLOWING_ORDERS = 2.0  # when stock must follow orders itself
HELD_BACK = 0.25  # of the budget, for GETs and the sweep
FLOOR = 0.02  # of the budget: even the last resource keeps polling, however slowly


def resting_cost(resource: str, watched: frozenset[str] | set[str]) -> float:
    cost = RESTING_COST.get(resource, 2.0)
    if resource == "stock" and "orders" not in watched:
        cost += STOCK_FOLLOWING_ORDERS
    return cost


def effective_intervals(
    requested_s: Mapping[str, float], per_minute: int, measured_cost: Mapping[str, float] | None = None
) -> dict[str, float]:
    """The interval each watched resource gets (``requested_s`` keys are the watched resources). A measured
    average cost per poll replaces the resting cost when it is higher."""
    watched = set(requested_s)
    left = per_minute * (1 - HELD_BACK)
    floor = per_minute * FLOOR
    effective: dict[str, float] = {}
    for resource in (r for r in RESOURCES if r in watched):
        cost = max(resting_cost(resource, watched), (measured_cost or {}).get(resource, 0.0))
        wanted_per_minute = cost * 60 / requested_s[resource]
        granted = max(min(wanted_per_minute, left), floor)
        effective[resource] = max(requested_s[resource], round(cost * 60 / granted, 3))
        left = max(0.0, left - granted)
    return effective


def next_due_ms(due_ms: int, now_ms: int, interval_ms: int) -> int:
    """When a resource polled at ``now_ms`` (it was due at ``due_ms``) is next due: on its cadence, so a poll
    picked up a little late does not push every later one back; from now when it is a whole interval late."""
    following = due_ms + interval_ms
    return following if following > now_ms else now_ms + interval_ms


COST_SMOOTHING = 0.3


def average_cost(previous: float | None, requests: int) -> float:
    """The running average of what a poll of a resource costs, with the requests of the poll just made (kept to
    two decimals, as it is shown)."""
    average = requests if previous is None else COST_SMOOTHING * requests + (1 - COST_SMOOTHING) * previous
    return round(average, 2)
