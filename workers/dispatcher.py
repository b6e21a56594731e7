"""The delivery loop of one worker process: claim due deliveries in batches, send them concurrently, record.

Everything it does in Redis goes through the delivery queue (``subscriptions.store.queue``): claims come from its
shared due set, so any number of processes share the work and a process that dies gives its claims back when
their lease ends. Sends run concurrently up to ``max_in_flight`` per process, and no more to one receiver than
``connections_per_host`` (``workers.lanes``); each subscription's concurrency cap and rate limit hold across
every process (the queue admits claims within them), so one slow or failing subscriber cannot take the slots
the others need.
As many deliveries again wait claimed and admitted, ready to start the moment a slot frees; their claims are
extended while they wait, and given back when the process stops. Timeouts are kept by one sweep
(``workers.deadlines``). Outcomes are recorded in batches, one Redis transaction each; a receiver answering
410 Gone, or failing for longer than ``disable_after_s``, gets its subscription disabled.
"""

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import aiohttp

from subscriptions.core.lease import LEASE_MARGIN_S
from subscriptions.core.models import (
    FINAL,
    Attempt,
    DeliveryRecord,
    DeliveryStatus,
    EventRecord,
    SubscriptionRecord,
    SubscriptionState,
)
from subscriptions.core.retry import retry_after_s
from subscriptions.core.signing import secret_key
from subscriptions.store.admission import Holder, Limits
from subscriptions.store.health import disable_reason, gone_reason
from subscriptions.store.queue import DeliveryQueue, Outcome
from subscriptions.store.records import Store
from workers.deadlines import Deadlines
from workers.delivery_policy import DeliveryPolicy
from workers.lanes import Lanes, origin
from workers.metrics import Metrics
from workers.outage import RedisOutage
from workers.sender import send

__all__ = ["DeliveryPolicy", "Dispatcher", "Ready"]  # the policy is defined in workers.delivery_policy

log = logging.getLogger(__name__)

RECORD_BATCH = 500
RECORD_LINGER_S = 0.005  # how long outcomes wait to be recorded together: throughput for a few ms
KEEP_CLAIMS_EVERY_S = 1.0  # how often the claims of deliveries kept ready are checked (and extended if old)
UNPARK_EVERY_S = 2.0  # how often parked deliveries are checked for slots freed by a dead worker's leases
RECORD_AT_STOP_S = 10.0  # how long a stopping worker waits to record the outcomes it holds (Redis may be away)


@dataclass
class Ready:
    """A delivery claimed and admitted, waiting for a free slot; ``leased`` is when its claim's lease began
    (monotonic seconds), ``origin`` the receiver it goes to."""

    delivery: DeliveryRecord
    event: EventRecord
    sub: SubscriptionRecord
    leased: float
    origin: str


