"""Brightpearl's clock not agreeing with the relay's: the account in another UTC offset, its clock ahead or
behind, drifting (gaining or losing seconds every minute), its offset changing mid-run (summer time ending),
or stepped back (an NTP correction). The relay follows Brightpearl's own timestamps only, so every change
still arrives, once.

Orders and contacts change here (orders stamped to the second, contacts to the millisecond).
"""

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.faults.ledger import Ledger
from tests.faults.rig import Rig, fault_rig

pytestmark = pytest.mark.timeout(120)


async def start(rig: Rig, **clock: Any) -> None:
    """Set the account's clock, then start the relay watching orders and contacts (each every 2 s: the budget
    has room for both)."""
    if clock:
        await rig.control("PATCH", "", clock)
    await rig.start()
    await rig.register(resources=("orders", "contacts"), poll_interval_s=2)
    await rig.subscribe()


def clock_note(shown: dict[str, Any]) -> str:
    offset, skew, drift = shown["offset_minutes"], shown["clock_skew_s"], shown["clock_drift_s_per_min"]
    return f"offset {offset} min, skew {skew:g} s, drift {drift:g} s/min"


async def test_everything_at_once(ledger: Ledger, redis_url: str, tmp_path: Path) -> None:
    """The cases below in one run: +05:30, 90 s ahead and gaining 20 s a minute; then, mid-run, the offset moves
    to +04:30, the clock is stepped back 20 s and starts losing 20 s a minute."""
    async with fault_rig(ledger, redis_url, tmp_path) as rig:
        await start(rig, offset_minutes=330, clock_skew_s=90, clock_drift_s_per_min=20)
        changing = asyncio.create_task(rig.keep_changing(6, contacts=True))
        await asyncio.sleep(3)
        await rig.control("PATCH", "", {"offset_minutes": 270, "clock_skew_s": 70, "clock_drift_s_per_min": -20})
        await changing
        await ledger.settle(30)
        ledger.note = clock_note(await rig.control("GET", ""))
        ledger.check()


@pytest.mark.slow_fault
@pytest.mark.parametrize(
    ("offset_minutes", "skew_s"),
    [(330, 90), (-480, -90)],
    ids=["+05:30 and 90 s ahead", "-08:00 and 90 s behind"],
)
async def test_another_offset_ahead_or_behind(
    ledger: Ledger, redis_url: str, tmp_path: Path, offset_minutes: int, skew_s: float
) -> None:
    async with fault_rig(ledger, redis_url, tmp_path) as rig:
        await start(rig, offset_minutes=offset_minutes, clock_skew_s=skew_s)
        await rig.keep_changing(6, contacts=True)
        await ledger.settle(30)
        ledger.note = clock_note(await rig.control("GET", ""))
        ledger.check()


@pytest.mark.slow_fault
@pytest.mark.parametrize("drift_s_per_min", [20.0, -20.0], ids=["gaining 20 s a minute", "losing 20 s a minute"])
async def test_a_drifting_clock(ledger: Ledger, redis_url: str, tmp_path: Path, drift_s_per_min: float) -> None:
    async with fault_rig(ledger, redis_url, tmp_path) as rig:
        await start(rig, offset_minutes=60, clock_drift_s_per_min=drift_s_per_min)
        await rig.keep_changing(8, contacts=True)
        await ledger.settle(30)
        ledger.note = clock_note(await rig.control("GET", ""))
        ledger.check()


@pytest.mark.slow_fault
@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ("skew_s", "drift_s_per_min"), [(40, 30.0), (-40, -30.0)], ids=["gaining to 70 s ahead", "losing to 70 s behind"]
)
async def test_drifting_past_the_overlap(
    ledger: Ledger, redis_url: str, tmp_path: Path, skew_s: float, drift_s_per_min: float
) -> None:
    """40 s off and drifting 30 s a minute for a minute: 70 s off by the end, more than the relay's 60 s
    look-back overlap."""
    async with fault_rig(ledger, redis_url, tmp_path) as rig:
        await start(rig, offset_minutes=-300, clock_skew_s=skew_s, clock_drift_s_per_min=drift_s_per_min)
        await rig.keep_changing(60, every_s=0.5, contacts=True)
        await ledger.settle(30)
        ledger.note = clock_note(await rig.control("GET", ""))
        ledger.check()


@pytest.mark.slow_fault
async def test_the_offset_changing_mid_run(ledger: Ledger, redis_url: str, tmp_path: Path) -> None:
    """Summer time ends: the account's timestamps go from +01:00 to +00:00 while changes happen."""
    async with fault_rig(ledger, redis_url, tmp_path) as rig:
        await start(rig, offset_minutes=60)
        changing = asyncio.create_task(rig.keep_changing(8, contacts=True))
        await asyncio.sleep(4)
        await rig.control("PATCH", "", {"offset_minutes": 0})
        await changing
        await ledger.settle(30)
        ledger.note = "+01:00 -> +00:00"
        ledger.check()


@pytest.mark.slow_fault
async def test_the_clock_stepped_back(ledger: Ledger, redis_url: str, tmp_path: Path) -> None:
    """An NTP correction sets Brightpearl's clock 20 s back mid-run (within the relay's 60 s overlap): records
    changed after it carry older stamps than records changed before it."""
    async with fault_rig(ledger, redis_url, tmp_path) as rig:
        await start(rig, clock_skew_s=20)
        changing = asyncio.create_task(rig.keep_changing(8, contacts=True))
        await asyncio.sleep(4)
        await rig.control("PATCH", "", {"clock_skew_s": 0})
        await changing
        await ledger.settle(30)
        ledger.note = "stepped back 20 s"
        ledger.check()
