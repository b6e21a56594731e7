"""Hints under faults: Brightpearl's webhooks dropped, sent twice, late and out of order, while a worker is killed.

Hints are only ever a reason to look sooner. Whatever happens to them, every change arrives (a dropped hint's
change by the safety poll, here every 10 s), once, under one ``webhook-id``: a duplicated or reordered hint reads
again what is already current, and a worker killed while reading hints leaves its claim to end and the next poll
to find the changes.
"""

import asyncio
from pathlib import Path

import pytest

from tests.faults.ledger import Ledger
from tests.faults.rig import fault_rig

HINT_FAULTS = {"drop": 0.3, "duplicate": 0.3, "delay_ms": 20, "jitter_ms": 400, "reorder_window": 3, "seed": 15}


@pytest.mark.slow_fault
@pytest.mark.timeout(180)
async def test_hints_dropped_duplicated_and_late_and_a_worker_killed(
    ledger: Ledger, redis_url: str, tmp_path: Path
) -> None:
    async with fault_rig(ledger, redis_url, tmp_path, hints=True) as rig:
        workers = await rig.start(workers=2)
        await rig.register(safety_poll_interval_s=10)
        await rig.subscribe()
        await rig.control("PUT", "/hints/faults", HINT_FAULTS)
        changing = asyncio.create_task(rig.keep_changing(8, every_s=0.2))
        await asyncio.sleep(4)
        rig.relay.kill(workers[0])
        await asyncio.sleep(1)
        await rig.relay.start("worker")
        await changing
        await ledger.settle(60)
        counts = (await rig.control("GET", "/hints"))["counts"]
        ledger.note = f"hints: {counts}"
        ledger.check()
        assert counts.get("dropped", 0) > 0, "no hint was dropped: the case did not test anything"
        assert counts.get("delivered", 0) > 0, "no hint arrived: the case tested polling alone"
