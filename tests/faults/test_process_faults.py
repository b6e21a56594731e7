"""The worker process dying or being stopped while deliveries are in flight.

SIGKILL: the worker gets no chance to record anything; its claims come due again when their lease ends (the
attempt timeout + 10 s) and another worker sends them, under the same ``webhook-id``. SIGTERM: the worker stops
claiming, lets attempts under way finish and records them within its drain window, and exits 0; a worker
started later delivers the rest.
"""

import asyncio
import re
import signal
import time
from pathlib import Path

import pytest

from tests.e2e import Process, wait_for
from tests.faults.ledger import Ledger
from tests.faults.rig import Rig, fault_rig
from tests.faults.subscriber import Answer

DRAIN_S = 5.0  # how long a stopping worker lets attempts under way finish (workers.runtime)
BUSY = {"max_in_flight": "1000", "subscription_concurrency": "1000"}


async def gauge(rig: Rig, process: Process, name: str) -> float:
    """A metric of one worker process (its /metrics)."""
    assert rig.relay.http is not None
    async with rig.relay.http.get(f"{process.url}/metrics") as response:
        text = await response.text()
    found = re.search(rf"^{name} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def kill_mid_delivery(rig: Rig, ledger: Ledger, *, orders: int, subscriptions: int, settle_s: float) -> None:
    """Two workers deliver ``orders`` new orders to ``subscriptions`` subscriptions (plus changes going on); once a
    tenth has arrived, the worker with more attempts under way is killed with SIGKILL and a new one started a second
    later."""
    workers = await rig.start(workers=2)
    await rig.register()
    for n in range(subscriptions):
        await rig.subscribe(f"sub{n}")
    rig.subscriber.answer_all(Answer(delay_s=0.05))  # a little slow, so that many attempts are under way at once
    changing = asyncio.create_task(rig.keep_changing(4, every_s=0.5))
    await rig.create_orders(orders)
    deliveries = orders * subscriptions
    await wait_for(lambda: len(ledger.arrivals) >= deliveries // 10, 90, f"the first {deliveries // 10} webhooks")
    busiest = [(await gauge(rig, w, "relay_deliveries_in_flight"), n) for n, w in enumerate(workers)]
    in_flight, victim_index = max(busiest)
    victim = workers[victim_index]
    outstanding = len(ledger.expected) - len({(a.path, a.key) for a in ledger.arrivals})
    rig.relay.kill(victim)
    await asyncio.sleep(1)
    await rig.relay.start("worker")
    await changing
    await ledger.settle(settle_s)
    ledger.note = f"SIGKILL with {outstanding} deliveries outstanding, {in_flight:.0f} in flight in the killed worker"
    ledger.check()
    assert in_flight > 0, "the killed worker had nothing in flight: the case did not test anything"


@pytest.mark.timeout(120)
async def test_sigkill_with_1000_in_flight(ledger: Ledger, redis_url: str, tmp_path: Path) -> None:
    async with fault_rig(ledger, redis_url, tmp_path, **BUSY) as rig:
        await kill_mid_delivery(rig, ledger, orders=1_000, subscriptions=1, settle_s=60)


@pytest.mark.slow_fault
@pytest.mark.timeout(180)
async def test_sigkill_with_10000_in_flight(ledger: Ledger, redis_url: str, tmp_path: Path) -> None:
    """2,000 orders to 5 subscriptions: 10,000 deliveries (10,000 orders at once are the burst case of
    test_brightpearl_faults)."""
    async with fault_rig(ledger, redis_url, tmp_path, **BUSY) as rig:
        await kill_mid_delivery(rig, ledger, orders=2_000, subscriptions=5, settle_s=120)


@pytest.mark.timeout(120)
async def test_sigterm_drains_then_another_worker_goes_on(ledger: Ledger, redis_url: str, tmp_path: Path) -> None:
    async with fault_rig(ledger, redis_url, tmp_path, delivery_timeout_s="5") as rig:
        (worker,) = await rig.start(workers=1)
        await rig.register()
        await rig.subscribe()
        rig.subscriber.answer_all(Answer(delay_s=1.0))  # every attempt takes a second
        changing = asyncio.create_task(rig.keep_changing(4))
        await rig.create_orders(40)
        await wait_for(lambda: len(rig.subscriber.in_progress) >= 10, 20, "attempts under way")
        under_way = set(rig.subscriber.in_progress)
        stopping = time.monotonic()
        worker.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(worker.proc.wait(), DRAIN_S + 10)
        took_s = time.monotonic() - stopping
        assert code == 0, f"the worker exited with {code} after SIGTERM:\n{worker.output()}"
        assert took_s < DRAIN_S + 2, f"the worker took {took_s:.1f} s to stop"
        for webhook_id in sorted(under_way):  # every attempt under way finished and was recorded
            delivery = await rig.delivery_of(webhook_id)
            assert delivery["status"] == "succeeded", delivery
            assert [a["status_code"] for a in delivery["attempts"]] == [204], delivery
        await rig.relay.start("worker")
        await changing
        await ledger.settle(60)
        ledger.note = f"{len(under_way)} under way at SIGTERM, stopped in {took_s:.1f} s"
        ledger.check()
        again = [w for w in under_way if len(rig.subscriber.attempts(w)) > 1]
        assert again == [], f"attempts finished during the drain were sent again: {again[:5]}"
