"""Firing an account's native webhooks: raised events queued without waiting, then sent by a background task
over a real aiohttp session, with Brightpearl's retry rules and the faults a test switches on.

The request that changed the data only calls :meth:`HintSender.enqueue` (synchronous, bounded). The sender's
task batches events of one name raised within ``batch_ms`` into one call with an ID set, drops a share, sends a
share twice, holds calls in a small window to send them shuffled, and holds each call ``delay_ms`` (plus
jitter); every random choice comes from the account's seeded :class:`random.Random`, so a test's hints are the
same every run. Quality of service as documented (API.md 7.1): 0 retries only an answer of 503; 1 retries any
failure except a 4xx. Every attempt, drop and refusal is kept in :attr:`HintSender.log`.
"""

import asyncio
import contextlib
import ipaddress
import random
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from relay.sandbox.webhook_events import event_values, render
from relay.sandbox.webhooks import Webhook

LOG_SIZE = 10_000
SETTLE_POLL_S = 0.005


@dataclass
class HintFaults:
    """What goes wrong with an account's hints; all off by default."""

    drop: float = 0.0  # share of calls never sent
    delay_ms: int = 0  # each call held this long before it is sent
    jitter_ms: int = 0  # plus a random 0..jitter_ms
    duplicate: float = 0.0  # share of calls sent twice
    reorder_window: int = 0  # calls held until this many are waiting (or reorder_ms passed), then sent shuffled
    reorder_ms: int = 100
    batch_ms: int = 0  # events of one name raised within this window go out as one call with an ID set


@dataclass
class HintPolicy:
    """How hints are sent: retries, timeout, queue bound, and where they may go."""

    max_attempts: int = 3
    backoff_ms: tuple[int, ...] = (50, 200)  # before the 2nd, 3rd... attempt (the last repeats)
    timeout_s: float = 5.0
    queue_size: int = 10_000  # raised events waiting; past it they are logged as "overflow" and lost
    allow_remote: bool = False  # False: only loopback URLs are called (a sandbox must not reach the world)


@dataclass(frozen=True, slots=True)
class Hint:
    """One event raised for one webhook."""

    webhook: Webhook
    account_code: str
    event: str
    ids: tuple[int, ...]
    raised_on: datetime


@dataclass(frozen=True, slots=True)
class HintCall:
    """One HTTP call to make."""

    webhook_id: int
    event: str
    ids: str  # the ID set the call names
    method: str
    url: str
    body: str | None
    content_type: str | None
    quality_of_service: int


@dataclass(frozen=True, slots=True)
class HintRecord:
    """One line of the hint log: an attempt (with its status, ``None`` if no answer came), or a call not made."""

    webhook_id: int
    event: str
    ids: str
    url: str
    status: int | None
    attempt: int
    at: str
    outcome: str  # delivered, failed, error, dropped, overflow, refused-host
    duplicate: bool = False
    body: str | None = None

    def describe(self) -> dict[str, Any]:
        return asdict(self)


def calls_for(hint: Hint, ids: tuple[int, ...] | None = None, values: dict[str, str] | None = None) -> list[HintCall]:
    """The calls ``hint`` makes (over ``ids`` when batched): one with an ID set when the webhook accepts them,
    else one per id. ``values`` replaces the rendered variables (a simulation's ``testData``)."""
    hook = hint.webhook
    ids = ids if ids is not None else hint.ids
    groups = [ids] if hook.id_set_accepted else [(one,) for one in ids]
    calls = []
    for group in groups:
        rendered = event_values(hint.account_code, hint.event, group, hint.raised_on) | (values or {})
        body = render(hook.body_template, rendered) if hook.carries_body and hook.body_template is not None else None
        calls.append(
            HintCall(
                hook.id,
                rendered["${full-event}"],
                rendered["${resource-id}"],
                hook.http_method,
                render(hook.uri_template, rendered),
                body,
                hook.content_type if hook.carries_body else None,
                hook.quality_of_service,
            )
        )
    return calls


def worth_retrying(quality_of_service: int, status: int | None) -> bool:
    """QoS 0: only a 503; QoS 1: no answer, or any answer but a 2xx or a 4xx."""
    if quality_of_service == 0:
        return status == 503
    return status is None or not (200 <= status < 300 or 400 <= status < 500)


def loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class _Batch:
    first: Hint
    ids: set[int] = field(default_factory=set)
    deadline: float = 0.0


