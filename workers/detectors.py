"""Which detector follows which resource, and the baseline each takes when an account is registered."""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from workers.brightpearl.client import BrightpearlClient
from workers.context import PollContext
from workers.goods_out import CREATED as NOTES_CREATED
from workers.goods_out import OPEN_KEY, ROTATION_KEY, open_json, open_notes_now, poll_notes
from workers.records import KINDS, ORDERS, ORDERS_FOR_STOCK, RecordKind, poll_records
from workers.status_sweep import STATE_KEY as STATUS_SWEEP_KEY
from workers.status_sweep import sweep_statuses
from workers.stock import MOVEMENTS, SWEEP_KEY, poll_stock, stock_baseline
from workers.stream import take_baseline

Detector = Callable[[PollContext], Awaitable[None]]


def _records(kind: RecordKind) -> Detector:
    async def detect(ctx: PollContext) -> None:
        await poll_records(ctx, kind)

    return detect


async def poll_orders(ctx: PollContext) -> None:
    """Orders: their streams, then (when due, at low priority) the sweep of status changes they may not show."""
    await poll_records(ctx, ORDERS)
    await sweep_statuses(ctx, ctx.status_sweep_interval_s)


DETECTORS: dict[str, Detector] = {
    **{resource: _records(kind) for resource, kind in KINDS.items()},
    "orders": poll_orders,
    "goods-out-notes": poll_notes,
    "stock": poll_stock,
}

# every position a poll of the detectors above reads: read at once when a poll opens (``PollContext.position``)
POSITIONS: tuple[str, ...] = (
    *(stream.key for kind in (*KINDS.values(), ORDERS_FOR_STOCK) for stream in kind.streams),
    STATUS_SWEEP_KEY,
    MOVEMENTS.key,
    SWEEP_KEY,
    NOTES_CREATED.key,
    OPEN_KEY,
    ROTATION_KEY,
)

ORDER_STATUS = "order-service/order-status"


@dataclass
class Baseline:
    """Where an account's watched resources stand at registration: positions (stream cursors, the sweep's state,
    the notes followed; JSON by name) and stock figures."""

    positions: dict[str, str] = field(default_factory=dict)
    stock_figures: dict[int, str] = field(default_factory=dict)


async def check_credentials(client: BrightpearlClient) -> None:
    """One cheap authenticated read; raises :class:`~workers.brightpearl.errors.BrightpearlError` if refused."""
    await client.get(ORDER_STATUS)


async def take_baselines(
    client: BrightpearlClient, resources: Sequence[str], *, sweep_interval_s: float, now_ms: int
) -> Baseline:
    """The baseline of every watched resource, read from Brightpearl itself: nothing that exists now is sent."""
    baseline = Baseline()
    for resource in resources:
        kind = KINDS.get(resource)
        for stream in kind.streams if kind else ():
            baseline.positions[stream.key] = (await take_baseline(client, stream)).to_json()
    if "goods-out-notes" in resources:
        baseline.positions[NOTES_CREATED.key] = (await take_baseline(client, NOTES_CREATED)).to_json()
        baseline.positions[OPEN_KEY] = open_json(await open_notes_now(client))
    if "stock" in resources:
        positions, baseline.stock_figures = await stock_baseline(client, sweep_interval_s, now_ms)
        baseline.positions |= positions
    return baseline
