"""The control API under ``/_sandbox``: what tests, benchmarks and the demo use to make things happen in the
sandbox.

JSON in and out, no authentication (the sandbox listens on loopback). Bad input is a 4xx with
``{"error": "..."}``, never a 500: bodies are validated with pydantic, and the model's errors are mapped to HTTP
in :func:`control_errors`, the one middleware that inspects them. Unknown things are 404, changes the state
does not allow (allocating twice, a shipped note) 409, values the account cannot take (a warehouse it does not
have) 422.

Under ``/_sandbox/accounts/{code}``: ``orders`` (made, with rows; changed; allocated; given goods-out notes),
``products``, ``stock/receive`` and ``stock/correct``, ``goods-out-notes`` (their stages set and undone, edited,
deleted), ``contacts``,
``faults``, ``spend`` and ``requests``; ``webhooks`` and ``hints`` (native webhooks fired, their faults and
policy); ``oauth`` (the OAuth server: token lifetimes, rotation, revocation, counters). The routes are all listed
in :func:`add_control_routes`; their bodies and handlers live by resource:

control_requests.py   reading a request: its body, account, path ids and timestamps; the 201 for things made
control_accounts.py   accounts, their clocks and credentials
control_orders.py     orders and goods-out notes
control_products.py   products and stock
control_contacts.py   contacts
control_faults.py     faults, throttle budget and the request log
control_hints.py      native webhooks: subscriptions, the log of calls fired, hint faults and policy
control_oauth.py      the OAuth server: lifetimes, refresh-token rotation, revocation, minted tokens, counters
"""

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import ValidationError

from relay.sandbox import (
    control_accounts,
    control_contacts,
    control_faults,
    control_hints,
    control_oauth,
    control_orders,
    control_products,
)
from relay.sandbox.control_requests import PREFIX, BadRequest
from subscriptions.core.errors import Conflict, InvalidInput, NotFound

log = logging.getLogger(__name__)


def add_control_routes(app: web.Application) -> None:
    """Mount the control API on ``app`` under ``/_sandbox``."""
    account = PREFIX + "/accounts/{code}"
    accounts, orders, products = control_accounts, control_orders, control_products
    contacts, faults = control_contacts, control_faults
    app.router.add_get(PREFIX, accounts.index)
    app.router.add_get(PREFIX + "/accounts", accounts.list_accounts)
    app.router.add_post(PREFIX + "/accounts", accounts.create_account)
    app.router.add_get(account, accounts.get_account)
    app.router.add_patch(account, accounts.change_account)
    app.router.add_get(account + "/orders", orders.list_orders)
    app.router.add_post(account + "/orders", orders.create_orders)
    app.router.add_put(account + "/orders/{order_id}/status", orders.change_order_status)
    app.router.add_patch(account + "/orders/{order_id}", orders.change_order)
    app.router.add_post(account + "/orders/{order_id}/allocate", orders.allocate_order)
    app.router.add_post(account + "/orders/{order_id}/goods-out-notes", orders.create_goods_out_note)
    app.router.add_get(account + "/goods-out-notes", orders.list_goods_out_notes)
    app.router.add_post(account + "/goods-out-notes/{note_id}/stage", orders.set_note_stage)
    app.router.add_post(account + "/goods-out-notes/{note_id}/unstage", orders.unset_note_stage)
    app.router.add_patch(account + "/goods-out-notes/{note_id}", orders.change_goods_out_note)
    app.router.add_delete(account + "/goods-out-notes/{note_id}", orders.delete_goods_out_note)
    app.router.add_get(account + "/products", products.list_products)
    app.router.add_post(account + "/products", products.create_products)
    app.router.add_patch(account + "/products/{product_id}", products.change_product)
    app.router.add_delete(account + "/products/{product_id}", products.delete_product)
    app.router.add_post(account + "/stock/receive", products.receive_stock)
    app.router.add_post(account + "/stock/correct", products.correct_stock)
    app.router.add_get(account + "/contacts", contacts.list_contacts)
    app.router.add_post(account + "/contacts", contacts.create_contacts)
    app.router.add_patch(account + "/contacts/{contact_id}", contacts.change_contact)
    app.router.add_get(account + "/faults", faults.list_faults)
    app.router.add_post(account + "/faults", faults.add_fault)
    app.router.add_delete(account + "/faults", faults.clear_faults)
    app.router.add_post(account + "/spend", faults.spend)
    app.router.add_get(account + "/requests", faults.get_requests)
    app.router.add_delete(account + "/requests", faults.reset_requests)
    hints = control_hints
    app.router.add_get(account + "/webhooks", hints.list_webhooks)
    app.router.add_get(account + "/hints", hints.get_hints)
    app.router.add_delete(account + "/hints", hints.clear_hints)
    app.router.add_post(account + "/hints/settle", hints.settle_hints)
    app.router.add_get(account + "/hints/faults", hints.get_faults)
    app.router.add_put(account + "/hints/faults", hints.put_faults)
    app.router.add_delete(account + "/hints/faults", hints.clear_faults)
    app.router.add_get(account + "/hints/policy", hints.get_policy)
    app.router.add_patch(account + "/hints/policy", hints.change_policy)
    _add_oauth_routes(app, account)


def _add_oauth_routes(app: web.Application, account: str) -> None:
    oauth = control_oauth
    app.router.add_get(account + "/oauth", oauth.get_oauth)
    app.router.add_patch(account + "/oauth", oauth.change_oauth)
    app.router.add_post(account + "/oauth/revoke", oauth.revoke)
    app.router.add_post(account + "/oauth/expire", oauth.expire)
    app.router.add_post(account + "/oauth/tokens", oauth.mint_tokens)
    app.router.add_delete(account + "/oauth/counters", oauth.reset_counters)


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
