"""The control API under ``/_sandbox``: what tests and the demo use to make things happen in the sandbox.

JSON in and out, no authentication (the sandbox listens on loopback). Bad input is a 4xx with
``{"error": "..."}``, never a 500: bodies are validated with pydantic, and the model's errors are mapped to HTTP
in :func:`control_errors`, the one middleware that inspects them.
"""

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Literal, Self, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from relay.sandbox.account import DEFAULT_OFFSET_MINUTES, SandboxAccount
from relay.sandbox.faults import FaultKind
from relay.sandbox.state import SANDBOX_STATE, base_url
from subscriptions.errors import Conflict, InvalidInput, NotFound, RelayError
from workers.brightpearl.timestamps import TimestampError, format_utc, parse_timestamp

log = logging.getLogger(__name__)

PREFIX = "/_sandbox"
M = TypeVar("M", bound=BaseModel)


class BadRequest(RelayError):
    """A control request whose body or path cannot be read."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class NewAccount(_Body):
    code: str
    offset_minutes: int = Field(DEFAULT_OFFSET_MINUTES, ge=-720, le=840)
    app_ref: str | None = Field(None, min_length=1)
    account_token: str | None = Field(None, min_length=1)
    staff_token: str | None = Field(None, min_length=1)


class AccountChange(_Body):
    offset_minutes: int | None = Field(None, ge=-720, le=840)
    clock_skew_s: float | None = Field(None, ge=-366 * 86400, le=366 * 86400)


class NewOrders(_Body):
    count: int = Field(1, ge=1, le=1000)
    order_type: Literal["SO", "PO", "SC", "PC"] = "SO"
    status_id: int | None = None
    created_on: str | None = None  # ISO-8601 with an offset: an order that becomes visible late
    customer_ref: str | None = None
    contact_id: int | None = Field(None, ge=1)


class StatusChange(_Body):
    status_id: int


class NewFault(_Body):
    kind: FaultKind
    count: int | None = Field(None, ge=1)
    for_s: float | None = Field(None, gt=0, le=86400)
    delay_ms: int = Field(0, ge=0, le=60_000)
    path_contains: str = ""
    next_throttle_period_ms: int | None = Field(None, ge=1, le=59_999)  # a throttle fault's announced period

    @model_validator(mode="after")
    def slow_needs_a_delay(self) -> Self:
        if self.kind == "slow" and self.delay_ms <= 0:
            raise ValueError("a slow fault needs delay_ms > 0")
        return self


class Spend(_Body):
    requests: int = Field(ge=0, le=10_000)


async def _body(request: web.Request, model: type[M]) -> M:
    raw = await request.read()
    try:
        data = json.loads(raw) if raw.strip() else {}
    except ValueError as error:  # UnicodeDecodeError included
        raise BadRequest(f"the body is not JSON: {error}") from error
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return model.model_validate(data)


def _account(request: web.Request) -> SandboxAccount:
    return request.app[SANDBOX_STATE].account(request.match_info["code"])


def _origin(request: web.Request) -> str:
    return str(request.url.origin())


async def index(request: web.Request) -> web.Response:
    accounts = request.app[SANDBOX_STATE].accounts
    return web.json_response({"accounts": f"{_origin(request)}{PREFIX}/accounts", "codes": sorted(accounts)})


async def list_accounts(request: web.Request) -> web.Response:
    state = request.app[SANDBOX_STATE]
    return web.json_response([a.describe(base_url(_origin(request), a.code)) for a in state.accounts.values()])


async def create_account(request: web.Request) -> web.Response:
    body = await _body(request, NewAccount)
    tokens = {name: value for name in ("app_ref", "account_token", "staff_token") if (value := getattr(body, name))}
    account = SandboxAccount(code=body.code, offset_minutes=body.offset_minutes, **tokens)
    request.app[SANDBOX_STATE].add(account)
    return web.json_response(account.describe(base_url(_origin(request), account.code)), status=201)


async def get_account(request: web.Request) -> web.Response:
    account = _account(request)
    return web.json_response(account.describe(base_url(_origin(request), account.code)))


async def change_account(request: web.Request) -> web.Response:
    account = _account(request)
    body = await _body(request, AccountChange)
    if body.offset_minutes is not None:
        account.offset_minutes = body.offset_minutes
    if body.clock_skew_s is not None:
        account.clock_skew_s = body.clock_skew_s
    return web.json_response(account.describe(base_url(_origin(request), account.code)))


async def create_orders(request: web.Request) -> web.Response:
    account = _account(request)
    body = await _body(request, NewOrders)
    try:
        created_on = parse_timestamp(body.created_on) if body.created_on is not None else None
    except TimestampError as error:
        raise BadRequest(f"created_on: {error}") from error
    orders = account.create_orders(
        body.count,
        body.order_type,
        status_id=body.status_id,
        created_on=created_on,
        reference=body.customer_ref or "",
        contact_id=body.contact_id,
    )
    return web.json_response(
        {"ids": [o.id for o in orders], "created_on": format_utc(orders[0].created_on)}, status=201
    )


async def list_orders(request: web.Request) -> web.Response:
    return web.json_response({"ids": _account(request).order_ids()})


async def change_order_status(request: web.Request) -> web.Response:
    account = _account(request)
    text = request.match_info["order_id"]
    if not text.isdigit():
        raise NotFound(f"order {text} does not exist in account {account.code}")
    body = await _body(request, StatusChange)
    order = account.set_status(int(text), body.status_id)
    status = account.status(order.status_id)
    updated_on = format_utc(order.updated_on) if order.updated_on else None
    return web.json_response(
        {
            "id": order.id,
            "status_id": status.status_id,
            "name": status.name,
            "version": order.version,
            "updated_on": updated_on,
        }
    )


async def add_fault(request: web.Request) -> web.Response:
    account = _account(request)
    body = await _body(request, NewFault)
    fault = account.faults.add(
        body.kind,
        now_ms=account.monotonic_ms(),
        count=body.count,
        for_ms=None if body.for_s is None else round(body.for_s * 1000),
        delay_ms=body.delay_ms,
        path_contains=body.path_contains,
        throttle_period_ms=body.next_throttle_period_ms,
    )
    return web.json_response({"id": fault.id}, status=201)


async def list_faults(request: web.Request) -> web.Response:
    account = _account(request)
    now_ms = account.monotonic_ms()
    return web.json_response({"faults": [fault.describe(now_ms) for fault in account.faults.active(now_ms)]})


async def clear_faults(request: web.Request) -> web.Response:
    return web.json_response({"cleared": _account(request).faults.clear()})


async def spend(request: web.Request) -> web.Response:
    account = _account(request)
    body = await _body(request, Spend)
    now_ms = account.monotonic_ms()
    decision = account.throttle.spend(now_ms, body.requests)
    return web.json_response(
        {
            "requests_remaining": decision.requests_remaining,
            "next_throttle_period_ms": decision.next_throttle_period_ms,
            "in_window": account.throttle.in_window(now_ms),
        }
    )


async def get_requests(request: web.Request) -> web.Response:
    return web.json_response(_account(request).requests.describe())


async def reset_requests(request: web.Request) -> web.Response:
    account = _account(request)
    account.requests.reset()
    return web.json_response(account.requests.describe())


def add_control_routes(app: web.Application) -> None:
    """Mount the control API on ``app`` under ``/_sandbox``."""
    account = PREFIX + "/accounts/{code}"
    app.router.add_get(PREFIX, index)
    app.router.add_get(PREFIX + "/accounts", list_accounts)
    app.router.add_post(PREFIX + "/accounts", create_account)
    app.router.add_get(account, get_account)
    app.router.add_patch(account, change_account)
    app.router.add_get(account + "/orders", list_orders)
    app.router.add_post(account + "/orders", create_orders)
    app.router.add_put(account + "/orders/{order_id}/status", change_order_status)
    app.router.add_get(account + "/faults", list_faults)
    app.router.add_post(account + "/faults", add_fault)
    app.router.add_delete(account + "/faults", clear_faults)
    app.router.add_post(account + "/spend", spend)
    app.router.add_get(account + "/requests", get_requests)
    app.router.add_delete(account + "/requests", reset_requests)


def _problem(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _validation_message(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors())


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def control_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Errors outside Brightpearl's API (the control API, unknown paths) as ``{"error": ...}`` JSON."""
    try:
        return await handler(request)
    except ValidationError as error:
        return _problem(400, _validation_message(error))
    except BadRequest as error:
        return _problem(400, str(error))
    except NotFound as error:
        return _problem(404, str(error))
    except Conflict as error:
        return _problem(409, str(error))
    except InvalidInput as error:
        return _problem(422, str(error))
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return _problem(error.status, error.reason)
    except Exception as error:  # a sandbox bug: still JSON, and logged with its traceback here, not sent
        log.exception("control request %s %s failed", request.method, request.path)
        return _problem(500, f"the sandbox failed: {type(error).__name__}")
