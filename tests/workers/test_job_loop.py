"""arq's job loop, dead of a lost Redis connection, is taken over by a new arq worker with every job slot free."""

import asyncio
from typing import Any

from arq.connections import ArqRedis
from arq.worker import Worker, func
from redis.asyncio import ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError

from workers.runtime import JobLoop


async def nothing(ctx: dict[str, Any]) -> None:
    return None


async def test_a_job_loop_lost_with_redis_is_taken_over_by_a_new_worker(redis_url: str) -> None:
    pool = ArqRedis(ConnectionPool.from_url(redis_url))
    built: list[Worker] = []
    lost = asyncio.Event()

    def build() -> Worker:
        worker = Worker(functions=[func(nothing, name="nothing")], redis_pool=pool, max_jobs=3, handle_signals=False)
        if not built:  # the first loses Redis under it while starting a job: the slot it took is never given back

            async def dies() -> None:
                await worker.sem.acquire()
                lost.set()
                raise RedisConnectionError("Connection closed by server.")

            worker.async_run = dies  # type: ignore[method-assign]
        built.append(worker)
        return worker

    loop = JobLoop(build, retry_s=0.01)
    running = asyncio.create_task(loop.run())
    try:
        await asyncio.wait_for(lost.wait(), 5)
        job = await pool.enqueue_job("nothing", _job_id="after-the-loss")
        assert job is not None
        assert await job.result(timeout=5, poll_delay=0.05) is None  # run by the worker built after the loss
        assert len(built) == 2
        assert loop.worker is built[1]
    finally:
        await loop.close()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
