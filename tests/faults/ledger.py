"""The fault suite's bookkeeping: for one case, the changes made in the sandbox against the webhooks that came.

A change is named by a key the test chooses and the webhook's body also yields (see :func:`change_key`):
``("order.created", 12)``, ``("order.modified.order-status", 12, 4)``, ``("contact.modified", 7, "new@x")``: for a
change, the state it leads to. The ledger counts:

- **changes**: changes made in the sandbox; **expected**: the events they must produce;
- **delivered**: expected events that arrived (a receiver answered 2xx) at least once;
- **lost**: expected events that never arrived;
- **duplicates**: arrivals beyond the first of one ``webhook-id`` (at-least-once allows them);
- **conflicts**: changes that arrived under two different ``webhook-id``s (never allowed);
- **extra**: arrivals for no change made (never allowed where a case subscribes to what it makes);
- **unsigned**: arrivals whose signature did not verify (never allowed).

Waiting is bounded: :meth:`Ledger.settle` waits until every expected event arrived or a deadline passes, then a
quiet period for late duplicates. It never tries anything again: what did not come is counted as lost.
"""

import asyncio
import contextlib
import json
import time
from collections import Counter, defaultdict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from tests.e2e import wait_for

ChangeKey = tuple[Hashable, ...]


def change_key(body: dict[str, Any]) -> ChangeKey:
    """The change a webhook reports: its type, the resource's id, and for a status change the status after."""
    kind = str(body.get("type"))
    data = body.get("data") or {}
    if kind == "order.modified.order-status":
        after = data.get("changes", {}).get("orderStatus", {}).get("after") or {}
        return (kind, data.get("id"), after.get("orderStatusId") if isinstance(after, dict) else after)
    if kind.endswith(".created"):
        return (kind, data.get("id"))
    if kind == "contact.modified":  # the cases change a contact's email, a new one each time
        emails = (data.get("resource") or {}).get("communication", {}).get("emails", {})
        return (kind, data.get("id"), emails.get("PRI", {}).get("email"))
    changes = data.get("changes") or {}
    return (kind, data.get("id"), json.dumps({k: v.get("after") for k, v in changes.items()}, sort_keys=True))


@dataclass
class Arrival:
    webhook_id: str
    key: ChangeKey
    verified: bool
    path: str  # which subscriber endpoint got it
    at: float = field(default_factory=time.monotonic)


@dataclass
class Tally:
    """One case's line in the suite's table."""

    case: str
    changes: int = 0
    expected: int = 0
    delivered: int = 0
    lost: int = 0
    duplicates: int = 0
    conflicts: int = 0
    extra: int = 0
    unsigned: int = 0
    seconds: float = 0.0
    outcome: str = "?"
    note: str = ""


@dataclass
class Ledger:
    """Changes made and webhooks received in one case."""

    case: str
    started: float = field(default_factory=time.monotonic)
    changes: int = 0
    expected: dict[tuple[str, ChangeKey], None] = field(default_factory=dict)  # (path, key), in the order made
    arrivals: list[Arrival] = field(default_factory=list)
    note: str = ""
    seen_keys: set[ChangeKey] = field(default_factory=set)  # changes arrived at any endpoint

    def made(self, *keys: ChangeKey, path: str = "") -> None:
        """Record changes made in the sandbox, each expected once as a webhook at the subscriber ``path``."""
        self.changes += len(keys)
        self.expect_also(*keys, path=path)

    def expect_also(self, *keys: ChangeKey, path: str = "") -> None:
        """Expect the same changes at another subscriber endpoint too (without counting them as changes again)."""
        self.expected.update(dict.fromkeys((path, key) for key in keys))

    def arrived(self, webhook_id: str, body: dict[str, Any], *, verified: bool, path: str = "") -> None:
        """A subscriber accepted a webhook (answered 2xx)."""
        key = change_key(body)
        self.arrivals.append(Arrival(webhook_id, key, verified, path))
        self.seen_keys.add(key)

    def seen(self, key: ChangeKey) -> bool:
        """Whether a change has arrived (anywhere): the relay has seen the state it led to."""
        return key in self.seen_keys

    # --- counts -----------------------------------------------------------------------------------------------

    def _ids_by_change(self) -> dict[tuple[str, ChangeKey], set[str]]:
        ids: dict[tuple[str, ChangeKey], set[str]] = defaultdict(set)
        for arrival in self.arrivals:
            ids[(arrival.path, arrival.key)].add(arrival.webhook_id)
        return ids

    def missing(self) -> list[tuple[str, ChangeKey]]:
        arrived = {(a.path, a.key) for a in self.arrivals}
        return [wanted for wanted in self.expected if wanted not in arrived]

    def tally(self) -> Tally:
        arrived = {(a.path, a.key) for a in self.arrivals}
        per_id = Counter((a.path, a.webhook_id) for a in self.arrivals)
        return Tally(
            case=self.case,
            changes=self.changes,
            expected=len(self.expected),
            delivered=sum(1 for wanted in self.expected if wanted in arrived),
            lost=len(self.missing()),
            duplicates=sum(n - 1 for n in per_id.values()),
            conflicts=sum(1 for ids in self._ids_by_change().values() if len(ids) > 1),
            extra=len(arrived - self.expected.keys()),
            unsigned=sum(1 for a in self.arrivals if not a.verified),
            seconds=time.monotonic() - self.started,
            note=self.note,
        )

    # --- waiting and judging ----------------------------------------------------------------------------------

    async def settle(self, timeout_s: float, quiet_s: float = 1.0) -> None:
        """Wait until every expected event arrived (at most ``timeout_s``), then ``quiet_s`` for late duplicates."""
        with contextlib.suppress(AssertionError):  # what is still missing then is lost: check() says so
            await wait_for(lambda: not self.missing(), timeout_s, "every expected event")
        await asyncio.sleep(quiet_s)

    def check(self) -> Tally:
        """Assert what every case must hold: nothing lost, no change under two ids, nothing unasked, all signed."""
        tally = self.tally()
        missing = self.missing()
        assert tally.lost == 0, f"{tally.lost} of {tally.expected} events never arrived, e.g. {missing[:5]}"
        conflicting = {k: sorted(v) for k, v in self._ids_by_change().items() if len(v) > 1}
        assert tally.conflicts == 0, f"changes delivered under two webhook-ids: {list(conflicting.items())[:3]}"
        unasked = sorted({(a.path, a.key) for a in self.arrivals} - self.expected.keys(), key=repr)
        assert tally.extra == 0, f"{tally.extra} webhooks for no change made, e.g. {unasked[:5]}"
        assert tally.unsigned == 0, f"{tally.unsigned} webhooks whose signature did not verify"
        return tally


def format_table(tallies: list[Tally]) -> list[str]:
    """The suite's summary, one line a case."""
    width = max(len("case"), *(len(t.case) for t in tallies))
    header = (
        f"{'case':<{width}} {'changes':>7} {'expected':>8} {'delivered':>9} {'lost':>5} {'dup':>5} "
        f"{'2 ids':>5} {'extra':>5} {'time':>7}  result"
    )
    lines = [header, "-" * len(header)]
    for t in tallies:
        lines.append(
            f"{t.case:<{width}} {t.changes:>7} {t.expected:>8} {t.delivered:>9} {t.lost:>5} {t.duplicates:>5} "
            f"{t.conflicts:>5} {t.extra:>5} {t.seconds:>6.1f}s  {t.outcome}" + (f"  ({t.note})" if t.note else "")
        )
    return lines
