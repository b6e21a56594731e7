"""``/v1/accounts``: register a Brightpearl account (checking its credentials, taking its baseline), read its
polling state, change it, remove it."""

import json
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from aiohttp import web

from relay.api.access import Access, ensure_visible, principal
from relay.api.connect import authorize_url, base_url_of, callback_url, connect, oauth_ready, store_grant
from relay.api.context import ApiContext, context
from relay.api.problems import BRIGHTPEARL_ACCOUNT
from relay.api.routing import route
from relay.api.schemas import (
    AccountCreate,
    AccountCreated,
    AccountList,
    AccountPatch,
    AccountStatus,
    AccountView,
    AuthorizeLink,
    HintRequests,
    HintsStatus,
    ListQuery,
    OAuthGrant,
    ResourceStatus,
    StatusSweepStatus,
    StockSweepStatus,
)
from subscriptions.core.crypto import TokenKeyError
from subscriptions.core.errors import Conflict, InvalidInput, NotFound
from subscriptions.core.models import AccountRecord
from subscriptions.core.times import ms
from subscriptions.store import keyspace
from subscriptions.store.oauth_tokens import AUTHORIZATION_REQUIRED
from subscriptions.store.paging import Position
from subscriptions.store.polls import PollPlan, Polls
from workers.brightpearl.timestamps import format_utc, from_ms, parse_timestamp
from workers.cadence import behind_warning
from workers.detectors import Baseline
from workers.hints import covered_resources
from workers.plan import effective_intervals, hinted_healthy, interval_warnings, with_safety_net
from workers.status_sweep import STATE_KEY as STATUS_SWEEP_KEY
from workers.status_sweep import StatusSweepState
from workers.stock import SWEEP_KEY, SweepState

TAG = "accounts"


def ids_of(text: str | None) -> list[int] | None:
    return [int(part) for part in text.split(",") if part] if text else None


def seconds_of(text: str | None) -> float | None:
    """A figure of seconds as the poller writes it in the status; ``None`` when absent or empty."""
    return float(text) if text else None


async def account_view(ctx: ApiContext, account: AccountRecord) -> AccountView:
    status = await ctx.store.account_status(account.code)
    plan = await Polls(ctx.redis).plan(account.code)
    now = ctx.clock()
    asked = account.intervals_s(account.resources)
    # the poller's own sum, from the same inputs: right from registration on, and at once after a PATCH; resources
    # whose hints are healthy are planned at the safety poll's interval, as the poller plans them
    covered = covered_resources(json_list(status.get("hints:subscribed")), account.resources) if account.hints else []
    planned = with_safety_net(asked, hinted_healthy(covered, plan.hints), account.safety_poll_interval_s)
    per_minute = ctx.budget_of(account)
    effective = effective_intervals(planned, per_minute, plan.requests_per_poll)
    resources = {}
    for resource in account.resources:
        caught_up = status.get(f"{resource}:caught_up_at") or None
        resources[resource] = ResourceStatus(
            poll_interval_s=asked[resource],
            effective_poll_interval_s=effective.get(resource, asked[resource]),
            actual_poll_interval_s=seconds_of(status.get(f"{resource}:actual_poll_interval_s")),
            poll_delay_s=seconds_of(status.get(f"{resource}:poll_delay_s")),
            last_poll_at=status.get(f"{resource}:last_poll_at") or None,
            caught_up_at=caught_up,
            lag_s=round((now - parse_timestamp(caught_up)).total_seconds(), 3) if caught_up else None,
            requests_per_poll=plan.requests_per_poll.get(resource),
            last_error=status.get(f"{resource}:last_error") or None,
            last_error_kind=status.get(f"{resource}:last_error_kind") or None,
            last_error_at=status.get(f"{resource}:last_error_at") or None,
            error_since=status.get(f"{resource}:error_since") or None,
            dropped_ids=int(status[f"{resource}:dropped_ids"]) if status.get(f"{resource}:dropped_ids") else None,
            last_dropped_ids=ids_of(status.get(f"{resource}:last_dropped_ids")),
            last_dropped_at=status.get(f"{resource}:last_dropped_at") or None,
        )
    sweep = None
    if "stock" in account.resources:
        state = SweepState.parse(await ctx.store.get_position(account.code, SWEEP_KEY))
        sweep = StockSweepStatus(
            mode=state.mode,
            next_product_row=state.next_first,
            last_completed_at=state.last_completed_at,
            last_corrections=state.last_corrections,
        )
    status_sweep = None
    if "orders" in account.resources:
        swept = StatusSweepState.parse(await ctx.store.get_position(account.code, STATUS_SWEEP_KEY))
        status_sweep = StatusSweepStatus(
            next_sweep_at=format_utc(from_ms(swept.due_ms)) if swept.due_ms else None,
            last_completed_at=swept.last_completed_at,
            last_corrections=swept.last_corrections,
        )
    used = await ctx.budgets.of(account.code).used_last_minute()
    return AccountView(
        code=account.code,
        base_url=account.base_url or None,
        app_ref=account.app_ref,
        auth=account.auth,
        poll_interval_s=account.poll_interval_s,
        poll_intervals_s=account.poll_intervals_s,
        resources=account.resources,
        created_at=account.created_at,
        hints=account.hints,
        safety_poll_interval_s=account.safety_poll_interval_s,
        warnings=interval_warnings(planned, effective, per_minute) + behind_warnings(resources.items()),
        status=AccountStatus(
            last_poll_at=status.get("last_poll_at") or None,
            last_success_at=status.get("last_success_at") or None,
            last_error=status.get("last_error") or None,
            last_error_at=status.get("last_error_at") or None,
            requests_last_minute=used,
            budget_per_minute=per_minute,
            auth_state=(status.get("auth_state") or None) if account.auth == "oauth" else None,
            auth_reason=(status.get("auth_reason") or None) if account.auth == "oauth" else None,
            resources=resources,
            stock_sweep=sweep,
            status_sweep=status_sweep,
            hints=hints_status(
                account, status, plan, used, await ctx.hints.spent_last_minute(account.code, now_ms=ms(now))
            ),
        ),
    )


