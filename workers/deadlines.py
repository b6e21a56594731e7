"""Timeouts for hundreds of attempts under way at once, enforced by one sweep rather than a timer each.

``asyncio.timeout()`` and aiohttp's own request timeout each schedule a timer on the event loop for every request
and cancel it afterwards: about 4.5 µs of a 50 µs POST. Attempts need no millisecond precision, so one task
wakes every ``tick_s`` and cancels the attempts past their deadline; the attempt turns that cancellation into a
timeout, as ``asyncio.timeout()`` does, and a cancellation from elsewhere (the worker stopping) still cancels.
"""

import asyncio
from typing import Any


class Deadlines:
    """Deadlines of the tasks that entered one, checked every ``tick_s`` by :meth:`run`."""

    def __init__(self, tick_s: float = 0.1) -> None:
        self.tick_s = tick_s
        self._due: dict[asyncio.Task[Any], tuple[float, int]] = {}  # task -> (deadline, its cancellations before)
        self._expired: set[asyncio.Task[Any]] = set()

    def enter(self, seconds: float) -> "asyncio.Task[Any]":
        """Give the current task ``seconds`` (and at most ``tick_s`` more) until it is cancelled."""
        task = asyncio.current_task()
        assert task is not None, "a deadline belongs to a task"
        self._due[task] = (asyncio.get_running_loop().time() + seconds, task.cancelling())
        return task

    def leave(self, task: "asyncio.Task[Any]") -> None:
        self._due.pop(task, None)
        self._expired.discard(task)

    def timed_out(self, task: "asyncio.Task[Any]") -> bool:
        """Whether the cancellation ``task`` is handling came from its deadline alone (it then goes on, no
        longer cancelled); ``False`` for any other cancellation, which it must let through."""
        if task not in self._expired:
            return False
        _, before = self._due[task]
        return task.uncancel() <= before

    def sweep(self) -> None:
        """Cancel the tasks past their deadline."""
        now = asyncio.get_running_loop().time()
        for task, (deadline, _) in list(self._due.items()):
            if deadline <= now and task not in self._expired:
                self._expired.add(task)
                task.cancel()

    async def run(self) -> None:
        """Sweep every ``tick_s`` until cancelled."""
        while True:
            await asyncio.sleep(self.tick_s)
            self.sweep()
