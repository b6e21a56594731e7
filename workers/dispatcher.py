"""The delivery loop of one worker process: claim due deliveries in batches, send them concurrently, record.

Claims come from the shared ``due`` set (see ``subscriptions.due``), so any number of processes share the
work and a process that dies gives its claims back when their lease ends. Sends run concurrently up to
``max_in_flight`` per process and ``per_subscription`` per subscriber, so one slow subscriber cannot take
every slot. Outcomes are recorded in batches, one Redis transaction each.
"""

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp

from subscriptions.models import DeliveryRecord, DeliveryStatus, EventRecord, SubscriptionRecord, SubscriptionState
from subscriptions.outbox import Outbox, Outcome
from subscriptions.signing import secret_key
from subscriptions.store import Store
from workers.metrics import Metrics
from workers.sender import send

log = logging.getLogger(__name__)

LEASE_MARGIN_S = 10.0  # a claim outlives the attempt's timeout by this much before another process may retry
RELEASE_DELAY_S = 0.2  # how soon a claim given back (its subscriber was busy) comes due again
RECORD_BATCH = 500


@dataclass(frozen=True)
class DeliveryPolicy:
    retry_schedule_s: tuple[float, ...]
    timeout_s: float
    max_in_flight: int = 256
    per_subscription: int = 32
    claim_batch: int = 200
    idle_poll_s: float = 0.1
    allow_private_targets: bool = False


class Dispatcher:
    """Sends due deliveries until stopped."""

    def __init__(
        self,
        store: Store,
        outbox: Outbox,
        session: aiohttp.ClientSession,
        policy: DeliveryPolicy,
        metrics: Metrics,
        *,
        clock: Callable[[], datetime],
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.session = session
        self.policy = policy
        self.metrics = metrics
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._wake = asyncio.Event()
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._busy: Counter[str] = Counter()
        self._outcomes: asyncio.Queue[Outcome] = asyncio.Queue()
        self._recorder: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Look for due deliveries now (new ones were just committed in this process)."""
        self._wake.set()

    async def run(self) -> None:
        self._recorder = asyncio.create_task(self._record_loop(), name="delivery-recorder")
        while not self._stopping:
            free = self.policy.max_in_flight - len(self._tasks)
            claimed: list[str] = []
            if free > 0:
                try:
                    claimed = await self.outbox.due.claim(
                        now=self.clock(),
                        lease_s=self.policy.timeout_s + LEASE_MARGIN_S,
                        limit=min(free, self.policy.claim_batch),
                    )
                    if claimed:
                        await self._start(claimed)
                except Exception:  # Redis away: keep the loop alive, it reconnects by itself
                    log.exception("claiming deliveries failed; trying again")
                    await asyncio.sleep(1.0)
            if len(claimed) < min(max(free, 1), self.policy.claim_batch):
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.policy.idle_poll_s)

    async def stop(self, drain_s: float = 5.0) -> None:
        """Stop claiming, let attempts under way finish for up to ``drain_s``, and record them."""
        self._stopping = True
        self._wake.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=drain_s)
            for task in pending:
                task.cancel()  # its claim comes due again when the lease ends
            await asyncio.gather(*pending, return_exceptions=True)
        if self._recorder is not None:
            await self._outcomes.join()
            self._recorder.cancel()
            await asyncio.gather(self._recorder, return_exceptions=True)

    async def _start(self, ids: list[str]) -> None:
        deliveries = await self.store.load_deliveries(ids)
        live = [d for d in deliveries if d is not None]
        events = {e.id: e for e in await self.store.load_events(sorted({d.event_id for d in live})) if e}
        subs = {s.id: s for s in await self.store.load_subscriptions(sorted({d.subscription for d in live})) if s}
        busy: list[str] = []
        now = self.clock()
        for delivery_id, delivery in zip(ids, deliveries, strict=True):
            if delivery is None or delivery.status in (
                DeliveryStatus.succeeded,
                DeliveryStatus.failed,
                DeliveryStatus.skipped,
            ):
                await self.outbox.due.remove([delivery_id])
                continue
            sub = subs.get(delivery.subscription)
            event = events.get(delivery.event_id)
            if sub is None or event is None:
                gone = "subscription was deleted" if sub is None else "event is no longer kept"
                await self.outbox.abandon(delivery, f"not sent: its {gone}", now)
                continue
            if sub.state == SubscriptionState.disabled:
                await self.outbox.skip(delivery)
                continue
            if self._busy[sub.id] >= self.policy.per_subscription:
                busy.append(delivery.id)
                continue
            self._busy[sub.id] += 1
            task = asyncio.create_task(self._attempt(delivery, event, sub))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if busy:
            await self.outbox.due.schedule(busy, due=now + timedelta(seconds=RELEASE_DELAY_S), only_existing=True)

    async def _attempt(self, delivery: DeliveryRecord, event: EventRecord, sub: SubscriptionRecord) -> None:
        self.metrics.in_flight.inc()
        try:
            result = await send(
                self.session,
                url=sub.url,
                msg_id=event.id,
                body=event.body.encode(),
                keys=[secret_key(sub.secret)],
                timeout_s=self.policy.timeout_s,
                now=self.clock(),
                allow_private=self.policy.allow_private_targets,
            )
        finally:
            self._busy[sub.id] -= 1
            if self._busy[sub.id] <= 0:
                del self._busy[sub.id]
            self.metrics.in_flight.dec()
        self.metrics.attempts.labels("success" if result.succeeded else "failure").inc()
        self.metrics.attempt_seconds.observe(result.attempt.duration_ms / 1000)
        self._outcomes.put_nowait(Outcome(delivery, result.attempt, result.succeeded, self.rng.uniform(-1, 1)))

    async def _record_loop(self) -> None:
        while True:
            batch = [await self._outcomes.get()]
            while len(batch) < RECORD_BATCH and not self._outcomes.empty():
                batch.append(self._outcomes.get_nowait())
            try:
                for _ in range(30):
                    try:
                        updated = await self.outbox.record(batch, self.policy.retry_schedule_s, self.clock())
                        break
                    except Exception:  # Redis away: hold the outcomes and try again
                        log.exception("recording %d attempts failed; trying again", len(batch))
                        await asyncio.sleep(1.0)
                else:
                    continue  # the claims' leases end and the deliveries are sent again
                for delivery in updated:
                    if delivery.status in (DeliveryStatus.succeeded, DeliveryStatus.failed):
                        self.metrics.deliveries_finished.labels(delivery.status.value).inc()
            finally:
                for _ in batch:
                    self._outcomes.task_done()
