"""Brightpearl misbehaving while changes keep happening in it: throttling storms, 500s, outages, answers too slow
or timing out, malformed JSON, an expired or replaced token. Once the fault clears, every change arrives, once.
"""

import asyncio
import time
from pathlib import Path

import pytest

from tests.e2e import wait_for
from tests.faults.ledger import Ledger
from tests.faults.rig import Rig, fault_rig

pytestmark = pytest.mark.timeout(120)


async def during(rig: Rig, fault_s: float, *, before_s: float = 1.0, after_s: float = 1.0) -> asyncio.Task[None]:
    """Start the relay and changes that go on for ``before_s``, the fault's ``fault_s`` and ``after_s``; return
    once the fault should begin (the changes still going)."""
    await rig.start()
    await rig.register()
    await rig.subscribe()
    changing = asyncio.create_task(rig.keep_changing(before_s + fault_s + after_s))
    await asyncio.sleep(before_s)
    return changing


async def last_error(rig: Rig) -> str:
    return str((await rig.account_status())["last_error"] or "")


async def storm(rig: Rig, ledger: Ledger, *, bursts: int, drain_every: int | None, settle_s: float) -> None:
    changing = await during(rig, fault_s=bursts)
    for burst in range(bursts):
        await rig.fault("throttle", count=3, next_throttle_period_ms=500)  # the next 3 requests, whenever
        if drain_every and burst % drain_every == 0:
            await rig.control("POST", "/spend", {"requests": 200})  # the account's whole minute, gone
        await asyncio.sleep(1)
    await changing
    await ledger.settle(settle_s)
    ledger.check()
    throttled = (await rig.control("GET", "/requests"))["throttled"]
    ledger.note = f"{throttled} requests throttled"
    assert throttled > 0, "the storm never met a request"


async def test_a_throttling_storm(ledger: Ledger, redis_url: str, tmp_path: Path) -> None:
    """Brightpearl throttles in bursts, again and again."""
    async with fault_rig(ledger, redis_url, tmp_path) as rig:
        await storm(rig, ledger, bursts=4, drain_every=None, settle_s=30)


@pytest.mark.slow_fault
@pytest.mark.timeout(180)
async def test_a_throttling_storm_draining_the_minute(ledger: Ledger, redis_url: str, tmp_path: Path) -> None:
    """Another integration drains the account's rolling minute, twice, between bursts of throttling: the relay
    waits out whole minutes of 503s."""
    async with fault_rig(ledger, redis_url, tmp_path) as rig:
        await storm(rig, ledger, bursts=6, drain_every=3, settle_s=120)


@pytest.mark.parametrize(
    ("kind", "error", "options"),
    [
        pytest.param("error_500", "CMNU-003", {}, id="500"),
        pytest.param("malformed", "not JSON", {}, id="malformed JSON"),
        pytest.param("unavailable", "503", {}, id="503 unavailable", marks=pytest.mark.slow_fault),
        pytest.param("html", "522: Connection timed out", {"status": 522}, id="Cloudflare 522 page"),
        pytest.param(
            "html", "Attention Required", {"status": 403}, id="Cloudflare 403 page", marks=pytest.mark.slow_fault
        ),
        pytest.param("empty", "empty body", {}, id="empty body", marks=pytest.mark.slow_fault),
    ],
)
async def test_failing_answers(
    ledger: Ledger, redis_url: str, tmp_path: Path, kind: str, error: str, options: dict[str, int]
) -> None:
    """Every request answered 500, 503 (not throttling), with JSON cut short, with Cloudflare's HTML page instead
    of JSON (403, 52x) or with no body at all, for 2.5 s."""
    async with fault_rig(ledger, redis_url, tmp_path) as rig:
        changing = await during(rig, fault_s=2.5)
        await rig.fault(kind, for_s=2.5, **options)
        await wait_for(lambda: last_error(rig), 3, "the relay to meet the fault")
        assert error in await last_error(rig)
        await changing
        await ledger.settle(30)
        ledger.check()
        assert not await last_error(rig), "the last poll failed although the fault was over"


