"""Polls in Redis: when each account is next polled, which claim is polling it now, and what its planner learned.

Each account sits in the ``polls`` ZSET, scored by when its next poll is due. A poll is taken by claiming it
(:meth:`Polls.claim`): in one script its score moves to the end of a lease and its owner key takes a fresh token.
That claim is the only ownership of a poll. Its token travels with the poll job, the poller renews the lease
with it while it works (:meth:`Polls.renew`), and every write of the poll is fenced by it (:attr:`Claim.fence`
for its commits, :meth:`Polls.report` for its status, :meth:`Polls.save` for its plan):
a poller that stalls past its lease finds its claim taken over by the next one and writes nothing. A poller that
dies leaves its lease to end, and the account comes due again then.

A poll opens in one round trip (:meth:`Polls.open`: what the poll starts from read, and the lease renewed unless
the claim was made a moment ago) and ends in one (:meth:`Polls.save`: its plan, its status and the budget it did
not spend), so that a poll that finds no change costs Redis those two and its budget's reservation
(``workers.budget``).

A poll ends by storing the account's :class:`PollPlan` (when each resource is next due, what a poll of it costs,
the interval it gets); the ZSET score is derived from the plan and written with it, by :meth:`Polls.save` and
:func:`queue_plan` (one script), and nowhere else.
"""

import random
import secrets
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from pydantic import BaseModel, Field
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from subscriptions.core.fence import Fence
from subscriptions.store import keyspace
from subscriptions.store.lua import Script

CLAIM = Script.beside(__file__, "poll_claim.lua")
RENEW = Script.beside(__file__, "poll_renew.lua")
SAVE_PLAN = Script.beside(__file__, "poll_plan.lua")
OPEN = Script.beside(__file__, "poll_open.lua")
REPORT = Script.beside(__file__, "poll_status.lua")


class HintLane(BaseModel):
    """How one resource's hints are doing (``workers.hint_health`` judges them; kept in the account's plan).

    ``healthy``: hints announce the changes polls find, so the resource is polled every safety interval.
    ``degraded``: polls found changes no hint announced; the asked interval applies until ``recover_at_ms``.
    ``suspects``: ids of changes a poll found before any hint named them, with when (Unix ms), judged at a later
    poll: a hint that came meanwhile was only slower than the poll; none, and the change was missed."""

    state: Literal["healthy", "degraded"] = "healthy"
    since_ms: int = 0
    recover_at_ms: int | None = None
    misses: int = 0
    last_miss_ms: int | None = None
    degradations: int = 0  # in a row, without a healthy hour between: how long the next degradation lasts
    suspects: dict[str, int] = Field(default_factory=dict)


class PollPlan(BaseModel):
    """What the planner knows of one account, kept between its polls."""

    due_ms: dict[str, int] = Field(default_factory=dict)  # resource -> Unix ms of its next poll; absent: due now
    requests_per_poll: dict[str, float] = Field(default_factory=dict)  # running average of a poll's requests
    interval_s: dict[str, float] = Field(default_factory=dict)  # the interval each resource got at its last poll
    hints: dict[str, HintLane] = Field(default_factory=dict)  # resource -> how its hints are doing (hinted ones)
    polled_ms: dict[str, int] = Field(default_factory=dict)  # resource -> Unix ms its last poll started
    poll_gap_s: dict[str, float] = Field(default_factory=dict)  # its measured interval (workers.cadence)

    def next_poll_ms(self, idle_ms: int) -> int:
        """When the account is next due: at its earliest resource's poll, or ``idle_ms`` when it has none."""
        return min(self.due_ms.values(), default=idle_ms)

    def due_at(self, resources: Iterable[str], at_ms: int) -> "PollPlan":
        """This plan with each of ``resources`` (and no other) due at ``at_ms``; what it learned of costs kept."""
        return self.model_copy(update={"due_ms": dict.fromkeys(resources, at_ms)})

    def postponed(self, until_ms: int) -> "PollPlan":
        """This plan with no resource due before ``until_ms``."""
        return self.model_copy(update={"due_ms": {r: max(due, until_ms) for r, due in self.due_ms.items()}})


@dataclass(frozen=True)
class Claim:
    """One claim of one account's poll: the account, the token its poll job carries and when its lease ends (Unix
    ms; 0: not known here)."""

    code: str
    token: str
    until_ms: int = 0

    @property
    def fence(self) -> Fence:
        """What every write of the poll checks: the account's owner key still holds this claim's token."""
        return Fence(keyspace.poll_owner(self.code), self.token)


