"""The control API's accounts: listing and making them (with their private and OAuth apps' credentials), and
changing an account's clock (offset, skew, drift), credentials and whether a status change moves an order's
``updatedOn``."""

from typing import Any

from aiohttp import web
from pydantic import Field

from relay.sandbox.account import SandboxAccount
from relay.sandbox.account_state import DEFAULT_OFFSET_MINUTES, BadIds
from relay.sandbox.control_oauth import OAuthAppBody
from relay.sandbox.control_requests import (
    PREFIX,
    ControlBody,
    Credential,
    OffsetMinutes,
    account_of,
    origin,
    read_body,
)
from relay.sandbox.drift import MAX_DRIFT_S_PER_MIN, drift_of, drifting
from relay.sandbox.hints import HintSender
from relay.sandbox.oauth import OAuthApp, OAuthServer
from relay.sandbox.state import SANDBOX_STATE, base_url
from relay.sandbox.times import format_utc
from relay.sandbox.webhook_events import DEFAULT_REFUSED_EVENTS


class NewAccount(ControlBody):
    code: str
    offset_minutes: OffsetMinutes = DEFAULT_OFFSET_MINUTES
    app_ref: Credential | None = None
    account_token: Credential | None = None
    staff_token: Credential | None = None
    availability_bad_ids: BadIds = "reject"  # product-availability with a deleted/untracked id: 400, or left out
    strict: bool = False  # refuse everything doubtful (relay.sandbox.strictness)
    # False: a status change leaves updatedOn and version alone (API.md 8: unconfirmed whether Brightpearl's do)
    status_moves_updated_on: bool = True
    # native webhooks (API.md 7.3, UNCONFIRMED): events refused (INTC-064, never fired); order.modified on creation
    refused_webhook_events: list[str] = Field(default_factory=lambda: list(DEFAULT_REFUSED_EVENTS))
    order_modified_on_create: bool = True
    hint_seed: int | None = None  # seeds the random source of hint faults
    oauth: OAuthAppBody | None = None  # the OAuth app's client_id, client_secret, dev_ref (defaults otherwise)


class AccountChange(ControlBody):
    offset_minutes: OffsetMinutes | None = None
    clock_skew_s: float | None = Field(None, ge=-366 * 86400, le=366 * 86400)
    # seconds the account's clock gains a minute from now on (negative: loses); 0 stops the drift
    clock_drift_s_per_min: float | None = Field(None, ge=-MAX_DRIFT_S_PER_MIN, le=MAX_DRIFT_S_PER_MIN)
    # False: answers come without a Date header (a proxy stripping it), so the relay cannot read Brightpearl's clock
    sends_date: bool | None = None
    # a token replaced in Brightpearl: the old one answers 401 from now on
    account_token: Credential | None = None
    staff_token: Credential | None = None
    availability_bad_ids: BadIds | None = None
    strict: bool | None = None
    status_moves_updated_on: bool | None = None
    refused_webhook_events: list[str] | None = None
    order_modified_on_create: bool | None = None


def _listed(request: web.Request, account: SandboxAccount) -> dict[str, Any]:
    """One account as the list and POST show it: credentials (the OAuth app's with where its OAuth server answers)
    and clock settings."""
    described = account.describe(base_url(origin(request), account.code))
    described["oauth"]["oauth_url"] = f"{origin(request)}/oauth"
    return described


def _described(request: web.Request, account: SandboxAccount) -> dict[str, Any]:
    """One account as GET and PATCH show it: credentials and clock, with its drift and what time it is there."""
    return _listed(request, account) | {
        "clock_drift_s_per_min": drift_of(account.clock),
        "now": format_utc(account.now()),
        "status_moves_updated_on": account.status_moves_updated_on,
        "sends_date": account.sends_date,
        "refused_webhook_events": list(account.refused_webhook_events),
        "order_modified_on_create": account.order_modified_on_create,
    }


async def index(request: web.Request) -> web.Response:
    accounts = request.app[SANDBOX_STATE].accounts
    return web.json_response({"accounts": f"{origin(request)}{PREFIX}/accounts", "codes": sorted(accounts)})


async def list_accounts(request: web.Request) -> web.Response:
    state = request.app[SANDBOX_STATE]
    return web.json_response([_listed(request, account) for account in state.accounts.values()])


def _oauth_app(body: OAuthAppBody | None) -> OAuthApp:
    given = body.model_dump(exclude_none=True) if body is not None else {}
    return OAuthApp(**given)


async def create_account(request: web.Request) -> web.Response:
    body = await read_body(request, NewAccount)
    tokens = {name: value for name in ("app_ref", "account_token", "staff_token") if (value := getattr(body, name))}
    account = SandboxAccount(
        code=body.code,
        offset_minutes=body.offset_minutes,
        availability_bad_ids=body.availability_bad_ids,
        strict=body.strict,
        status_moves_updated_on=body.status_moves_updated_on,
        refused_webhook_events=tuple(body.refused_webhook_events),
        order_modified_on_create=body.order_modified_on_create,
        hints=HintSender(body.hint_seed),
        oauth=OAuthServer(app=_oauth_app(body.oauth)),
        **tokens,
    )
    request.app[SANDBOX_STATE].add(account)
    return web.json_response(_listed(request, account), status=201)


async def get_account(request: web.Request) -> web.Response:
    return web.json_response(_described(request, account_of(request)))


async def change_account(request: web.Request) -> web.Response:
    account = account_of(request)
    body = await read_body(request, AccountChange)
    if body.offset_minutes is not None:
        account.offset_minutes = body.offset_minutes
    if body.clock_skew_s is not None:
        account.clock_skew_s = body.clock_skew_s
    if body.clock_drift_s_per_min is not None:
        account.clock = drifting(account.clock, body.clock_drift_s_per_min)
    if body.sends_date is not None:
        account.sends_date = body.sends_date
    if body.account_token is not None:
        account.account_token = body.account_token
    if body.staff_token is not None:
        account.staff_token = body.staff_token
    if body.availability_bad_ids is not None:
        account.availability_bad_ids = body.availability_bad_ids
    if body.strict is not None:
        account.strict = body.strict
    if body.status_moves_updated_on is not None:
        account.status_moves_updated_on = body.status_moves_updated_on
    if body.refused_webhook_events is not None:
        account.refused_webhook_events = tuple(body.refused_webhook_events)
    if body.order_modified_on_create is not None:
        account.order_modified_on_create = body.order_modified_on_create
    return web.json_response(_described(request, account))