@pytest.mark.slow_fault
async def test_slow_answers(ledger: Ledger, redis_url: str, tmp_path: Path) -> None:
    """Every answer takes 2 s for 4 s (slow, within the client's timeout)."""
    async with fault_rig(ledger, redis_url, tmp_path) as rig:
        changing = await during(rig, fault_s=4)
        await rig.fault("slow", for_s=4, delay_ms=2000)
        await changing
        await ledger.settle(30)
        ledger.check()


@pytest.mark.slow_fault
@pytest.mark.timeout(180)
async def test_answers_timing_out(ledger: Ledger, redis_url: str, tmp_path: Path) -> None:
    """Searches hang past the client's 30 s timeout, twice in a row."""
    async with fault_rig(ledger, redis_url, tmp_path) as rig:
        changing = await during(rig, fault_s=40, before_s=2)
        await rig.fault("slow", count=2, delay_ms=35_000, path_contains="order-search")

        async def timed_out() -> bool:
            return "no answer within" in await last_error(rig)

        await wait_for(timed_out, 45, "a search to time out")
        await changing
        await ledger.settle(60)
        ledger.check()


@pytest.mark.slow_fault
@pytest.mark.timeout(180)
async def test_more_than_10000_orders_in_a_minute(ledger: Ledger, redis_url: str, tmp_path: Path) -> None:
    """A bulk import: 10,000 orders at once, then changes going on as usual. Not a fault of Brightpearl's, but
    what it may well answer: more rows within the look-back overlap than one poll reads (20 pages of 500)."""
    async with fault_rig(ledger, redis_url, tmp_path) as rig:
        await rig.start()
        await rig.register()
        await rig.subscribe()
        await rig.create_orders(10_000)
        await rig.keep_changing(5)
        await ledger.settle(45)
        ledger.check()


async def expire_then_patch(rig: Rig, ledger: Ledger, *, replace: bool, settle_s: float) -> None:
    """The token stops working while changes happen: expired for 3 s, or replaced in Brightpearl; then the relay
    is given the working token (PATCH), which should make it poll again at once."""
    changing = await during(rig, fault_s=3)
    if replace:
        await rig.control("PATCH", "", {"account_token": "a-new-token"})
    else:
        await rig.fault("expire_token", for_s=3)
    shown = "Invalid instance token" if replace else "Authorization token expired"

    async def refused() -> bool:
        return shown in await last_error(rig)

    await wait_for(refused, 10, "the relay to show the refused token")
    await changing
    token = rig.sandbox.account(rig.account).account_token
    patched = time.monotonic()
    await rig.relay.call("PATCH", f"/v1/accounts/{rig.account}", {"account_token": token}, expect=200)
    await ledger.settle(settle_s)
    resumed = [a for a in ledger.arrivals if a.at > patched]
    ledger.note = f"first event {min(a.at for a in resumed) - patched:.0f} s after the PATCH" if resumed else ""
    ledger.check()


async def test_an_expired_token_given_again(ledger: Ledger, redis_url: str, tmp_path: Path) -> None:
    """Expired for 3 s; once it works again, PATCHing the account with it resumes polling within 8 s."""
    async with fault_rig(ledger, redis_url, tmp_path) as rig:
        await expire_then_patch(rig, ledger, replace=False, settle_s=8)


async def test_a_replaced_token(ledger: Ledger, redis_url: str, tmp_path: Path) -> None:
    """Replaced in Brightpearl: the old one is refused until the relay is given the new one (PATCH), then
    polling resumes within 8 s."""
    async with fault_rig(ledger, redis_url, tmp_path) as rig:
        await expire_then_patch(rig, ledger, replace=True, settle_s=8)


@pytest.mark.slow_fault
@pytest.mark.timeout(180)
async def test_an_expired_token_working_again_by_itself(ledger: Ledger, redis_url: str, tmp_path: Path) -> None:
    """Nobody touches the relay: after its minute of back-off it polls again and catches up."""
    async with fault_rig(ledger, redis_url, tmp_path) as rig:
        changing = await during(rig, fault_s=5)
        await rig.fault("expire_token", for_s=5)
        await changing
        await ledger.settle(100)
        ledger.check()