@dataclass(frozen=True)
class PollBacklog:
    """The scheduler's backlog: polls due and not yet claimed, and the oldest one's wait (0 when none is due)."""

    due: int
    oldest_due_age_s: float


@dataclass(frozen=True)
class Opened:
    """What a poll reads of its account when it opens (:meth:`Polls.open`), in one round trip: the account's
    stored record (JSON; ``None``: removed), its plan, the positions asked for (``None``: none stored), the status
    fields asked for (absent: not set), its dirty stock products, and whether hints wait (ids or whole resources)."""

    account_json: str | None
    plan: PollPlan
    positions: dict[str, str | None]
    status: dict[str, str]
    stock_dirty: list[int]
    hints_waiting: bool


def new_token() -> str:
    return secrets.token_hex(8)


SPREAD = 4  # candidates looked at for each claim asked for (see Polls.claim)


class Polls:
    """The polls of every account, over one Redis connection pool (``decode_responses=True``)."""

    def __init__(self, redis: "Redis") -> None:
        self.redis = redis

    async def claim(self, *, now_ms: int, lease_ms: int, limit: int, among: Sequence[str] | None = None) -> list[Claim]:
        """Up to ``limit`` accounts due by ``now_ms`` (of those ``among``, if given), each now claimed for
        ``lease_ms`` under a fresh token.

        Without ``among`` the candidates are the :data:`SPREAD` times ``limit`` longest due, in a random order: workers
        claiming at the same moment then mostly claim different accounts, rather than all racing for the same few
        (one winning them all, the others none)."""
        claims, _ = await self._claim(now_ms=now_ms, lease_ms=lease_ms, limit=limit, among=among, next_due=False)
        return claims

    async def claim_next(self, *, now_ms: int, lease_ms: int, limit: int) -> tuple[list[Claim], int | None]:
        """:meth:`claim` of the longest due, and, in the same round trip, :meth:`next_due_ms` after it: what a
        scheduler needs to claim and then know how long to wait."""
        return await self._claim(now_ms=now_ms, lease_ms=lease_ms, limit=limit, among=None, next_due=True)

    async def _claim(
        self, *, now_ms: int, lease_ms: int, limit: int, among: Sequence[str] | None, next_due: bool
    ) -> tuple[list[Claim], int | None]:
        if among is None:
            due = await cast(
                Awaitable[list[str]],
                self.redis.zrangebyscore(keyspace.POLLS, "-inf", now_ms, start=0, num=limit * SPREAD),
            )
            random.shuffle(due)
        else:
            due = list(among)
        if not due:
            return [], await self.next_due_ms() if next_due else None
        args = {
            "now_ms": now_ms,
            "lease_ms": lease_ms,
            "limit": limit,
            "members": due,
            "tokens": [new_token() for _ in due],
            "next": next_due,
        }
        script_keys = [keyspace.POLLS, *map(keyspace.poll_owner, due)]
        answer, first = cast(tuple[list[str], str | None], await CLAIM.run(self.redis, script_keys, args))
        until_ms = now_ms + lease_ms
        claims = [Claim(answer[i], answer[i + 1], until_ms) for i in range(0, len(answer), 2)]
        return claims, int(float(first)) if first else None

    async def renew(self, claim: Claim, *, until_ms: int) -> bool:
        """Extend a claim's lease to ``until_ms``; False when it was taken over (or its account removed)."""
        args = {"member": claim.code, "token": claim.token, "until_ms": until_ms}
        return bool(await RENEW.run(self.redis, [keyspace.POLLS, keyspace.poll_owner(claim.code)], args))

    async def open(
        self, claim: Claim, *, until_ms: int | None, positions: Sequence[str] = (), fields: Sequence[str] = ()
    ) -> Opened | None:
        """Renew ``claim``'s lease to ``until_ms`` and read what a poll of its account starts from, in one step;
        ``None`` when the claim was taken over (or the account's polls removed). With ``until_ms`` None (a claim
        just made: its lease has barely begun, no other process can have taken it over) it is only read."""
        code = claim.code
        script_keys = [
            keyspace.POLLS,
            keyspace.poll_owner(code),
            keyspace.account(code),
            keyspace.poll_plan(code),
            keyspace.account_status(code),
            keyspace.stock_dirty(code),
            keyspace.hint_pending(code),
            keyspace.hint_overflow(code),
            *(keyspace.position(code, name) for name in positions),
        ]
        renew = {"token": claim.token, "until_ms": until_ms} if until_ms is not None else {}
        args = {"member": code, **renew, "fields": list(fields)}
        answer = await OPEN.run(self.redis, script_keys, args)
        if not answer:
            return None
        account, plan, stored, values, dirty, hint_keys = cast(list[Any], answer)
        return Opened(
            account_json=account,
            plan=PollPlan.model_validate_json(plan) if plan else PollPlan(),
            positions=dict(zip(positions, stored, strict=True)),
            status={name: value for name, value in zip(fields, values, strict=True) if value is not None},
            stock_dirty=sorted(int(member) for member in dirty),
            hints_waiting=int(hint_keys) > 0,
        )

    async def report(self, claim: Claim, fields: dict[str, str]) -> bool:
        """Record a poll's outcome in its account's status (what the API shows), while ``claim`` still owns it."""
        args = {"token": claim.token, "fields": fields}
        return bool(
            await REPORT.run(self.redis, [keyspace.poll_owner(claim.code), keyspace.account_status(claim.code)], args)
        )

    async def plan(self, code: str) -> PollPlan:
        """The account's plan; an empty one (every resource due, nothing learned) when it has none yet."""
        text = cast(str | None, await self.redis.get(keyspace.poll_plan(code)))
        return PollPlan.model_validate_json(text) if text else PollPlan()

    async def save(
        self,
        code: str,
        plan: PollPlan,
        *,
        idle_ms: int,
        claim: Claim | None,
        hints_due_ms: int | None = None,
        status: dict[str, str] | None = None,
        unspent: Sequence[str] = (),
    ) -> bool:
        """Store ``plan`` and schedule the account's next poll from it. With ``claim``, only while that claim still
        owns the poll, which then ends. With ``hints_due_ms``, an account whose hints wait is due again by then.
        With ``status``, the poll's outcome is recorded in the account's status (as :meth:`report` does), and the
        ``unspent`` uses of its request budget given back, in the same step. False when nothing was written (taken
        over, or the account is gone)."""
        script_keys, args = _save_call(code, plan, idle_ms, claim, hints_due_ms, status, unspent)
        return bool(await SAVE_PLAN.run(self.redis, script_keys, args))

    async def next_due_ms(self) -> int | None:
        """When the earliest account is due (or its claim's lease ends), or ``None`` when there is none."""
        first = cast(list[tuple[str, float]], await self.redis.zrange(keyspace.POLLS, 0, 0, withscores=True))
        return int(first[0][1]) if first else None

    async def backlog(self, *, now_ms: int) -> "PollBacklog":
        """The polls due by ``now_ms`` that no poller has claimed yet (a claim moves its account's score to its
        lease end), and how long the oldest of them has waited: ZCOUNT and the first score, one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcount(keyspace.POLLS, "-inf", now_ms)
            pipe.zrange(keyspace.POLLS, 0, 0, withscores=True)
            due, first = await pipe.execute()
        oldest_ms = float(first[0][1]) if first else now_ms
        return PollBacklog(due=int(due), oldest_due_age_s=max(0.0, (now_ms - oldest_ms) / 1000))

    async def remove(self, code: str) -> None:
        """Forget an account's polls (it was removed)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            queue_remove(pipe, code)
            await pipe.execute()