def behind_warnings(resources: Iterable[tuple[str, ResourceStatus]]) -> list[str]:
    """A line for each resource the workers poll less often than planned (they cannot keep up)."""
    lines = (behind_warning(name, r.actual_poll_interval_s, r.effective_poll_interval_s) for name, r in resources)
    return [line for line in lines if line]


def hints_status(account: AccountRecord, status: dict[str, str], plan: PollPlan, used: int, spent: int) -> HintsStatus:
    """What the account's status says of its hints: their state, the webhooks subscribed, the requests spent."""
    degraded = [r for r in account.resources if r in plan.hints and plan.hints[r].state == "degraded"]
    subscribed = json_list(status.get("hints:subscribed"))
    return HintsStatus(
        state="off" if not account.hints else "degraded" if degraded else "healthy",
        last_hint_at=status.get("hints:last_hint_at") or None,
        subscribed=subscribed,
        refused=json_list(status.get("hints:refused")),
        covered=covered_resources(subscribed, account.resources) if account.hints else [],
        degraded_resources=degraded,
        reconciled_at=status.get("hints:reconciled_at") or None,
        error=status.get("hints:error") or None,
        requests_last_minute=HintRequests(hints=spent, polls=max(0, used - spent)),
    )


def json_list(text: str | None) -> list[str]:
    """A JSON list of names as the status hash keeps it (none when absent or unreadable)."""
    try:
        value = json.loads(text) if text else []
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def hints_wanted(ctx: ApiContext, asked: bool | None, current: bool) -> bool:
    """Whether the account is to have hints: as asked, else as it has, else when the relay has a public URL; a
    :class:`InvalidInput` when asked without one (Brightpearl would have nowhere to send them)."""
    wanted = asked if asked is not None else current
    if asked and ctx.public_url is None:
        raise InvalidInput(
            "hints need RELAY_PUBLIC_URL, the URL where Brightpearl reaches this relay; set it, or leave hints false"
        )
    return wanted


