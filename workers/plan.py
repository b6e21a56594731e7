"""How often each resource can really be polled within the account's budget. Pure, no I/O.

Each poll of a resource costs some requests even when nothing changed (its searches), more when things did
(the GETs). When the intervals asked for would cost more than the relay's share of the account's minute, the
budget is shared by weighted water-filling over polls: each resource gets its asked rate of polls, or a share of
what is left in proportion to its priority weight (orders 16, stock 4, goods-out notes 2, products and contacts
1), whichever is less, and what a resource does not need goes to the others. So priorities decide who waits when
there is not enough, not who gets nothing. A part of the budget is held back for the GETs that changes bring and
for the stock reconciliation sweep.
"""

from collections.abc import Collection, Mapping

from subscriptions.core.models import RESOURCES
from subscriptions.store.polls import HintLane

# requests of one poll with nothing new: the searches it always makes (an idle poll makes nothing else: records
# are not read again once Brightpearl's clock has passed their second, see workers.stream.follow)
RESTING_COST = {"orders": 2.0, "stock": 1.0, "goods-out-notes": 1.0, "products": 2.0, "contacts": 2.0}
STOCK_FOLLOWING_ORDERS = 2.0  # when stock must follow orders itself
# polls a minute each resource gets, relative to the others, when the budget is short
PRIORITY_WEIGHT = {"orders": 16.0, "stock": 4.0, "goods-out-notes": 2.0, "products": 1.0, "contacts": 1.0}
HELD_BACK = 0.25  # of the budget, for GETs and the sweep
FLOOR = 0.02  # of the budget: even the last resource keeps polling, however slowly


def resting_cost(resource: str, watched: frozenset[str] | set[str]) -> float:
    cost = RESTING_COST.get(resource, 2.0)
    if resource == "stock" and "orders" not in watched:
        cost += STOCK_FOLLOWING_ORDERS
    return cost


def fill(
    wanted: Mapping[str, float], cost: Mapping[str, float], weight: Mapping[str, float], budget: float
) -> dict[str, float]:
    """Weighted water-filling: the polls a minute each resource gets out of ``budget`` requests a minute, when
    it wants ``wanted`` polls a minute at ``cost`` requests each. Those wanting less than their weighted share
    of what is left get what they want; the rest share what remains in proportion to ``weight``."""
    rates: dict[str, float] = {}
    left = budget
    unfilled = sorted(wanted, key=lambda r: wanted[r] / weight[r])
    pending = sum(cost[r] * weight[r] for r in unfilled)
    while unfilled:
        resource = unfilled[0]
        level = left / pending  # polls a minute per unit of weight, if every unfilled resource shared alike
        if wanted[resource] > level * weight[resource]:
            break
        rates[resource] = wanted[resource]
        left -= cost[resource] * wanted[resource]
        pending -= cost[resource] * weight[resource]
        unfilled.pop(0)
    for resource in unfilled:
        rates[resource] = max(0.0, left / pending * weight[resource])
    return rates


def effective_intervals(
    requested_s: Mapping[str, float], per_minute: int, measured_cost: Mapping[str, float] | None = None
) -> dict[str, float]:
    """The interval each watched resource gets (``requested_s`` keys are the watched resources). A measured
    average cost per poll replaces the resting cost when it is higher."""
    watched: list[str] = [r for r in RESOURCES if r in requested_s]
    cost = {r: max(resting_cost(r, set(requested_s)), (measured_cost or {}).get(r, 0.0)) for r in watched}
    wanted = {r: 60 / requested_s[r] for r in watched}
    weight = {r: PRIORITY_WEIGHT.get(r, 1.0) for r in watched}
    rates = fill(wanted, cost, weight, per_minute * (1 - HELD_BACK))
    effective: dict[str, float] = {}
    for resource in watched:
        floor_rate = per_minute * FLOOR / cost[resource]
        rate = max(rates[resource], floor_rate)
        effective[resource] = max(requested_s[resource], round(60 / rate, 3))
    return effective


def interval_warnings(requested_s: Mapping[str, float], effective_s: Mapping[str, float], per_minute: int) -> list[str]:
    """What a person should know when the intervals asked cannot be met: one line per resource polled less often
    than asked, each saying what to do about it."""
    stretched = [r for r in RESOURCES if r in requested_s and effective_s.get(r, 0) > requested_s[r] * 1.001]
    return [
        f"{resource} is polled every {effective_s[resource]:g} s, not every {requested_s[resource]:g} s as asked: "
        f"the relay's {per_minute} requests a minute on this account do not cover every resource at the intervals "
        "asked. Ask longer intervals (poll_intervals_s), watch fewer resources, or raise RELAY_BUDGET_SHARE."
        for resource in stretched
    ]


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


def hinted_healthy(covered: Collection[str], lanes: Mapping[str, HintLane]) -> list[str]:
    """The covered resources whose hints are trusted: those with no lane yet (a lane starts healthy) and those
    whose lane is ``healthy``."""
    return [r for r in covered if r not in lanes or lanes[r].state == "healthy"]


def with_safety_net(asked_s: Mapping[str, float], healthy: Collection[str], safety_s: float) -> dict[str, float]:
    """The intervals asked once hints are trusted: a resource whose hints are healthy is polled only as the safety
    net, every ``safety_s`` (or as asked, when that is slower); the others (degraded, or not hinted) as asked."""
    return {r: max(interval, safety_s) if r in healthy else interval for r, interval in asked_s.items()}
