"""One poll of one account: read each due resource's changes, commit events with the cursor, plan the next poll.

Polls run as arq jobs on any worker process, one job for each claim of an account's poll
(``subscriptions.store.polls``). The claim is the poll's one owner: the job renews its lease while it works, and its
token fences every commit, so a poller that lost its claim (paused past the lease) cannot write a stale cursor
over a newer one, nor the account's plan.
"""

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import aiohttp
from redis.asyncio import Redis

from subscriptions.core.crypto import TokenKeyError
from subscriptions.core.errors import LostLease
from subscriptions.core.models import RESOURCES, AccountRecord
from subscriptions.core.times import ms
from subscriptions.store.hints import Hints
from subscriptions.store.oauth_tokens import WAITING
from subscriptions.store.polls import Claim, HintLane, Opened, PollPlan, Polls
from subscriptions.store.queue import DeliveryQueue
from subscriptions.store.records import Store
from workers.brightpearl.client import BrightpearlClient
from workers.brightpearl.errors import AuthenticationFailed, BrightpearlError
from workers.brightpearl.search import MAX_PAGE_SIZE
from workers.brightpearl.timestamps import format_utc, from_ms
from workers.budget import Budgets, Priority, RequestBudget
from workers.cadence import record_start
from workers.context import PollContext, Preloaded
from workers.detectors import DETECTORS, POSITIONS, Detector
from workers.hint_health import due_suspects, suspected
from workers.hint_health import judged as judged_lane
from workers.hint_reads import MAX_HINTED_IDS, read_hinted
from workers.hints import coalesce_ms, covered_resources
from workers.metrics import Metrics
from workers.oauth_accounts import OAuthAccess, budget_per_minute, credentials_of
from workers.plan import average_cost, effective_intervals, hinted_healthy, next_due_ms, with_safety_net

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollPolicy:
    overlap_s: float = 60.0
    budget_per_minute: int = 100
    lease_s: float = 10.0  # a poll's claim lasts this long unless renewed; a dead poller's ends this fast
    concurrency: int = 200  # RELAY_POLL_CONCURRENCY: account polls one worker runs at once (each mostly waits)
    auth_failure_backoff_s: float = 60.0
    page_size: int = MAX_PAGE_SIZE
    sweep_interval_s: float = 3600.0
    brightpearl_timeout_s: float = 30.0  # RELAY_BRIGHTPEARL_TIMEOUT_S: one request's longest wait
    status_sweep_interval_s: float = 300.0
    hint_coalesce_ms: int = 30  # RELAY_HINT_COALESCE_MS: how long hints wait for more (longer as the budget fills)


def client_for(
    session: aiohttp.ClientSession,
    account: AccountRecord,
    budget: RequestBudget | None,
    page_size: int = MAX_PAGE_SIZE,
    priority: Priority = "high",
    *,
    timeout_s: float = 30.0,
    oauth: OAuthAccess | None = None,
) -> BrightpearlClient:
    """A Brightpearl client for a stored account (an OAuth account's through ``oauth``, the token manager)."""
    credentials = credentials_of(account, oauth)
    return BrightpearlClient(
        session, credentials, budget=budget, page_size=page_size, priority=priority, timeout_s=timeout_s
    )


MAX_DROPPED_SHOWN = 20  # ids a lane's status lists of its last drops

PRIORITIES: dict[str, Priority] = {"orders": "high"}  # the rest "normal"; the stock sweep "low"; hints' reads "high"
MAX_PENDING_DROPPED = 1_000_000  # ids of a resource not watched any more, dropped at once
Outcome = Literal["ok", "error", "unauthorized", "lost"]
# the status fields a poll reads when it opens: whether it may poll at all, which hints it judges, and what a lane's
# failure or drop adds to (read again only if its lane fails or drops ids)
STATUS_READ = (
    "auth_state",
    "hints:subscribed",
    *(f"{resource}:{name}" for resource in RESOURCES for name in ("error_since", "dropped_ids")),
)


@dataclass
class PollRun:
    """One poll of one account, as it goes: its claim, what it read when it opened, and the status fields it has
    found so far, written when it ends, with its plan (one step: ``Polls.save``)."""

    claim: Claim
    opened: Opened
    preloaded: Preloaded
    status: dict[str, str] = field(default_factory=dict)
    saved: bool = False
    budget: RequestBudget | None = None  # the account's, made at its first Brightpearl request

    def status_field(self, name: str) -> str | None:
        """A status field as this poll leaves it so far: as it found it when it opened, or as it set it since."""
        return self.status[name] if name in self.status else self.opened.status.get(name)