@route(
    "POST",
    "/v1/accounts",
    summary="Register a Brightpearl account (admin only)",
    status=201,
    access=Access.ADMIN,
    tag=TAG,
    errors=(409,),
)
async def create_account(request: web.Request, body: AccountCreate) -> AccountCreated:
    ctx = context(request)
    request[BRIGHTPEARL_ACCOUNT] = body.code
    if await ctx.store.account_exists(body.code):
        raise Conflict(f"account {body.code!r} is already registered; PATCH /v1/accounts/{body.code} to change it")
    now: datetime = ctx.clock()
    connecting = body.auth == "oauth" and body.oauth is None  # through Brightpearl: tokens come at the callback
    oauth = oauth_ready(ctx) if body.oauth is not None or connecting else None
    if connecting:
        callback_url(ctx)  # a 422 naming RELAY_PUBLIC_URL before anything is stored
    account = AccountRecord(
        code=body.code,
        base_url=""
        if connecting and body.base_url is None and body.datacenter is None
        else base_url_of(body.code, body.base_url, body.datacenter, body.oauth.api_domain if body.oauth else None),
        app_ref=oauth.app_ref if oauth is not None else body.app_ref or "",
        auth="oauth" if oauth is not None else "staff_token" if body.staff_token else "account_token",
        token=body.staff_token or body.account_token or "",
        poll_interval_s=body.poll_interval_s,
        resources=body.resources,
        poll_intervals_s=body.poll_intervals_s,
        created_at=now,
    )
    hints = hints_wanted(ctx, body.hints, ctx.public_url is not None)
    account = account.model_copy(
        update={
            "hints": hints,
            "safety_poll_interval_s": body.safety_poll_interval_s,
            "hint_token": secrets.token_urlsafe(32) if hints else "",
        }
    )
    if connecting:
        return await register_unconnected(ctx, account)
    if body.oauth is not None:  # stored before the check: the check's calls ask the token manager for them
        await store_grant(ctx, body.code, body.oauth)
    try:
        baseline = await connect(ctx, account, list(account.resources))
    except BaseException:
        if body.oauth is not None:  # a refused registration keeps nothing
            await ctx.redis.delete(keyspace.oauth_tokens(body.code), keyspace.account_status(body.code))
        raise
    await ctx.store.create_account(account, baseline.positions, ms(ctx.clock()), baseline.stock_figures)
    if account.hints:  # after the baseline: a hint read before it would have nothing to compare with
        await ctx.subscriber.reconcile(account)  # a failure shows in status.hints.error, registration stands
    return AccountCreated(**dict(await account_view(ctx, account)))


async def register_unconnected(ctx: ApiContext, account: AccountRecord) -> AccountCreated:
    """Store an OAuth account that is to be connected through Brightpearl: no call to Brightpearl yet, nothing
    polled (``authorization_required``) until the callback brings its tokens and takes its baseline; the answer
    holds the URL that connects it."""
    first_look_ms = ms(ctx.clock() + timedelta(hours=1))  # nothing is due before its state says it waits
    await ctx.store.create_account(account, {}, first_look_ms)
    await oauth_ready(ctx).tokens.store.await_authorization(account.code)
    view = await account_view(ctx, account)
    return AccountCreated(**dict(view), authorize_url=await authorize_url(ctx, account))


@route("GET", "/v1/accounts", summary="List accounts with their polling state", access=Access.ACCOUNT, tag=TAG)
async def list_accounts(request: web.Request, query: ListQuery) -> AccountList:
    ctx = context(request)
    own = principal(request).account
    if own is not None:
        # a scoped key sees one account: a single page, so any cursor is past its end
        if query.cursor is not None:
            Position.decode(query.cursor)  # still refuse a cursor this API never gave
            return AccountList(items=[], next_cursor=None)
        try:
            return AccountList(items=[await account_view(ctx, await ctx.store.get_account(own))], next_cursor=None)
        except NotFound:
            return AccountList(items=[], next_cursor=None)
    page = await ctx.store.list_accounts(limit=query.limit, cursor=query.cursor)
    return AccountList(items=[await account_view(ctx, a) for a in page.items], next_cursor=page.next_cursor)


@route(
    "GET",
    "/v1/accounts/{code}",
    summary="One account with its polling state",
    access=Access.ACCOUNT,
    tag=TAG,
    errors=(404,),
)
async def get_account(request: web.Request, code: str) -> AccountView:
    ensure_visible(request, code, f"account {code!r}")
    ctx = context(request)
    return await account_view(ctx, await ctx.store.get_account(code))


async def oauth_update(
    ctx: ApiContext, account: AccountRecord, grant: OAuthGrant, *, keep_base_url: bool, unconnected: bool
) -> dict[str, object]:
    """A new authorization of an account, its tokens stored at once (clearing ``reauthorization_required``; an
    ``unconnected`` account keeps waiting until its baseline is stored): the account's changes, an account of a
    private app becoming an OAuth one."""
    oauth = oauth_ready(ctx)
    update: dict[str, object] = {"auth": "oauth", "token": "", "app_ref": oauth.app_ref}
    if not keep_base_url and (account.auth != "oauth" or not account.base_url):
        update["base_url"] = base_url_of(account.code, None, None, grant.api_domain)
    await store_grant(ctx, account.code, grant, baseline_pending=unconnected)
    return update


