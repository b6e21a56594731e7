"""Redis with a replica and Sentinel: the primary goes away in the middle of a stream of changes and the replica is
promoted, while ``relay api`` and ``relay worker`` keep running on ``redis+sentinel://``. Nothing is lost, no
change goes out under two webhook-ids, and the same processes carry on against the new primary.

The group is Debian's ``redis-server`` and ``redis-sentinel``: a primary, its replica (``--replicaof``) and three
sentinels (quorum 2), on free loopback ports. A sentinel holds the primary down after 1 s without an answer;
the promotion follows within about 2 s.

Three ways to go away:

- **killed** (SIGKILL): its connections close at once, so every command under way fails at once;
- **frozen, then back** (SIGSTOP, SIGCONT once the replica is promoted), as a network that splits and heals: its
  connections stay open and unanswered; when it thaws it answers what waited, still believing it is the
  primary, until the sentinels turn it into a replica of the new one (and close its clients' connections);
- **frozen for good** (SIGSTOP), as a machine that lost power: commands under way wait until their reply is
  overdue (10 s), then go to the new primary. Slower: ``make faults`` runs it.

Replication is asynchronous: what the primary acknowledged in its last moment may never have reached the replica
(and what a thawed primary acknowledges before it is demoted is dropped when it resyncs). The relay must survive
that too: the cursor and the events it commits together are lost together, and the same changes, found again,
get the same ids; a delivery whose outcome was lost is sent again under the same id.
"""

import asyncio
import time
from pathlib import Path
from typing import Literal

import pytest

from tests.e2e import wait_for
from tests.faults.ledger import Ledger
from tests.faults.redis_server import SentinelGroup, sentinel_group
from tests.faults.rig import Rig, fault_rig

How = Literal["kill", "freeze", "vanish"]
HOW = {"kill": "SIGKILL", "freeze": "SIGSTOP, SIGCONT once promoted", "vanish": "SIGSTOP for good"}


async def fail_over_mid_stream(rig: Rig, group: SentinelGroup, how: How, up_s: float) -> float:
    """Changes before, during and after the failover; how long the promotion took."""
    workers = await rig.start()
    pids = [p.proc.pid for p in rig.relay.processes]
    await rig.register()
    await rig.subscribe()
    await rig.keep_changing(up_s)
    await wait_for(lambda: bool(rig.ledger.arrivals), 20, "the first webhooks, before the failover")

    changing = asyncio.create_task(rig.keep_changing(up_s))  # changes go on in Brightpearl throughout
    gone_at = time.monotonic()
    await group.primary.kill() if how == "kill" else group.primary.freeze()
    await wait_for(lambda: group.named_by(group.replica), 20, "the sentinels to promote the replica")
    promotion_s = time.monotonic() - gone_at
    if how == "freeze":
        group.primary.thaw()  # a primary again, for the seconds until the sentinels demote it
    await changing

    # the API writes to the new primary; changes made from now on arrive through it, with nothing restarted
    await rig.relay.call("PATCH", f"/v1/accounts/{rig.account}", {"poll_interval_s": 1}, expect=200)
    before = len(rig.ledger.expected)
    await rig.keep_changing(up_s)
    after = list(rig.ledger.expected)[before:]
    if how == "freeze":  # what the thawed primary took meanwhile is dropped now: the relay must not miss it
        await wait_for(lambda: group.demoted(group.primary), 20, "the sentinels to demote the old primary")
    await wait_for(lambda: all(rig.ledger.seen(key) for _, key in after), 30, "changes made after the promotion")
    await rig.ledger.settle(30)

    assert [p.proc.pid for p in rig.relay.processes] == pids
    exited = [f"{p.name}: {p.proc.returncode}" for p in rig.relay.processes if p.proc.returncode is not None]
    assert exited == [], f"relay processes exited: {exited}"
    assert rig.relay.http is not None
    async with rig.relay.http.get(f"{rig.relay.api_url}/readyz") as response:
        assert response.status == 200
    for worker in workers:
        async with rig.relay.http.get(f"{worker.url}/healthz") as response:
            assert response.status == 200
    return promotion_s


@pytest.mark.timeout(90)
@pytest.mark.parametrize("how", ["kill", "freeze", pytest.param("vanish", marks=pytest.mark.slow_fault)])
async def test_primary_lost_mid_stream_and_replica_promoted(ledger: Ledger, tmp_path: Path, how: How) -> None:
    async with (
        sentinel_group(tmp_path / "redis") as group,
        fault_rig(ledger, group.url, tmp_path) as rig,
    ):
        promotion_s = await fail_over_mid_stream(rig, group, how, up_s=3)
        ledger.note = f"primary {HOW[how]}; replica promoted in {promotion_s:.1f} s"
        ledger.check()
