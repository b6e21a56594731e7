"""Subscribing Brightpearl's native webhooks as hints: which of an account's webhooks to keep, delete and create
(:func:`plan_webhooks`, pure), and doing it against Brightpearl (:class:`HintSubscriber`).

The relay's own webhooks are exactly those whose ``uriTemplate`` starts with
``{RELAY_PUBLIC_URL}/hooks/brightpearl/{account}/``: everything else on the account belongs to another integration
and is never touched, whatever it subscribes. Brightpearl has no update of a webhook (API.md 7.1), so one that
differs in any field from what the relay wants (an old token, another body template) is deleted and created
again. Brightpearl refuses some events on real accounts (400 ``INTC-064``, e.g. ``order.created``,
``contact.*``): those are listed as refused, not an error; polling covers them as it always did.

The outcome goes to the account's status hash (``hints:subscribed``, ``hints:refused`` as JSON lists,
``hints:reconciled_at``, ``hints:error``, empty after a success), which the API and the dashboard show.
Requests go through the account's budget at low priority: subscribing can wait, polls cannot. One process at a
time reconciles an account (a lock in Redis): a registration and a worker starting at once would otherwise both
create the same webhook, and Brightpearl would send every hint twice.
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
from redis.exceptions import LockError

from subscriptions.core.models import AccountRecord
from subscriptions.store import keyspace
from subscriptions.store.hints import Hints
from subscriptions.store.oauth_tokens import WAITING
from subscriptions.store.records import Store
from workers.brightpearl.client import BrightpearlClient
from workers.brightpearl.errors import BrightpearlError, RequestRejected
from workers.brightpearl.timestamps import format_utc
from workers.budget import Budgets, Priority
from workers.hints import body_template, wanted_events
from workers.oauth_accounts import OAuthAccess, budget_per_minute, credentials_of

log = logging.getLogger(__name__)

HOOK_PATH = "/hooks/brightpearl"
WEBHOOKS = "integration-service/webhook"
REFUSED_CODE = "INTC-064"  # "either does not exist or cannot be subscribed too"
REMOVE_WITHIN_S = 10.0  # removing an account's webhooks is best effort, and must not hold up its removal long
STARTUP_CONCURRENCY = 4  # accounts reconciled at once when a worker starts
LOCK_S = 60.0  # how long a reconciliation holds its account's lock at most (a process that dies lets it go then)


def hook_prefix(public_url: str, code: str) -> str:
    """The start of every hint URL of account ``code``: what makes a webhook the relay's own."""
    return f"{public_url.rstrip('/')}{HOOK_PATH}/{code}/"


def hook_url(public_url: str, code: str, hint_token: str) -> str:
    """The URL Brightpearl posts the account's hints to (it holds the secret token: never log it)."""
    return hook_prefix(public_url, code) + hint_token


def wanted_webhook(event: str, url: str) -> dict[str, Any]:
    """The body of ``POST integration-service/webhook`` that subscribes ``event`` to ``url``."""
    return {
        "subscribeTo": event,
        "httpMethod": "POST",
        "uriTemplate": url,
        "contentType": "application/json",
        "idSetAccepted": True,
        "qualityOfService": 1,
        "bodyTemplate": body_template(),
    }


def matches(webhook: Mapping[str, Any], url: str) -> bool:
    """Whether an existing webhook is exactly what the relay would create for its event and ``url``."""
    wanted = wanted_webhook(str(webhook.get("subscribeTo")), url)
    return all(webhook.get(name) == value for name, value in wanted.items())


@dataclass(frozen=True)
class WebhookPlan:
    """What to do with an account's webhooks: the events already subscribed as wanted (``keep``, by webhook id),
    the relay's own webhooks to delete, and the events to subscribe."""

    keep: dict[str, int] = field(default_factory=dict)
    delete: tuple[int, ...] = ()
    create: tuple[str, ...] = ()