class Dispatcher:
    """Sends due deliveries until stopped."""

    def __init__(
        self,
        store: Store,
        queue: DeliveryQueue,
        session: aiohttp.ClientSession,
        policy: DeliveryPolicy,
        metrics: Metrics,
        *,
        clock: Callable[[], datetime],
        rng: random.Random | None = None,
        outage: RedisOutage | None = None,
    ) -> None:
        self.store = store
        self.queue = queue
        self.session = session
        self.policy = policy
        self.metrics = metrics
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self.outage = outage or RedisOutage()
        self._wake = asyncio.Event()
        self._stopping = False
        self._claiming = False  # a claim is being made and its deliveries started
        self._sending: dict[asyncio.Task[None], Ready] = {}  # attempts under way
        self._ready: Lanes[Ready] = Lanes(policy.connections_per_host)  # claimed and admitted, by receiver
        self._next_keep = 0.0  # when to look next for ready deliveries whose claims need extending
        self._unrecorded = 0  # deliveries sent or being sent whose outcome is not recorded yet
        self._enough = max(1, min(policy.claim_batch, policy.max_in_flight // 4))  # a claim worth a round trip
        self._outcomes: list[Outcome] = []  # attempts ended, waiting to be recorded
        self._outcome = asyncio.Event()  # there are outcomes to record
        self._recorded = asyncio.Event()  # every outcome so far is recorded (or given up on)
        self._recorded.set()
        self._recorder: asyncio.Task[None] | None = None
        self.deadlines = Deadlines()
        self._sweeper: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Look for due deliveries now (new ones were just committed in this process)."""
        self._wake.set()

    @property
    def idle(self) -> bool:
        """Whether nothing is under way here: no claim being started, no delivery waiting or being sent, and
        every outcome recorded."""
        return not self._claiming and not self._sending and not self._ready and self._unrecorded == 0

    async def run(self) -> None:
        self._recorder = asyncio.create_task(self._record_loop(), name="delivery-recorder")
        self._sweeper = asyncio.create_task(self.deadlines.run(), name="delivery-deadlines")
        next_unpark = 0.0
        while not self._stopping:
            if time.monotonic() >= next_unpark:
                next_unpark = time.monotonic() + UNPARK_EVERY_S
                with contextlib.suppress(Exception):  # Redis away: the claim below says so
                    await self._unpark()
            with contextlib.suppress(Exception):  # Redis away: the claim below says so
                await self._keep_claims()
            room = self._room()
            asked = min(room, self.policy.claim_batch)
            claimed: list[tuple[str, DeliveryRecord | None]] = []
            if room >= self._enough or (room > 0 and not self._sending and not self._ready):
                self._claiming = True
                try:
                    leased = time.monotonic()
                    claimed = await self.queue.claim(now=self.clock(), timeout_s=self.policy.timeout_s, limit=asked)
                    self.outage.ok()
                    if claimed:
                        await self._start(claimed, leased)
                except Exception as error:  # Redis away (or a bug): keep the loop alive, it reconnects by itself
                    if not self.outage.failed(error, "claiming deliveries"):
                        log.exception("claiming deliveries failed; trying again")
                    await asyncio.sleep(1.0)
                finally:
                    self._claiming = False
            if len(claimed) < asked or self._room() < self._enough:  # nothing more due now, or no room for it
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.policy.idle_poll_s)

    def _room(self) -> int:
        """Deliveries this process may claim now: enough to keep ``max_in_flight`` attempts under way and as
        many again ready to start the moment a slot frees (so no attempt waits for a claim's round trips), and
        no more than that again sent but not yet recorded (recording is batched a few ms after the attempt)."""
        limit = self.policy.max_in_flight
        waiting = len(self._ready)
        return min(2 * limit - len(self._sending) - waiting, 3 * limit - self._unrecorded)

    async def _keep_claims(self) -> None:
        """Extend the claims of deliveries kept ready for half the lease margin or more (every slot is busy
        with slow receivers), so that no other process takes them up and sends them too while they wait here,
        and the slots they hold in their subscriptions' caps, so that no other process fills those meanwhile."""
        now = time.monotonic()
        if now < self._next_keep:
            return
        self._next_keep = now + KEEP_CLAIMS_EVERY_S
        waiting = [ready for ready in self._ready if now - ready.leased >= LEASE_MARGIN_S / 2]
        if waiting:
            claims: dict[Holder, dict[str, float]] = defaultdict(dict)
            for ready in waiting:
                claims[ready.sub.account, ready.sub.id][ready.delivery.id] = self.policy.timeout_of(ready.sub)
            await self.queue.extend(claims, self.clock())
            for ready in waiting:
                ready.leased = now

    def _launch(self) -> None:
        """Start ready deliveries while there are free slots, and connections free to their receivers."""
        room = self.policy.max_in_flight - len(self._sending)
        if room <= 0 or not self._ready:
            return
        for _, ready in self._ready.take(room):
            task = asyncio.create_task(self._attempt(ready.delivery, ready.event, ready.sub))
            self._sending[task] = ready
            task.add_done_callback(self._sent)

    def _sent(self, task: "asyncio.Task[None]") -> None:
        self._ready.done(self._sending.pop(task).origin)
        self._launch()
        if self._room() >= self._enough:
            self._wake.set()

    async def _unpark(self) -> None:
        """Bring back parked deliveries whose slots were freed by leases ending rather than by outcomes (a
        worker died), by another subscription of their account, or whose subscription's cap was raised or which
        was deleted."""
        if await self.queue.unpark(self._limits_of, self.policy.per_account, self.clock()):
            self._wake.set()

    async def _limits_of(self, sub_ids: list[str]) -> list[Limits | None]:
        """The limits of each subscription (``None`` for one deleted)."""
        return [self.policy.limits(sub) if sub else None for sub in await self.store.load_subscriptions(sub_ids)]

    async def stop(self, drain_s: float = 5.0) -> None:
        """Stop claiming, give back the deliveries not started, let attempts under way finish for up to
        ``drain_s``, and record them."""
        self._stopping = True
        self._wake.set()
        unstarted = [ready.delivery for ready in self._ready.clear()]
        self._unrecorded -= len(unstarted)
        if unstarted:
            with contextlib.suppress(Exception):  # if Redis is away, they come due when their leases end
                await self.queue.give_back([d.id for d in unstarted], self.clock())
        slots: dict[Holder, list[str]] = defaultdict(list)
        for delivery in unstarted:
            slots[delivery.account, delivery.subscription].append(delivery.id)
        if self._sending:
            given_up = dict(self._sending)
            _, pending = await asyncio.wait(given_up, timeout=drain_s)
            for task in pending:
                task.cancel()  # its claim comes due again when the lease ends
            await asyncio.gather(*pending, return_exceptions=True)
            for task in pending:
                given = given_up[task].delivery
                slots[given.account, given.subscription].append(given.id)
        if slots:
            with contextlib.suppress(Exception):  # if Redis is away, the slots free when their leases end
                await self.queue.release(slots, self.clock())
        if self._recorder is not None:
            with contextlib.suppress(TimeoutError):  # Redis away: what is not recorded is sent again, same id
                await asyncio.wait_for(self._recorded.wait(), RECORD_AT_STOP_S)
            self._recorder.cancel()
            await asyncio.gather(self._recorder, return_exceptions=True)
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)

    async def _start(self, claimed: list[tuple[str, DeliveryRecord | None]], leased: float) -> None:
        live = [delivery for _, delivery in claimed if delivery is not None]
        loaded_events, loaded_subs = await asyncio.gather(
            self.store.load_events(sorted({d.event_id for d in live})),
            self.store.load_subscriptions(sorted({d.subscription for d in live})),
        )
        events = {e.id: e for e in loaded_events if e}
        subs = {s.id: s for s in loaded_subs if s}
        now = self.clock()
        wanted = await self._sort(claimed, events, subs, now)
        if wanted:
            await self._admit(wanted, events, subs, leased, now)

    async def _sort(
        self,
        claimed: list[tuple[str, DeliveryRecord | None]],
        events: dict[str, EventRecord],
        subs: dict[str, SubscriptionRecord],
        now: datetime,
    ) -> dict[str, list[DeliveryRecord]]:
        """The claimed deliveries to send, by subscription; the others are taken off the queue (gone or
        final), failed (their subscription or event is gone) or skipped (their subscription is disabled)."""
        wanted: dict[str, list[DeliveryRecord]] = defaultdict(list)
        dropped = []
        for delivery_id, delivery in claimed:
            if delivery is None or delivery.status in FINAL:
                dropped.append(delivery_id)
                continue
            sub = subs.get(delivery.subscription)
            event = events.get(delivery.event_id)
            if sub is None or event is None:
                gone = "subscription was deleted" if sub is None else "event is no longer kept"
                await self.queue.abandon(delivery, f"not sent: its {gone}", now)
                self.metrics.deliveries_finished.labels(DeliveryStatus.failed.value).inc()
            elif sub.state == SubscriptionState.disabled:
                await self.queue.skip(delivery, now)
                self.metrics.deliveries_finished.labels(DeliveryStatus.skipped.value).inc()
            else:
                wanted[sub.id].append(delivery)
        await self.queue.discard(dropped)
        return wanted

    async def _admit(
        self,
        wanted: dict[str, list[DeliveryRecord]],
        events: dict[str, EventRecord],
        subs: dict[str, SubscriptionRecord],
        leased: float,
        now: datetime,
    ) -> None:
        """Admit the deliveries to send within their limits, make the admitted ones ready and start them."""
        admissions = await self.queue.admit(
            {sub_id: (self.policy.limits(subs[sub_id]), [d.id for d in batch]) for sub_id, batch in wanted.items()},
            now,
        )
        longer: dict[Holder, dict[str, float]] = {}
        for sub_id, batch in wanted.items():
            sub, admission = subs[sub_id], admissions[sub_id]
            if admission.error is not None:  # this subscription's deliveries alone wait for a retry, the error shown
                self._refused(batch, sub, admission.error, now)
                continue
            self._unrecorded += admission.admitted
            to = origin(sub.url)
            for delivery in batch[: admission.admitted]:
                self._ready.add(to, Ready(delivery, events[delivery.event_id], sub, leased, to))
            timeout_s = self.policy.timeout_of(sub)
            if timeout_s > self.policy.timeout_s:
                longer[sub.account, sub.id] = {d.id: timeout_s for d in batch[: admission.admitted]}
        self._launch()
        self.metrics.in_flight.set(len(self._sending))
        if longer:  # a subscription with a longer timeout keeps its claims for longer (its slots already do)
            await self.queue.extend(longer, now, slots=False)

    def _refused(self, batch: list[DeliveryRecord], sub: SubscriptionRecord, error: str, now: datetime) -> None:
        """Record a failed attempt, with ``error`` and no request made, for each of ``batch``: they are retried on
        their schedule like any failure, visible to whoever looks at them, and hold up no other delivery."""
        attempt = Attempt(at=now, status_code=None, error=error, duration_ms=0)
        schedule = self.policy.schedule_s(sub)
        for delivery in batch:
            self._outcomes.append(
                Outcome(delivery, attempt, False, self.rng.uniform(-1, 1), schedule_s=schedule, held_slots=False)
            )
        self._unrecorded += len(batch)
        self._recorded.clear()
        self._outcome.set()

    async def _attempt(self, delivery: DeliveryRecord, event: EventRecord, sub: SubscriptionRecord) -> None:
        try:
            try:
                outcome = await self._send(delivery, event, sub)
            except Exception as error:  # a record the relay cannot use (or a bug): this delivery alone fails
                log.exception("delivery %s of subscription %s could not be attempted", delivery.id, sub.id)
                reason = f"not sent: the relay could not make the request ({type(error).__name__}: {error})"
                attempt = Attempt(at=self.clock(), status_code=None, error=reason[:500], duration_ms=0)
                jitter = self.rng.uniform(-1, 1)
                outcome = Outcome(delivery, attempt, False, jitter, schedule_s=self.policy.schedule_s(sub))
            self._outcomes.append(outcome)  # the list as it is now: the recorder swaps in a new one as it takes
            self._outcome.set()
            self._recorded.clear()
        except BaseException:  # cancelled at stop, or a bug: its claim comes due again when the lease ends
            self._unrecorded -= 1
            raise

    async def _send(self, delivery: DeliveryRecord, event: EventRecord, sub: SubscriptionRecord) -> Outcome:
        now = self.clock()
        result = await send(
            self.session,
            url=sub.url,
            msg_id=event.id,
            body=event.body.encode(),
            keys=[secret_key(secret) for secret in sub.signing_secrets(now)],
            timeout_s=self.policy.timeout_of(sub),
            deadlines=self.deadlines,
            now=now,
            allow_private=self.policy.allow_private_targets,
        )
        wait_s = retry_after_s(result.attempt.status_code, result.retry_after, now, self.policy.retry_after_max_s)
        return Outcome(
            delivery,
            result.attempt,
            result.succeeded,
            self.rng.uniform(-1, 1),
            schedule_s=self.policy.schedule_s(sub),
            retry_after_s=wait_s,
        )

    async def _record_loop(self) -> None:
        while True:
            await self._outcome.wait()
            if len(self._outcomes) < RECORD_BATCH:
                await asyncio.sleep(RECORD_LINGER_S)  # let the outcomes of a burst of attempts gather
            batch, self._outcomes = self._outcomes[:RECORD_BATCH], self._outcomes[RECORD_BATCH:]
            if not self._outcomes:
                self._outcome.clear()
            try:
                for _ in range(30):
                    try:
                        recorded = await self.queue.record(batch, self.clock())
                        break
                    except Exception as error:  # Redis away: hold the outcomes and try again
                        if not self.outage.failed(error, f"recording {len(batch)} attempts"):
                            log.exception("recording %d attempts failed; trying again", len(batch))
                        await asyncio.sleep(1.0)
                else:
                    continue  # the claims' leases end and the deliveries are sent again
                self._count(batch, recorded.deliveries)
                await self._disable_hopeless(batch, recorded.failing_since)
            finally:
                if not self._outcomes:
                    self._recorded.set()
                self._unrecorded -= len(batch)
                self._wake.set()  # their slots are free: claim more now

    def _count(self, batch: list[Outcome], deliveries: list[DeliveryRecord]) -> None:
        """The metrics of a recorded batch, counted once per batch rather than once per attempt."""
        results = Counter("success" if outcome.succeeded else "failure" for outcome in batch)
        for result, count in results.items():
            self.metrics.attempts.labels(result).inc(count)
        for outcome in batch:
            self.metrics.attempt_seconds.observe(outcome.attempt.duration_ms / 1000)
        finished = Counter(d.status.value for d in deliveries if d.status in FINAL)
        for status, count in finished.items():
            self.metrics.deliveries_finished.labels(status).inc(count)
        self.metrics.in_flight.set(len(self._sending))

    async def _disable_hopeless(self, batch: list[Outcome], failing_since: dict[str, datetime]) -> None:
        """Disable the subscriptions whose receiver answered 410 Gone, or that have failed for too long."""
        now = self.clock()
        reasons = {o.delivery.subscription: gone_reason(o.attempt.at) for o in batch if o.gone}
        for sub_id, since in failing_since.items():
            reason = disable_reason(since, now, self.policy.disable_after_s)
            if reason is not None:
                reasons.setdefault(sub_id, reason)
        for sub_id, reason in reasons.items():
            try:
                if await self.store.disable_subscription(sub_id, reason, now):
                    log.warning("subscription %s disabled: %s", sub_id, reason)
            except Exception:  # the next failure tries again
                log.exception("disabling subscription %s failed", sub_id)