def queue_plan(pipe: Pipeline, code: str, plan: PollPlan, *, idle_ms: int) -> None:
    """Queue, in ``pipe``, the unfenced store of an account's plan with its next poll (registration, a change)."""
    script_keys, args = _save_call(code, plan, idle_ms, None)
    SAVE_PLAN.queue(pipe, script_keys, args)


def queue_remove(pipe: Pipeline, code: str) -> None:
    """Queue, in ``pipe``, the removal of everything kept of an account's polls."""
    pipe.zrem(keyspace.POLLS, code)
    pipe.delete(keyspace.poll_plan(code), keyspace.poll_owner(code))


def _save_call(
    code: str,
    plan: PollPlan,
    idle_ms: int,
    claim: Claim | None,
    hints_due_ms: int | None = None,
    status: dict[str, str] | None = None,
    unspent: Sequence[str] = (),
) -> tuple[list[str], dict[str, Any]]:
    script_keys = [
        keyspace.POLLS,
        keyspace.poll_plan(code),
        keyspace.poll_owner(code),
        keyspace.account(code),
        keyspace.hint_pending(code),
        keyspace.hint_overflow(code),
        keyspace.account_status(code),
        keyspace.budget(code),
    ]
    args = {
        "member": code,
        "plan": plan.model_dump_json(),
        "next_ms": plan.next_poll_ms(idle_ms),
        "token": claim.token if claim else None,
        "hints_due_ms": hints_due_ms,
        "status": status or {},
        "unspent": list(unspent),
    }
    return script_keys, args