def plan_webhooks(
    existing: Iterable[Mapping[str, Any]], *, prefix: str, url: str | None, events: Sequence[str]
) -> WebhookPlan:
    """Which of ``existing`` (as Brightpearl lists them) to keep and delete, and which ``events`` to create, so
    that the relay's own webhooks (``uriTemplate`` under ``prefix``) are exactly ``events`` at ``url``; ``url``
    None (hints off) deletes all of its own. Others' webhooks are never in the plan. A duplicate of a kept one
    is deleted, so that one change is hinted once."""
    wanted = set(events) if url is not None else set()
    keep: dict[str, int] = {}
    delete: list[int] = []
    for webhook in existing:
        uri, hook_id = webhook.get("uriTemplate"), webhook.get("id")
        if not isinstance(uri, str) or not uri.startswith(prefix) or not isinstance(hook_id, int):
            continue  # another integration's (or one Brightpearl lists without an id: nothing can be done to it)
        event = webhook.get("subscribeTo")
        if url is not None and event in wanted and event not in keep and matches(webhook, url):
            keep[str(event)] = hook_id
        else:
            delete.append(hook_id)
    create = tuple(sorted(e for e in wanted if e not in keep))
    return WebhookPlan(keep=keep, delete=tuple(sorted(delete)), create=create)


def is_refusal(error: BrightpearlError) -> bool:
    """Whether Brightpearl refused to subscribe an event (400 ``INTC-064``), as it does on real accounts for
    ``order.created`` and ``contact.*``."""
    return isinstance(error, RequestRejected) and error.status == 400 and any(REFUSED_CODE in m for m in error.messages)


@dataclass(frozen=True)
class Subscribed:
    """An account's hint webhooks after a reconcile: the events subscribed, those refused, and what failed."""

    subscribed: list[str]
    refused: list[str]
    error: str | None = None

    def status_fields(self, at: str) -> dict[str, str]:
        """The fields of the account's status hash that say so."""
        return {
            "hints:subscribed": json.dumps(self.subscribed),
            "hints:refused": json.dumps(self.refused),
            "hints:reconciled_at": at,
            "hints:error": self.error or "",
        }


async def list_webhooks(client: BrightpearlClient) -> list[dict[str, Any]]:
    """Every webhook of the account (Brightpearl may answer 404 where there are none)."""
    try:
        found = await client.get(WEBHOOKS)
    except RequestRejected as error:
        if error.status == 404:
            return []
        raise
    return [w for w in found if isinstance(w, dict)] if isinstance(found, list) else []


async def apply_plan(client: BrightpearlClient, plan: WebhookPlan, url: str | None) -> Subscribed:
    """Delete and create what ``plan`` says; refused events are listed, any other failure is raised."""
    for hook_id in plan.delete:
        try:
            await client.request("DELETE", f"{WEBHOOKS}/{hook_id}")
        except RequestRejected as error:
            if error.status != 404:  # gone already: what was wanted
                raise
    subscribed, refused = sorted(plan.keep), []
    for event in plan.create:
        assert url is not None  # an empty plan.create without one
        try:
            await client.request("POST", WEBHOOKS, body=wanted_webhook(event, url))
        except BrightpearlError as error:
            if not is_refusal(error):
                raise
            refused.append(event)
        else:
            subscribed.append(event)
    return Subscribed(sorted(subscribed), sorted(refused))


def safe_error(error: BrightpearlError, secret: str) -> str:
    """What to show of a failure: its message without the hint token (a URL in it may hold one)."""
    text = str(error)
    return text.replace(secret, "…") if secret else text


