"""A worker process's parts, wired together, and the arq worker that runs them.

``relay.cli`` builds a :class:`WorkerRuntime` from settings; the poll scheduler (which runs the polls it claims),
the delivery dispatcher and the janitor run beside arq's loop (recovery jobs) for as long as the worker does.
"""

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
from arq.connections import ArqRedis
from arq.worker import Worker, func
from redis.asyncio import Redis
from redis.exceptions import RedisError

from subscriptions.core.crypto import TokenCipher
from subscriptions.core.errors import RelayError
from subscriptions.store.polls import Claim, Polls
from subscriptions.store.queue import DeliveryQueue
from subscriptions.store.records import Store
from subscriptions.store.recovery import Recoveries
from workers.budget import Budgets
from workers.dispatcher import DeliveryPolicy, Dispatcher
from workers.hint_subscriptions import HintSubscriber
from workers.janitor import Janitor
from workers.metrics import Metrics
from workers.oauth_accounts import OAuthConfig
from workers.outage import RedisOutage
from workers.poller import Poller, PollPolicy
from workers.scheduler import PollScheduler

log = logging.getLogger(__name__)

RECOVER_JOB_TIMEOUT_S = 600  # a recovery re-queues in batches and resumes where it stopped if retried
POLL_JOB_TIMEOUT_S = 600  # a poll waits out throttling inside its job; its claim's lease, not this, bounds a dead one


@dataclass
class WorkerRuntime:
    """Everything a worker process runs, over shared connection pools and HTTP sessions."""

    redis: "Redis"
    arq: ArqRedis
    brightpearl_session: aiohttp.ClientSession
    delivery_session: aiohttp.ClientSession
    poll_policy: PollPolicy
    delivery_policy: DeliveryPolicy
    clock: Callable[[], datetime]
    metrics: Metrics = field(default_factory=Metrics)
    retention_s: float = 7 * 86_400.0  # events and final deliveries expire this long after their last change
    cipher: TokenCipher | None = None  # decrypts the stored Brightpearl tokens; None: they are stored unencrypted
    public_url: str | None = None  # RELAY_PUBLIC_URL: where Brightpearl posts hints; None: no hints subscribed
    oauth_config: OAuthConfig = field(default_factory=OAuthConfig)  # the OAuth app; unset: OAuth accounts refused

    def __post_init__(self) -> None:
        self.store = Store(self.redis, self.cipher)
        self.oauth = self.oauth_config.access(
            self.redis,
            self.brightpearl_session,
            self.cipher,
            self.clock,
            on_reauthorization_required=lambda code: self.metrics.oauth_reauthorizations.inc(),
        )
        self.queue = DeliveryQueue(self.redis)
        self.outage = RedisOutage()  # one account of Redis being away for every loop of the process
        self.dispatcher = Dispatcher(
            self.store,
            self.queue,
            self.delivery_session,
            self.delivery_policy,
            self.metrics,
            clock=self.clock,
            outage=self.outage,
        )
        self.poller = Poller(
            self.store,
            self.queue,
            self.redis,
            self.brightpearl_session,
            self.poll_policy,
            self.metrics,
            clock=self.clock,
            on_deliveries=self.dispatcher.wake,
            oauth=self.oauth,
        )
        self.scheduler = PollScheduler(
            Polls(self.redis),
            self.poller.poll,
            clock=self.clock,
            lease_s=self.poll_policy.lease_s,
            capacity=self.poll_policy.concurrency,
            outage=self.outage,
        )
        self.janitor = Janitor(
            self.redis, self.metrics, retention_s=self.retention_s, clock=self.clock, outage=self.outage
        )
        self.subscriber = HintSubscriber(
            self.store,
            self.brightpearl_session,
            Budgets(self.redis, self.poll_policy.budget_per_minute, self.clock),
            self.public_url,
            clock=self.clock,
            timeout_s=self.poll_policy.brightpearl_timeout_s,
            oauth=self.oauth,
        )
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start the scheduler, the dispatcher and the retention janitor beside arq's loop (once: the arq
        worker built afresh after a loss of Redis calls this again)."""
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self.scheduler.run(), name="poll-scheduler"),
            asyncio.create_task(self.dispatcher.run(), name="delivery-dispatcher"),
            asyncio.create_task(self.janitor.run(), name="retention-janitor"),
            asyncio.create_task(self._subscribe_hints(), name="hint-subscriptions"),
        ]

    async def _subscribe_hints(self) -> None:
        """Reconcile every account's hint webhooks once, in the background (a webhook removed while no worker ran
        comes back); a failure is logged, never fatal: polling covers what hints would."""
        try:
            done = await self.subscriber.reconcile_all()
        except (RedisError, OSError, RelayError) as error:
            log.warning("could not reconcile the accounts' hint webhooks at start: %s", error)
        else:
            if done:
                log.info("hint webhooks reconciled for %d accounts", done)

    async def stop(self, drain_s: float = 5.0) -> None:
        """Stop scheduling and sweeping, finish (or give back) attempts under way, and wait for the loops to end."""
        self.scheduler.stop()
        self.janitor.stop()
        for task in self._tasks:
            if task.get_name() == "hint-subscriptions":
                task.cancel()  # subscribing is done again at the next start
        await asyncio.gather(self.dispatcher.stop(drain_s), self.scheduler.drain(drain_s))
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def poll(ctx: dict[str, Any], account: str, token: str | None = None) -> None:
    """arq job: poll the due resources of one account, under the claim whose token it carries. Workers now run the
    polls they claim themselves (``workers.scheduler``); a job left in the queue by an earlier release still runs,
    and one whose claim has lapsed writes nothing."""
    runtime: WorkerRuntime = ctx["runtime"]
    if token is None:  # enqueued before claims had tokens: the account comes due again when that claim's lease ends
        log.info("poll of %s: a job without a claim; the account's next claim polls it", account)
        return
    await runtime.poller.poll(Claim(account, token))


async def recover(ctx: dict[str, Any], rec_id: str) -> None:
    """arq job: re-queue a recovery's deliveries (from where it stopped, if an earlier try died)."""
    runtime: WorkerRuntime = ctx["runtime"]
    queued = await Recoveries(runtime.store, runtime.queue).run(rec_id, runtime.clock())
    if queued:
        runtime.dispatcher.wake()
    log.info("recovery %s: %d deliveries queued", rec_id, queued)