class HintSender:
    """An account's hints on their way: the queue, the task that sends them, and the log of what was sent."""

    def __init__(self, seed: int | None = None) -> None:
        self.faults = HintFaults()
        self.policy = HintPolicy()
        self.random = random.Random(seed)  # noqa: S311 (fault injection, not security)
        self.log: deque[HintRecord] = deque(maxlen=LOG_SIZE)
        self._pending: deque[Hint] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._batches: dict[tuple[int, str], _Batch] = {}
        self._held: list[tuple[HintCall, bool]] = []
        self._held_deadline = 0.0

    def reseed(self, seed: int) -> None:
        self.random.seed(seed)

    @property
    def busy(self) -> bool:
        """Whether anything raised is still on its way (queued, batched, held or being sent)."""
        return bool(self._pending or self._batches or self._held or self._sending)

    def enqueue(self, hint: Hint) -> None:
        """Queue ``hint`` without waiting; sent once an event loop runs (the next enqueue starts the task)."""
        if len(self._pending) >= self.policy.queue_size:
            for call in calls_for(hint):
                self._record(call, None, 0, "overflow")
            return
        self._pending.append(hint)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        self._wake.set()

    def send_now(self, calls: list[HintCall]) -> None:
        """Send ``calls`` at once, with no fault (a simulation); needs a running loop."""
        for call in calls:
            self._launch(call, duplicate=False, delay_s=0.0)

    async def settle(self, timeout_s: float = 10.0) -> bool:
        """Wait until nothing is on its way (or ``timeout_s`` passed); whether it settled."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.busy and loop.time() < deadline:  # noqa: ASYNC110 (many places make it busy; polling is simplest)
            await asyncio.sleep(SETTLE_POLL_S)
        return not self.busy

    async def close(self) -> None:
        """Stop sending: what is still on its way is lost, as when Brightpearl's side goes down."""
        tasks = [*self._sending, *([self._task] if self._task else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._sending.clear()
        self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def clear_log(self) -> int:
        count = len(self.log)
        self.log.clear()
        return count

    def _next_wait_s(self, now: float) -> float | None:
        deadlines = [batch.deadline for batch in self._batches.values()]
        if self._held:
            deadlines.append(self._held_deadline)
        return max(0.0, min(deadlines) - now) if deadlines else None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._next_wait_s(loop.time()))
            while self._pending:
                self._collect(self._pending.popleft(), loop.time())
            self._flush(loop.time())

    def _collect(self, hint: Hint, now: float) -> None:
        if self.faults.batch_ms <= 0:
            self._emit(calls_for(hint))
            return
        key = (hint.webhook.id, hint.event)
        batch = self._batches.get(key)
        if batch is None:
            batch = self._batches[key] = _Batch(hint, deadline=now + self.faults.batch_ms / 1000)
        batch.ids.update(hint.ids)

    def _flush(self, now: float) -> None:
        for key, batch in list(self._batches.items()):
            if batch.deadline <= now:
                del self._batches[key]
                self._emit(calls_for(batch.first, tuple(sorted(batch.ids))))
        window = self.faults.reorder_window
        if self._held and (len(self._held) >= window or self._held_deadline <= now):
            held, self._held = self._held, []
            self.random.shuffle(held)
            for call, duplicate in held:
                self._launch(call, duplicate, self._delay_s())

    def _emit(self, calls: list[HintCall]) -> None:
        faults = self.faults
        for call in calls:
            if not self.policy.allow_remote and not loopback(call.url):
                self._record(call, None, 0, "refused-host")
                continue
            if faults.drop > 0 and self.random.random() < faults.drop:
                self._record(call, None, 0, "dropped")
                continue
            copies = 2 if faults.duplicate > 0 and self.random.random() < faults.duplicate else 1
            for copy in range(copies):
                if faults.reorder_window > 1:
                    if not self._held:
                        loop = asyncio.get_running_loop()
                        self._held_deadline = loop.time() + faults.reorder_ms / 1000
                    self._held.append((call, copy > 0))
                else:
                    self._launch(call, copy > 0, self._delay_s())

    def _delay_s(self) -> float:
        jitter = self.random.uniform(0, self.faults.jitter_ms) if self.faults.jitter_ms > 0 else 0.0
        return (self.faults.delay_ms + jitter) / 1000

    def _launch(self, call: HintCall, duplicate: bool, delay_s: float) -> None:
        task = asyncio.create_task(self._deliver(call, duplicate, delay_s))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _deliver(self, call: HintCall, duplicate: bool, delay_s: float) -> None:
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.policy.timeout_s))
        headers = {"Content-Type": call.content_type} if call.content_type else {}
        data = call.body.encode() if call.body is not None else None
        policy = self.policy
        for attempt in range(1, policy.max_attempts + 1):
            status: int | None = None
            try:
                async with self._session.request(call.method, call.url, data=data, headers=headers) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError, ValueError):  # ValueError: a URL aiohttp cannot call
                status = None
            outcome = "error" if status is None else "delivered" if 200 <= status < 300 else "failed"
            self._record(call, status, attempt, outcome, duplicate)
            if attempt == policy.max_attempts or not worth_retrying(call.quality_of_service, status):
                return
            backoff = policy.backoff_ms[min(attempt - 1, len(policy.backoff_ms) - 1)] if policy.backoff_ms else 0
            await asyncio.sleep(backoff / 1000)

    def _record(self, call: HintCall, status: int | None, attempt: int, outcome: str, duplicate: bool = False) -> None:
        self.log.append(
            HintRecord(
                call.webhook_id, call.event, call.ids, call.url, status, attempt, _now(), outcome, duplicate, call.body
            )
        )
