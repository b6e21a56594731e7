"""Subscribers misbehaving while changes keep coming: 500s, hanging past the timeout, resetting connections,
410 Gone (the subscription is disabled, later events kept as skipped, then re-enabled and recovered), and 429
with ``Retry-After``. Retries are fast here (1, 1, 2, 3 s; 2 s timeout); each fault lasts less than the whole
schedule, so every event must arrive by itself, except after 410, where a recovery sends what was kept.
"""

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e import wait_for
from tests.faults.ledger import Ledger
from tests.faults.rig import Rig, fault_rig
from tests.faults.subscriber import HANG, OK, RESET, Answer, refuse

pytestmark = pytest.mark.timeout(120)


async def run_through(rig: Rig, answer: Answer, *, fault_s: float, before_s: float = 1, after_s: float = 1) -> None:
    """Changes for ``before_s``, then the subscriber answers ``answer`` for ``fault_s`` (changes going on), then
    it recovers and changes go on for ``after_s``."""
    await rig.start()
    await rig.register()
    await rig.subscribe()
    changing = asyncio.create_task(rig.keep_changing(before_s + fault_s + after_s))
    await asyncio.sleep(before_s)
    rig.subscriber.answer_all(answer)
    await asyncio.sleep(fault_s)
    rig.subscriber.answer_all(OK)
    await changing


def faulted(rig: Rig, kind: str) -> set[str]:
    """The webhook-ids the subscriber answered with ``kind`` at least once."""
    return {r.webhook_id for r in rig.subscriber.requests if r.answer.kind == kind}


@pytest.mark.parametrize("status", [500, pytest.param(503, marks=pytest.mark.slow_fault)])
async def test_5xx_then_recovering(ledger: Ledger, redis_url: str, tmp_path: Path, status: int) -> None:
    async with fault_rig(ledger, redis_url, tmp_path) as rig:
        await run_through(rig, refuse(status), fault_s=2.5)
        await ledger.settle(30)
        ledger.check()
        assert faulted(rig, "status"), "the fault never met a delivery"


async def test_hanging_past_the_timeout(ledger: Ledger, redis_url: str, tmp_path: Path) -> None:
    async with fault_rig(ledger, redis_url, tmp_path) as rig:
        await run_through(rig, HANG, fault_s=2.5)
        await ledger.settle(40)
        ledger.check()
        hung = faulted(rig, "hang")
        assert hung, "the fault never met a delivery"
        attempts = (await rig.delivery_of(sorted(hung)[0]))["attempts"]
        assert attempts[0]["status_code"] is None
        assert attempts[0]["error"], attempts[0]
        assert attempts[-1]["status_code"] == 204


async def test_resetting_connections(ledger: Ledger, redis_url: str, tmp_path: Path) -> None:
    async with fault_rig(ledger, redis_url, tmp_path) as rig:
        await run_through(rig, RESET, fault_s=2.5)
        await ledger.settle(30)
        ledger.check()
        reset = faulted(rig, "reset")
        assert reset, "the fault never met a delivery"
        attempts = (await rig.delivery_of(sorted(reset)[0]))["attempts"]
        assert (attempts[0]["status_code"], attempts[-1]["status_code"]) == (None, 204)


async def test_429_with_retry_after(ledger: Ledger, redis_url: str, tmp_path: Path) -> None:
    async with fault_rig(ledger, redis_url, tmp_path) as rig:
        await run_through(rig, refuse(429, Retry_After="3"), fault_s=4)
        await ledger.settle(30)
        ledger.check()
        throttled = faulted(rig, "status")
        assert throttled, "the fault never met a delivery"
        early = []
        for webhook_id in throttled:  # the retry after a 429 waits the 3 s asked for, not the schedule's 1 s
            seen = rig.subscriber.attempts(webhook_id)
            for refused, following in itertools.pairwise(seen):
                if refused.answer.kind == "status" and following.at - refused.at < 2.9:
                    early.append(round(following.at - refused.at, 2))
        assert early == [], f"retries sooner than Retry-After: {early[:10]}"


async def test_410_then_reenabled_and_recovered(ledger: Ledger, redis_url: str, tmp_path: Path) -> None:
    """410 disables the subscription; later events are kept as skipped; PATCH to active and a recovery send them."""
    started = datetime.now(UTC) - timedelta(seconds=5)
    async with fault_rig(ledger, redis_url, tmp_path) as rig:
        await rig.start()
        await rig.register()
        sub = (await rig.subscribe())["id"]
        await rig.keep_changing(1)
        rig.subscriber.answer_all(refuse(410))
        changing = asyncio.create_task(rig.keep_changing(3))

        async def disabled() -> bool:
            return bool((await rig.relay.call("GET", f"/v1/subscriptions/{sub}"))["state"] == "disabled")

        await wait_for(disabled, 15, "the subscription to be disabled after 410")
        rig.subscriber.answer_all(OK)  # the endpoint is back, but the relay keeps what comes for a disabled one
        view = await rig.relay.call("GET", f"/v1/subscriptions/{sub}", expect=200)
        assert "410" in (view["disabled_reason"] or ""), view
        await changing
        await wait_for(lambda: rig.count_deliveries("skipped"), 15, "deliveries kept as skipped")
        skipped, failed = await rig.count_deliveries("skipped"), await rig.count_deliveries("failed")
        assert ledger.missing(), "nothing was held back: the case did not test anything"
        await rig.relay.call("PATCH", f"/v1/subscriptions/{sub}", {"state": "active"}, expect=200)
        recovery = await rig.relay.call(
            "POST", f"/v1/subscriptions/{sub}/recover", {"since": started.isoformat()}, expect=202
        )
        await rig.keep_changing(1)  # and new changes flow as usual
        await ledger.settle(40)
        ledger.note = f"{skipped} skipped + {failed} failed, recovered"
        ledger.check()

        async def completed() -> bool:
            view = await rig.relay.call("GET", f"/v1/subscriptions/{sub}/recover/{recovery['id']}", expect=200)
            return bool(view["status"] == "completed")

        await wait_for(completed, 20, "the recovery to complete")
        view = await rig.relay.call("GET", f"/v1/subscriptions/{sub}/recover/{recovery['id']}", expect=200)
        assert view["total"] >= skipped + failed, view
        assert view["failed"] == 0, view
