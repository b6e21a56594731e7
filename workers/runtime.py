"""A worker process's parts, wired together, and the arq worker that runs them.

``relay.cli`` builds a :class:`WorkerRuntime` from settings; arq runs the ``poll`` jobs with it in ``ctx``, and
the poll scheduler and the delivery dispatcher run beside arq's loop for as long as the worker does.
"""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from arq.connections import ArqRedis
from arq.worker import Worker, func
from redis.asyncio import Redis
from redis.exceptions import RedisError

from subscriptions import keys
from subscriptions.crypto import TokenCipher, TokenKeyError
from subscriptions.due import DueSet, ms
from subscriptions.queue import DeliveryQueue
from subscriptions.recovery import Recoveries
from subscriptions.store import Store
from workers.brightpearl.timestamps import format_utc
from workers.dispatcher import DeliveryPolicy, Dispatcher
from workers.janitor import Janitor
from workers.metrics import Metrics
from workers.outage import RedisOutage
from workers.poller import Poller, PollPolicy
from workers.scheduler import PollScheduler

log = logging.getLogger(__name__)

RECOVER_JOB_TIMEOUT_S = 600  # a recovery re-queues in batches and resumes where it stopped if retried
POLL_JOB_TIMEOUT_S = 600  # a poll waits out throttling inside its job; its lock, not this, bounds a dead one


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

    def __post_init__(self) -> None:
        self.store = Store(self.redis, self.cipher)
        self.outbox = DeliveryQueue(self.redis)
        self.outage = RedisOutage()  # one account of Redis being away for every loop of the process
        self.dispatcher = Dispatcher(
            self.store,
            self.outbox,
            self.delivery_session,
            self.delivery_policy,
            self.metrics,
            clock=self.clock,
            outage=self.outage,
        )
        self.poller = Poller(
            self.store,
            self.outbox,
            self.redis,
            self.brightpearl_session,
            self.poll_policy,
            self.metrics,
            clock=self.clock,
            on_deliveries=self.dispatcher.wake,
        )
        self.scheduler = PollScheduler(
            DueSet(self.redis, keys.POLLS),
            self._enqueue_poll,
            clock=self.clock,
            lease_s=self.poll_policy.lease_s,
            outage=self.outage,
        )
        self.janitor = Janitor(
            self.redis, self.metrics, retention_s=self.retention_s, clock=self.clock, outage=self.outage
        )
        self._tasks: list[asyncio.Task[None]] = []

    async def report_unreadable_token(self, code: str, error: TokenKeyError) -> None:
        """Say why an account cannot be polled where the API shows its state, and try it again later, not at once."""
        log.error("poll of %s: %s", code, error)
        now = self.clock()
        await self.store.update_account_status(code, {"last_error": str(error), "last_error_at": format_utc(now)})
        retry_at = now + timedelta(seconds=self.poll_policy.auth_failure_backoff_s)
        await self.poller.polls.schedule([code], due=retry_at, only_existing=True)

    async def _enqueue_poll(self, account: str) -> None:
        await self.arq.enqueue_job("poll", account, _job_id=f"poll:{account}:{ms(self.clock())}")

    async def start(self) -> None:
        """Start the scheduler, the dispatcher and the retention janitor beside arq's loop (once: arq calls
        this again when its loop is restarted after losing Redis)."""
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self.scheduler.run(), name="poll-scheduler"),
            asyncio.create_task(self.dispatcher.run(), name="delivery-dispatcher"),
            asyncio.create_task(self.janitor.run(), name="retention-janitor"),
        ]

    async def stop(self, drain_s: float = 5.0) -> None:
        """Stop scheduling and sweeping, finish (or give back) attempts under way, and wait for the loops to end."""
        self.scheduler.stop()
        self.janitor.stop()
        await self.dispatcher.stop(drain_s)
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def poll(ctx: dict[str, Any], account: str) -> None:
    """arq job: poll the due resources of one account."""
    runtime: WorkerRuntime = ctx["runtime"]
    try:
        await runtime.poller.poll(account)
    except TokenKeyError as error:  # RELAY_ENCRYPTION_KEY cannot decrypt the account's token: a person must act
        await runtime.report_unreadable_token(account, error)


async def recover(ctx: dict[str, Any], rec_id: str) -> None:
    """arq job: re-queue a recovery's deliveries (from where it stopped, if an earlier try died)."""
    runtime: WorkerRuntime = ctx["runtime"]
    queued = await Recoveries(runtime.store, runtime.outbox).run(rec_id, runtime.clock())
    if queued:
        runtime.dispatcher.wake()
    log.info("recovery %s: %d deliveries queued", rec_id, queued)


def create_worker(
    runtime: WorkerRuntime, *, handle_signals: bool = True, max_jobs: int = 20, burst: bool = False
) -> Worker:
    """The arq worker of a process: it runs poll jobs, and starts and stops the runtime's loops with itself."""

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


async def run_jobs(worker: Worker, *, retry_s: float = 1.0, outage: RedisOutage | None = None) -> None:
    """Run arq's job loop until it is closed, starting it again whenever it dies of a lost Redis connection.

    arq's loop has no error handling of its own: the first connection error during a Redis restart or failover
    ends it, and the process would carry on delivering but never poll again. Here it comes back by itself.
    """
    outage = outage or RedisOutage()
    while True:
        try:
            await worker.async_run()
            return
        except (RedisError, OSError) as error:
            if not outage.failed(error, "running poll jobs"):
                log.warning("the job loop failed (%s); starting it again in %.0f s", error, retry_s)
            await asyncio.sleep(retry_s)
            await _recount_slots(worker)


async def _recount_slots(worker: Worker) -> None:
    """Count arq's job slots again from the jobs still running: a connection error in the middle of starting a
    job leaves a slot taken that no job will give back, and enough of those would stop every poll."""
    running = sum(1 for task in worker.tasks.values() if not task.done())
    worker.job_counter = running
    worker.sem = asyncio.BoundedSemaphore(worker.max_jobs + 1)
    for _ in range(running):  # each running job gives its slot back when it ends
        await worker.sem.acquire()