class Poller:
    """Runs polls; one per process, shared by its poll jobs."""

    def __init__(
        self,
        store: Store,
        queue: DeliveryQueue,
        redis: "Redis",
        session: aiohttp.ClientSession,
        policy: PollPolicy,
        metrics: Metrics,
        *,
        clock: Callable[[], datetime],
        on_deliveries: Callable[[], None],
        oauth: OAuthAccess | None = None,
    ) -> None:
        self.oauth = oauth
        self.store = store
        self.queue = queue
        self.redis = redis
        self.polls = Polls(redis)
        self.hints = Hints(redis)
        self.session = session
        self.policy = policy
        self.metrics = metrics
        self.clock = clock
        self.on_deliveries = on_deliveries

    @property
    def budgets(self) -> Budgets:
        """The accounts' request budgets, at the policy's requests a minute."""
        return Budgets(self.redis, self.policy.budget_per_minute, self.clock)

    def per_minute(self, account: AccountRecord) -> int:
        """The account's requests a minute: the private apps' share, or an OAuth app's of its own pool."""
        return budget_per_minute(account, self.policy.budget_per_minute, self.oauth)

    async def poll(self, claim: Claim) -> None:
        """Poll the due resources of the account ``claim`` took, then schedule the account's next poll; nothing,
        if the claim was taken over before the job started (another poller has the account)."""
        now_ms, lease_ms = ms(self.clock()), int(self.policy.lease_s * 1000)
        fresh = claim.until_ms - now_ms > lease_ms * 2 // 3  # claimed a moment ago: nothing to check or renew yet
        until_ms = None if fresh else now_ms + lease_ms
        opened = await self.polls.open(claim, until_ms=until_ms, positions=POSITIONS, fields=STATUS_READ)
        if opened is None:
            log.debug("poll of %s: its claim was taken over; the poller holding it carries on", claim.code)
            return
        run = PollRun(claim, opened, Preloaded(dict(opened.positions), list(opened.stock_dirty)))
        keeper = asyncio.create_task(self._keep(claim))
        try:
            await self._poll_claimed(run)
        except TokenKeyError as error:  # RELAY_ENCRYPTION_KEY cannot decrypt the account's token: a person must act
            await self._report_unreadable_token(claim, error)
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            if run.status and not run.saved:  # the poll ended before its plan was saved: what it found still shows
                await self._report_unsaved(run)

    async def poll_now(self, code: str) -> None:
        """Poll an account now, every watched resource made due first, claimed as the scheduler claims it (tests
        and benchmarks run polls by hand); nothing if a poll of it is under way."""
        plan = await self.polls.plan(code)
        now_ms = ms(self.clock())
        await self.polls.save(code, plan.model_copy(update={"due_ms": {}}), idle_ms=now_ms, claim=None)
        lease_ms = int(self.policy.lease_s * 1000)
        for claim in await self.polls.claim(now_ms=now_ms, lease_ms=lease_ms, limit=1, among=[code]):
            await self.poll(claim)

    async def _renew(self, claim: Claim) -> bool:
        return await self.polls.renew(claim, until_ms=ms(self.clock()) + int(self.policy.lease_s * 1000))

    async def _keep(self, claim: Claim) -> None:
        """Renew the claim's lease while the poll runs, until it is found taken over."""
        while True:
            await asyncio.sleep(self.policy.lease_s / 3)
            if not await self._renew(claim):
                log.warning("poll of %s lost its claim; its writes are refused from now on", claim.code)
                return

    async def _report_unsaved(self, run: PollRun) -> None:
        try:
            await self.polls.report(run.claim, run.status)
        except Exception:  # the poll's own failure is what matters; this one is logged beside it
            log.exception("poll of %s: its status could not be recorded", run.claim.code)

    async def _poll_claimed(self, run: PollRun) -> None:
        claim = run.claim
        code = claim.code
        if run.opened.account_json is None:
            await self.polls.remove(code)
            return
        account = self.store.account_from_json(run.opened.account_json)
        watched = [r for r in RESOURCES if r in account.resources and r in DETECTORS]
        if account.auth == "oauth" and run.opened.status.get("auth_state") in WAITING:
            await self._pause(run, watched)
            return
        plan = run.opened.plan
        run.budget = self.budgets.of(code, self.per_minute(account))
        judged = self._judged_resources(run, account, watched, plan)
        healthy = hinted_healthy(judged, plan.hints)
        asked = with_safety_net(account.intervals_s(watched), healthy, account.safety_poll_interval_s)
        planned_before = dict(plan.interval_s)  # what the last poll planned with: the cadence it measures against
        plan.interval_s = effective_intervals(asked, self.per_minute(account), plan.requests_per_poll)
        due: dict[str, int] = {r: plan.due_ms.get(r, 0) for r in watched}
        now_ms = ms(self.clock())
        run.budget.expect(round(sum(plan.requests_per_poll.get(r, 0.0) for r in watched if due[r] <= now_ms)))
        if account.hints:  # hints come above polling: read what waits first, and again after each resource
            due |= dict.fromkeys((r for r in await self.hints.take_overflow(code) if r in due), 0)
            if await self._read_hints(account, watched, run, plan, healthy) == "lost":
                return
        elif run.opened.hints_waiting:
            await self._drop_hints(code)
        for resource in watched:  # in priority order: orders first
            now_ms = ms(self.clock())
            if due[resource] > now_ms:
                continue
            cadence = record_start(
                plan,
                resource,
                due_ms=due[resource],
                started_ms=now_ms,
                previous_interval_s=planned_before.get(resource),
            )
            due[resource] = next_due_ms(due[resource], now_ms, int(plan.interval_s[resource] * 1000))
            outcome = await self._poll_resource(
                account, resource, DETECTORS[resource], run, plan, judge=resource in judged, cadence=cadence
            )
            if outcome == "lost":
                return
            if outcome == "unauthorized":  # a person must act: no use asking every second
                backoff = timedelta(seconds=max(account.poll_interval_s, self.policy.auth_failure_backoff_s))
                due = dict.fromkeys(watched, ms(self.clock() + backoff))
                break
            if account.hints and await self._read_hints(account, watched, run, plan, healthy) == "lost":
                return
        if judged:
            await self._judge_hints(run, plan, judged)
        plan.due_ms = due
        idle_ms = ms(self.clock() + timedelta(seconds=account.poll_interval_s))
        hints_due_ms = await self._hints_due_ms(code) if account.hints else None
        run.saved = await self.polls.save(
            code,
            plan,
            idle_ms=idle_ms,
            claim=claim,
            hints_due_ms=hints_due_ms,
            status=run.status,
            unspent=run.budget.unspent(),
        )
        if not run.saved:
            log.warning("poll of %s lost its claim before it ended; the poller holding it schedules it", code)

    async def _pause(self, run: PollRun, watched: Sequence[str]) -> None:
        """Leave an account that waits for a new authorization alone: no Brightpearl call, its cursors where they
        are, its hints dropped (the polls that resume read what they named), and a look again only after the
        auth backoff; new tokens (``PATCH /v1/accounts``) make it due at once."""
        claim = run.claim
        if run.opened.hints_waiting:
            await self._drop_hints(claim.code)
        retry_ms = ms(self.clock() + timedelta(seconds=self.policy.auth_failure_backoff_s))
        plan = run.opened.plan
        plan.due_ms = dict.fromkeys(watched, retry_ms)
        run.saved = await self.polls.save(claim.code, plan, idle_ms=retry_ms, claim=claim, status=run.status)

    def _judged_resources(
        self, run: PollRun, account: AccountRecord, watched: Sequence[str], plan: PollPlan
    ) -> list[str]:
        """The watched resources whose hints are judged (and, while healthy, polled as the safety net): with hints
        on, those the events Brightpearl accepted cover (``hints:subscribed``), each given a lane in ``plan``."""
        if not account.hints:
            return []
        text = run.opened.status.get("hints:subscribed")
        try:
            subscribed = json.loads(text) if text else []
        except ValueError:
            subscribed = []
        names = [name for name in subscribed if isinstance(name, str)] if isinstance(subscribed, list) else []
        covered = covered_resources(names, watched)
        for resource in covered:
            plan.hints.setdefault(resource, HintLane(since_ms=ms(self.clock())))
        return covered

    async def _hints_due_ms(self, code: str) -> int:
        """When hints that came during this poll are read: after they have waited for more as long as the budget
        says (:func:`workers.hints.coalesce_ms`), as a hint arriving now would."""
        used = await self.budgets.of(code).used_last_minute()
        delay_ms = coalesce_ms(used, self.policy.budget_per_minute, self.policy.hint_coalesce_ms)
        return ms(self.clock()) + delay_ms

    async def _read_hints(
        self, account: AccountRecord, watched: Sequence[str], run: PollRun, plan: PollPlan, trusted: Sequence[str]
    ) -> Literal["ok", "lost"]:
        """Read the ids hints named that wait, each watched resource's (up to :data:`MAX_HINTED_IDS`) in priority
        order; those of a resource not watched any more are dropped. ``trusted``: the resources whose hints are
        healthy (stock among them: Brightpearl announces its moves itself, so an order's hint leaves them be)."""
        waiting, _ = await self.hints.pending(account.code)
        for resource in sorted(waiting - set(watched)):
            await self.hints.take(account.code, resource, MAX_PENDING_DROPPED)
        for resource in (r for r in watched if r in waiting):
            ids = await self.hints.take(account.code, resource, MAX_HINTED_IDS)
            if not ids:
                continue

            async def read(ctx: PollContext, resource: str = resource, ids: list[int] = ids) -> None:
                await read_hinted(ctx, resource, ids, settle_stock="stock" not in trusted)

            outcome = await self._run(account, resource, read, run, plan, kind="hint")
            if outcome == "lost":
                return "lost"
            if outcome == "unauthorized":  # the poll's backoff applies; hints kept would make it due at once
                await self._drop_hints(account.code)
                break
        return "ok"

    async def _drop_hints(self, code: str) -> None:
        """Hints of an account whose hints are off are not read (they would keep its poll due at once)."""
        waiting, whole = await self.hints.pending(code)
        for resource in waiting:
            await self.hints.take(code, resource, MAX_PENDING_DROPPED)
        if whole:
            await self.hints.take_overflow(code)

    async def _judge_hints(self, run: PollRun, plan: PollPlan, judged: list[str]) -> None:
        """Judge each hinted lane's suspects old enough, move its state, log and count a change of state."""
        now_ms = ms(self.clock())
        for resource in judged:
            lane = plan.hints[resource]
            due = due_suspects(lane, now_ms)
            hinted = await self.hints.last_hinted(run.claim.code, resource, due) if due else {}
            verdict = judged_lane(lane, hinted, now_ms)
            plan.hints[resource] = verdict.lane
            if verdict.misses:
                self.metrics.hint_misses.labels(resource).inc(verdict.misses)
            if verdict.change == "degraded":
                self.metrics.hint_degradations.labels(resource).inc()
                until = format_utc(from_ms(verdict.lane.recover_at_ms or now_ms))
                log.warning(
                    "hints of %s %s degraded: polls found %d change(s) no hint announced; polled as asked until %s",
                    run.claim.code,
                    resource,
                    verdict.misses,
                    until,
                )
            elif verdict.change == "recovered":
                log.info("hints of %s %s healthy again: polled as the safety net", run.claim.code, resource)
        states = {plan.hints[r].state for r in judged}
        run.status["hints:state"] = "degraded" if "degraded" in states else "healthy"

    async def _report_unreadable_token(self, claim: Claim, error: TokenKeyError) -> None:
        """Say why an account cannot be polled where the API shows its state, and try it again later, not at once."""
        log.error("poll of %s: %s", claim.code, error)
        now = self.clock()
        await self.polls.report(claim, {"last_error": str(error), "last_error_at": format_utc(now)})
        retry_ms = ms(now + timedelta(seconds=self.policy.auth_failure_backoff_s))
        plan = (await self.polls.plan(claim.code)).postponed(retry_ms)
        await self.polls.save(claim.code, plan, idle_ms=retry_ms, claim=claim)

    def _lane_error(self, run: PollRun, resource: str, error: BrightpearlError) -> dict[str, str]:
        """The status fields of a lane's failed poll: its error, its kind, when, and since when the lane has
        failed without a success between (kept from the run's first error; a success clears it)."""
        at = format_utc(self.clock())
        since = run.status_field(f"{resource}:error_since")
        fields = {
            "last_error": str(error),
            "last_error_at": at,
            f"{resource}:last_error": str(error),
            f"{resource}:last_error_kind": error.kind,
            f"{resource}:last_error_at": at,
        }
        if not since:
            fields[f"{resource}:error_since"] = at
        return fields

    def _lane_dropped(self, run: PollRun, resource: str, dropped: list[int]) -> dict[str, str]:
        """The status fields of ids Brightpearl refused alone: how many so far, the last ones, when."""
        before = run.status_field(f"{resource}:dropped_ids")
        return {
            f"{resource}:dropped_ids": str(int(before or 0) + len(dropped)),
            f"{resource}:last_dropped_ids": ",".join(map(str, sorted(set(dropped))[:MAX_DROPPED_SHOWN])),
            f"{resource}:last_dropped_at": format_utc(self.clock()),
        }

    async def _poll_resource(
        self,
        account: AccountRecord,
        resource: str,
        detector: Detector,
        run: PollRun,
        plan: PollPlan,
        *,
        judge: bool,
        cadence: dict[str, str],
    ) -> Outcome:
        """Poll one resource, recording the outcome in the account's status (with ``cadence``: its actual interval
        and delay, ``workers.cadence``) and the metrics, and what the poll cost in ``plan``; with ``judge``, the
        changes it found that no hint's read stored first are suspects of its hints' lane (``workers.hint_health``)."""
        return await self._run(account, resource, detector, run, plan, kind="poll", judge=judge, status=cadence)

    def _clients(
        self, account: AccountRecord, budget: RequestBudget, priority: Priority | None, resource: str
    ) -> tuple[BrightpearlClient, BrightpearlClient]:
        """The clients of one resource's poll: at its priority (``priority`` when given), and at low priority for its
        sweeps (the same client for a hint's read, which has none)."""
        timeout_s = self.policy.brightpearl_timeout_s
        page_size = self.policy.page_size
        asked: Priority = priority or PRIORITIES.get(resource, "normal")
        client = client_for(self.session, account, budget, page_size, asked, timeout_s=timeout_s, oauth=self.oauth)
        if priority is not None:
            return client, client
        return client, client_for(
            self.session, account, budget, page_size, "low", timeout_s=timeout_s, oauth=self.oauth
        )

    async def _run(
        self,
        account: AccountRecord,
        resource: str,
        work: Detector,
        run: PollRun,
        plan: PollPlan,
        *,
        kind: Literal["poll", "hint"],
        judge: bool = False,
        status: dict[str, str] | None = None,
    ) -> Outcome:
        """Run a poll of a resource, or a read of its hinted ids (``kind``), recording the outcome in the
        account's status (with ``status``'s fields) and the metrics. A hint's read asks at high priority and its
        requests are counted as spent on hints; a poll's cost is kept in ``plan``."""
        started = self.clock()
        if run.budget is None:  # one for the whole poll: what it reserved is spent across its resources
            run.budget = self.budgets.of(account.code, self.per_minute(account))
        budget = run.budget
        client, sweep_client = self._clients(account, budget, "high" if kind == "hint" else None, resource)
        status = dict(status or {})
        if kind == "hint":
            status |= {f"{resource}:last_hint_read_at": format_utc(started)}
        else:
            status |= {"last_poll_at": format_utc(started), f"{resource}:last_poll_at": format_utc(started)}
        outcome: Outcome = "ok"
        ctx = PollContext(
            client,
            account,
            self.redis,
            self.store,
            self.queue,
            run.claim.fence,
            int(self.policy.overlap_s * 1000),
            self.clock,
            self.metrics,
            self.on_deliveries,
            budget,
            sweep_client,
            self.policy.sweep_interval_s,
            self.policy.status_sweep_interval_s,
            collect_found=judge,
            preloaded=run.preloaded,
        )
        try:
            await work(ctx)
            if kind == "poll":
                status |= {
                    "last_success_at": format_utc(started),
                    f"{resource}:caught_up_at": format_utc(started),
                    "last_error": "",
                    f"{resource}:error_since": "",
                }
        except LostLease:
            log.warning("poll of %s lost its claim; another poller carries on", account.code)
            outcome = "lost"
        except BrightpearlError as error:
            what = "hinted ids of" if kind == "hint" else "poll of"
            log.warning("%s %s %s failed (%s): %s", what, account.code, resource, error.kind, error)
            status |= self._lane_error(run, resource, error)
            self.metrics.brightpearl_errors.labels(resource, error.kind).inc()
            outcome = "unauthorized" if isinstance(error, AuthenticationFailed) else "error"
        finally:
            requests = client.requests_made + (sweep_client.requests_made if sweep_client is not client else 0)
            self.metrics.brightpearl_requests.labels(resource).inc(requests)
            self.metrics.brightpearl_throttles.inc(
                client.throttles_met + (sweep_client.throttles_met if sweep_client is not client else 0)
            )
        dropped = client.dropped_ids + (sweep_client.dropped_ids if sweep_client is not client else [])
        if dropped:
            self.metrics.brightpearl_dropped_ids.labels(resource).inc(len(dropped))
            status |= self._lane_dropped(run, resource, dropped)
        if kind == "hint":
            await self.hints.spent(account.code, requests, now_ms=ms(self.clock()))
            self.metrics.hint_reads.labels(resource).inc()
        else:
            plan.requests_per_poll[resource] = average_cost(plan.requests_per_poll.get(resource), requests)
            self.metrics.polls.labels(resource, outcome).inc()
        if ctx.found and outcome != "lost":
            found_ms = ms(started)
            ids = {int(e.resource_id): found_ms for e in ctx.found if isinstance(e.resource_id, int | str)}
            plan.hints[resource] = suspected(plan.hints.get(resource) or HintLane(since_ms=found_ms), ids)
        if outcome != "lost":  # recorded when the poll ends, with its plan
            run.status |= status
        return outcome
