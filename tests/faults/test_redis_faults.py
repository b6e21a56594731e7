"""Redis going away in the middle of a run and coming back on the same data, while changes keep happening in
Brightpearl: the relay's processes reconnect by themselves, with no restart, and lose nothing.

Redis is a ``redis-server --appendonly yes`` of the case's own, on its own port. A ``SHUTDOWN`` writes the
append-only file out first; a SIGKILL may lose its last second, which the relay must survive too (it finds the
same changes again and derives the same ids).
"""

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e import wait_for
from tests.faults.ledger import ChangeKey, Ledger
from tests.faults.redis_server import RedisServer, redis_server
from tests.faults.rig import Rig, fault_rig


def arrived(rig: Rig, expected: list[tuple[str, ChangeKey]]) -> Callable[[], bool]:
    return lambda: all(rig.ledger.seen(key) for _, key in expected)


async def restart_mid_run(
    rig: Rig, server: RedisServer, *, kill: bool, restarts: int, down_s: float, up_s: float, workers: int = 1
) -> None:
    await rig.start(workers=workers)
    await rig.register()
    await rig.subscribe()
    await rig.keep_changing(up_s)
    for _ in range(restarts):
        changing = asyncio.create_task(rig.keep_changing(down_s + 1))
        await (server.kill() if kill else server.shutdown())
        await asyncio.sleep(down_s)
        await server.start()
        await changing
        before = len(rig.ledger.expected)
        await rig.keep_changing(up_s)
        # each time, changes made after Redis came back arrive, with nothing restarted
        await wait_for(arrived(rig, list(rig.ledger.expected)[before:]), 30, "changes made after the restart")
    await rig.ledger.settle(30)
    exited = [f"{p.name}: {p.proc.returncode}" for p in rig.relay.processes if p.proc.returncode is not None]
    assert exited == [], f"relay processes exited: {exited}"
    assert rig.relay.http is not None
    async with rig.relay.http.get(f"{rig.relay.api_url}/readyz") as response:
        assert response.status == 200


@pytest.mark.timeout(120)
async def test_shut_down_and_started_again(ledger: Ledger, tmp_path: Path) -> None:
    async with redis_server(tmp_path / "redis") as server, fault_rig(ledger, server.url, tmp_path) as rig:
        await restart_mid_run(rig, server, kill=False, restarts=1, down_s=2, up_s=3)
        ledger.note = "SHUTDOWN, down 2 s"
        ledger.check()


@pytest.mark.slow_fault
@pytest.mark.timeout(180)
async def test_killed_three_times_under_two_workers(ledger: Ledger, tmp_path: Path) -> None:
    async with redis_server(tmp_path / "redis") as server, fault_rig(ledger, server.url, tmp_path) as rig:
        await restart_mid_run(rig, server, kill=True, restarts=3, down_s=5, up_s=10, workers=2)
        ledger.note = "SIGKILL x3, down 5 s each"
        ledger.check()