def create_worker(
    runtime: WorkerRuntime, *, handle_signals: bool = True, max_jobs: int = 20, burst: bool = False
) -> Worker:
    """The arq worker of a process: it runs poll jobs, and starts and stops the runtime's loops with itself.

    A poll job runs once for the claim it carries (``max_tries=1``): a try after its worker died would carry a
    claim whose lease has ended, and the poll comes back sooner by being claimed again. Job ids are unique to
    their claim, so no result need be kept to stop one being enqueued twice (``keep_result=0``).
    """

    async def on_startup(ctx: dict[str, Any]) -> None:
        await runtime.start()

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        await runtime.stop()

    return Worker(
        functions=[
            func(poll, name="poll", timeout=POLL_JOB_TIMEOUT_S, max_tries=1, keep_result=0),
            func(recover, name="recover", timeout=RECOVER_JOB_TIMEOUT_S, max_tries=5, keep_result=0),
        ],
        redis_pool=runtime.arq,
        ctx={"runtime": runtime},
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        handle_signals=handle_signals,
        max_jobs=max_jobs,
        poll_delay=0.05,
        keep_result=0,
        burst=burst,
        health_check_interval=10,
    )


class JobLoop:
    """arq's job loop for one process, built again whenever it dies of a lost Redis connection.

    arq's loop has no error handling of its own: the first connection error during a Redis restart or failover
    ends it, and the process would carry on delivering but never poll again. Here a new :class:`Worker` (arq's
    own, from ``build``) takes over after a pause, with its own job slots; the jobs the one before was running
    carry on to their end, and are stopped with the loop.
    """

    def __init__(self, build: Callable[[], Worker], *, retry_s: float = 1.0, outage: RedisOutage | None = None):
        self.build = build
        self.retry_s = retry_s
        self.outage = outage or RedisOutage()
        self.worker = build()
        self._retired: list[Worker] = []
        self._closing = False

    async def run(self) -> None:
        """Run the job loop until it is closed."""
        while not self._closing:
            try:
                await self.worker.async_run()
                return
            except (RedisError, OSError) as error:
                if not self.outage.failed(error, "running poll jobs"):
                    log.warning("the job loop failed (%s); starting it again in %.0f s", error, self.retry_s)
                await asyncio.sleep(self.retry_s)
                if not self._closing:
                    self._retired.append(self.worker)
                    self.worker = self.build()

    async def close(self) -> None:
        """Stop the jobs still running (given back to be run again), then the current worker and the runtime with
        it (arq's ``close``: its shutdown hook)."""
        self._closing = True
        for retired in self._retired:
            retired.handle_sig(signal.SIGTERM)  # arq's own shutdown: cancels its jobs (none is left to close)
            await asyncio.gather(*retired.tasks.values(), return_exceptions=True)
        await self.worker.close()
