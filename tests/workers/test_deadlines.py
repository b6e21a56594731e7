"""Deadlines: an attempt past its time is told it timed out; a cancellation from elsewhere still cancels."""

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from workers.deadlines import Deadlines


async def attempt(deadlines: Deadlines, seconds: float, work_s: float) -> str:
    task = deadlines.enter(seconds)
    try:
        await asyncio.sleep(work_s)
    except asyncio.CancelledError:
        if not deadlines.timed_out(task):
            raise
        return "timed out"
    finally:
        deadlines.leave(task)
    return "done"


@pytest.fixture
async def deadlines() -> AsyncIterator[Deadlines]:
    keeper = Deadlines(tick_s=0.02)
    sweep = asyncio.create_task(keeper.run())
    yield keeper
    sweep.cancel()
    await asyncio.gather(sweep, return_exceptions=True)


async def test_an_attempt_past_its_deadline_times_out_within_a_tick(deadlines: Deadlines) -> None:
    started = time.monotonic()
    assert await attempt(deadlines, 0.1, 5) == "timed out"
    assert 0.1 <= time.monotonic() - started < 0.3
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0  # no cancellation left pending on the caller


async def test_attempts_within_their_deadlines_are_left_alone(deadlines: Deadlines) -> None:
    results = await asyncio.gather(*(attempt(deadlines, 1.0, 0.05) for _ in range(200)))
    assert results == ["done"] * 200
    await asyncio.sleep(0.05)
    assert deadlines._due == {}


async def test_a_cancellation_from_elsewhere_is_not_taken_for_a_timeout(deadlines: Deadlines) -> None:
    task = asyncio.create_task(attempt(deadlines, 10, 5))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_stopping_at_the_moment_the_deadline_passes_still_stops() -> None:
    deadlines = Deadlines()
    task = asyncio.create_task(attempt(deadlines, 0, 5))
    await asyncio.sleep(0)  # it has entered its deadline, already past
    deadlines.sweep()  # cancelled for its deadline
    task.cancel()  # and the worker stops at the same moment
    with pytest.raises(asyncio.CancelledError):
        await task