async def credentials_update(
    ctx: ApiContext, account: AccountRecord, body: AccountPatch, *, unconnected: bool
) -> dict[str, object]:
    """What a PATCH changes of how the account reaches Brightpearl (OAuth tokens brought are stored at once)."""
    update: dict[str, object] = {}
    if body.base_url is not None or body.datacenter is not None:
        update["base_url"] = base_url_of(account.code, body.base_url, body.datacenter)
    if body.app_ref is not None:
        update["app_ref"] = body.app_ref
    if body.account_token is not None or body.staff_token is not None:
        update["auth"] = "staff_token" if body.staff_token else "account_token"
        update["token"] = body.staff_token or body.account_token
    if body.oauth is not None:
        keep = "base_url" in update
        update |= await oauth_update(ctx, account, body.oauth, keep_base_url=keep, unconnected=unconnected)
    return update


async def is_unconnected(ctx: ApiContext, account: AccountRecord) -> bool:
    """Whether ``account`` is an OAuth account registered to connect through Brightpearl and not connected yet
    (no baseline: nothing of it may be polled)."""
    if account.auth != "oauth":
        return False
    return (await ctx.store.account_status(account.code)).get("auth_state") == AUTHORIZATION_REQUIRED


@route(
    "PATCH",
    "/v1/accounts/{code}",
    summary="Change an account (admin only)",
    access=Access.ADMIN,
    tag=TAG,
    errors=(404,),
)
async def patch_account(request: web.Request, code: str, body: AccountPatch) -> AccountView:
    ctx = context(request)
    request[BRIGHTPEARL_ACCOUNT] = code
    account = await ctx.store.get_account(code)
    unconnected = await is_unconnected(ctx, account)
    update = await credentials_update(ctx, account, body, unconnected=unconnected)
    for name in ("poll_interval_s", "resources", "poll_intervals_s", "safety_poll_interval_s"):
        if getattr(body, name) is not None:
            update[name] = getattr(body, name)
    update["hints"] = hints_wanted(ctx, body.hints, account.hints)
    if not update["hints"]:
        update["hint_token"] = ""  # the relay's webhooks are removed: a URL holding it will never be valid again
    elif not account.hints or not account.hint_token:
        update["hint_token"] = secrets.token_urlsafe(32)  # on again: a new URL (off and on rotates the token)
    changed = account.model_copy(update=update)
    added = [r for r in changed.resources if r not in account.resources]
    baseline = Baseline()
    credentials = {"base_url", "app_ref", "token", "auth"} & update.keys() | ({"oauth"} if body.oauth else set())
    still_waiting = unconnected and changed.auth == "oauth" and body.oauth is None
    due_ms = ms(ctx.clock() + timedelta(hours=1)) if still_waiting else ms(ctx.clock())
    if unconnected and not still_waiting:  # connected now (tokens brought, or a private app's token)
        baseline = await connect(ctx, changed, list(changed.resources))
    elif (added or credentials) and not still_waiting:  # (nothing to check or take before it is connected)
        baseline = await connect(ctx, changed, added)
    await ctx.store.save_account(changed, baseline.positions, due_ms, baseline.stock_figures)
    if unconnected and not still_waiting and changed.auth == "oauth":
        await oauth_ready(ctx).tokens.activate(code)
    if account.hints and not changed.hints:
        await ctx.subscriber.remove(account, record=True)  # (the old token: no error it causes may show it)
    elif changed.hints and (not account.hints or credentials or changed.resources != account.resources):
        await ctx.subscriber.reconcile(changed)
    return await account_view(ctx, changed)


@route(
    "GET",
    "/v1/accounts/{code}/authorize",
    summary="A URL that connects an OAuth account through Brightpearl (a fresh single-use state, 10 minutes)",
    access=Access.ACCOUNT,
    tag=TAG,
    errors=(404, 422),
)
async def authorize_account(request: web.Request, code: str) -> AuthorizeLink:
    ensure_visible(request, code, f"account {code!r}")
    ctx = context(request)
    account = await ctx.store.get_account(code)
    return AuthorizeLink(authorize_url=await authorize_url(ctx, account))


@route(
    "DELETE",
    "/v1/accounts/{code}",
    summary="Remove an account, its polling, its subscriptions and its API keys (admin only)",
    status=204,
    access=Access.ADMIN,
    tag=TAG,
    errors=(404,),
)
async def delete_account(request: web.Request, code: str) -> web.Response:
    ctx = context(request)
    try:
        account: AccountRecord | None = await ctx.store.get_account(code)
    except TokenKeyError:  # its credentials cannot be read: its webhooks cannot be removed, the account can
        account = None
    await ctx.store.delete_account(code)
    if account is not None and account.hints:  # after: a hint arriving meanwhile is already a 404
        await ctx.subscriber.remove(account)
    return web.Response(status=204)


ROUTES = (create_account, list_accounts, get_account, patch_account, authorize_account, delete_account)