class HintSubscriber:
    """Reconciles accounts' hint webhooks with Brightpearl, spending from each account's budget: at low priority
    in a worker (polls first), at normal priority and a short wait in the API (a person waits for the answer)."""

    def __init__(
        self,
        store: Store,
        session: aiohttp.ClientSession,
        budgets: Budgets,
        public_url: str | None,
        *,
        clock: Callable[[], datetime],
        timeout_s: float = 30.0,
        max_budget_wait_s: float = 60.0,
        priority: Priority = "low",
        oauth: OAuthAccess | None = None,
    ) -> None:
        self.oauth = oauth
        self.store = store
        self.session = session
        self.budgets = budgets
        self.public_url = public_url
        self.clock = clock
        self.timeout_s = timeout_s
        self.max_budget_wait_s = max_budget_wait_s
        self.priority: Priority = priority

    def client(self, account: AccountRecord) -> BrightpearlClient:
        credentials = credentials_of(account, self.oauth)
        return BrightpearlClient(
            self.session,
            credentials,
            budget=self.budgets.of(account.code, budget_per_minute(account, self.budgets.per_minute, self.oauth)),
            timeout_s=self.timeout_s,
            max_budget_wait_s=self.max_budget_wait_s,
            priority=self.priority,
        )

    async def reconcile(self, account: AccountRecord) -> Subscribed:
        """Make the account's own webhooks what it wants (none when hints are off) and record the outcome in its
        status; a failure is recorded too (``hints:error``), never raised. Waits for another process reconciling
        the same account to finish first (at most :data:`LOCK_S`, then goes ahead)."""
        lock = self.store.redis.lock(keyspace.hint_webhooks_lock(account.code), timeout=LOCK_S, blocking_timeout=LOCK_S)
        held = await lock.acquire()
        try:
            return await self._reconcile(account)
        finally:
            if held:
                with contextlib.suppress(LockError):  # held past its timeout: someone else's now
                    await lock.release()

    async def _reconcile(self, account: AccountRecord) -> Subscribed:
        if account.auth == "oauth" and await self._awaiting_authorization(account.code):
            log.info("hint webhooks of account %s: reconciled once the account is authorized", account.code)
            return Subscribed([], [])  # its status keeps what it said; the connect flow reconciles
        if self.public_url is None:
            outcome = Subscribed([], [], "RELAY_PUBLIC_URL is not set: Brightpearl has nowhere to send hints")
            if not account.hints:
                outcome = Subscribed([], [])
        else:
            url = hook_url(self.public_url, account.code, account.hint_token) if account.hints else None
            events = wanted_events(account.resources) if account.hints else []
            client = self.client(account)
            try:
                existing = await list_webhooks(client)
                plan = plan_webhooks(
                    existing, prefix=hook_prefix(self.public_url, account.code), url=url, events=events
                )
                outcome = await apply_plan(client, plan, url)
            except BrightpearlError as error:
                message = safe_error(error, account.hint_token)
                log.warning("hint webhooks of account %s: %s", account.code, message)
                outcome = Subscribed([], [], message)
            if outcome.error is None:
                log.info(
                    "hint webhooks of account %s: subscribed %s, refused %s",
                    account.code,
                    outcome.subscribed,
                    outcome.refused,
                )
        await self.store.update_account_status(account.code, outcome.status_fields(format_utc(self.clock())))
        return outcome

    async def _awaiting_authorization(self, code: str) -> bool:
        status = await self.store.account_status(code)
        return status.get("auth_state") in WAITING

    async def remove(self, account: AccountRecord, *, within_s: float = REMOVE_WITHIN_S, record: bool = False) -> None:
        """Remove the account's own webhooks and forget its hints: best effort, for at most ``within_s`` (the
        account is being removed or its hints turned off; a webhook left behind posts to a 404). ``record``: say
        so in the account's status (not for an account being removed: that would leave its status behind)."""
        await Hints(self.store.redis).forget(account.code)
        if record:
            await self.store.update_account_status(
                account.code, Subscribed([], []).status_fields(format_utc(self.clock()))
            )
        if self.public_url is None:
            return
        client = self.client(account)
        try:
            async with asyncio.timeout(within_s):
                existing = await list_webhooks(client)
                prefix = hook_prefix(self.public_url, account.code)
                await apply_plan(client, plan_webhooks(existing, prefix=prefix, url=None, events=[]), None)
        except (BrightpearlError, TimeoutError) as error:
            shown = safe_error(error, account.hint_token) if isinstance(error, BrightpearlError) else "timed out"
            log.warning("could not remove the hint webhooks of account %s: %s", account.code, shown)

    async def reconcile_all(self, *, concurrency: int = STARTUP_CONCURRENCY) -> int:
        """Reconcile every account with hints on (a worker starting: a webhook deleted meanwhile comes back);
        answers how many were reconciled."""
        if self.public_url is None:
            return 0
        gate = asyncio.Semaphore(concurrency)
        done = 0

        async def one(account: AccountRecord) -> None:
            nonlocal done
            async with gate:
                await self.reconcile(account)
                done += 1

        cursor: str | None = None
        while True:
            page = await self.store.list_accounts(limit=100, cursor=cursor)
            await asyncio.gather(*(one(a) for a in page.items if a.hints))
            cursor = page.next_cursor
            if cursor is None:
                return done
