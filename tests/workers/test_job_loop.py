"""arq's job loop, started again after it lost Redis, has every job slot back that no running job holds."""

import asyncio
from typing import Any

from arq.connections import ArqRedis
from arq.worker import Worker, func
from redis.asyncio import ConnectionPool

from workers.runtime import _recount_slots


async def nothing(ctx: dict[str, Any]) -> None:
    return None


async def test_slots_leaked_by_a_lost_connection_are_counted_again(redis_url: str) -> None:
    pool = ArqRedis(ConnectionPool.from_url(redis_url))
    worker = Worker(functions=[func(nothing, name="nothing")], redis_pool=pool, max_jobs=3, handle_signals=False)
    try:
        for _ in range(3):  # three jobs were being started when the connection broke: their slots leaked
            await worker.sem.acquire()
            worker.job_counter += 1
        running = asyncio.create_task(asyncio.sleep(60))
        worker.tasks["still-running"] = running
        await _recount_slots(worker)
        assert worker.job_counter == 1
        for _ in range(3):  # room again for max_jobs (+1, as arq makes it) less the one running
            await asyncio.wait_for(worker.sem.acquire(), 1)
        running.cancel()
        del worker.tasks["still-running"]
    finally:
        await worker.close()
