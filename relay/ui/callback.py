"""``GET /oauth/callback``: where Brightpearl sends a browser back after an account's admin installed the relay's
OAuth app. A person reads the answer, so it is a page saying what happened and, on an error, what to do; the
``state`` authenticates the request (no bearer token, no session). The work is ``relay.api.connect.complete``."""

import logging

from aiohttp import web

from relay.api.access import Access
from relay.api.connect import StateRefused, complete, spend_state
from relay.api.context import context
from relay.api.routing import route
from relay.ui.pages import common
from relay.ui.render import page
from subscriptions.core.errors import InvalidInput, NotFound
from workers.brightpearl.errors import BrightpearlError, OAuthClientRejected, ReauthorizationRequired

log = logging.getLogger(__name__)

MAX_SHOWN_CHARS = 200  # of what Brightpearl (or whoever made the link) put in error and error_description
CONNECT_AGAIN = (
    "Open the account in the dashboard and click Connect to Brightpearl again, or ask "
    "GET /v1/accounts/{code}/authorize for a new link."
)


def shown(text: str) -> str:
    """Text from the query as a page shows it: one line, and short (it is escaped on output)."""
    return " ".join(text.split())[:MAX_SHOWN_CHARS]


def answer(
    request: web.Request, status: int, title: str, message: str, todo: str = "", account: str | None = None
) -> web.Response:
    values = {**common(request, None), "title": title, "message": message, "todo": todo, "account": account}
    return page("connected.html", {**values, "ok": status == 200}, status=status)


@route(
    "GET",
    "/oauth/callback",
    summary="Where Brightpearl sends the browser back with code and state: connects the account (an HTML page)",
    access=Access.OPEN,
    tag="accounts",
    errors=(400, 502, 503),
    media_type="text/html",
)
async def oauth_callback(request: web.Request) -> web.Response:
    query = request.query
    state, code, error = query.get("state", ""), query.get("code", ""), query.get("error", "")
    if error:  # Brightpearl (RFC 6749 4.1.2.1) sends the browser back without a code: the state is spent too
        if state:
            await spend_state(context(request), state)
        said = shown(f"{error}: {query.get('error_description', '')}".rstrip(": "))
        return answer(
            request,
            400,
            "Brightpearl did not authorize the relay",
            f"Brightpearl answered {said}. Nothing was changed.",
            "Ask the account's admin to connect again and allow the app.",
        )
    if not state or not code:
        return answer(
            request,
            400,
            "Nothing to connect",
            "This is where Brightpearl sends you back after you connect an account; the link has no "
            + " and no ".join(name for name, value in (("code", code), ("state", state)) if not value)
            + ".",
            CONNECT_AGAIN,
        )
    try:
        connected = await complete(context(request), state, code)
    except (StateRefused, NotFound):
        return answer(
            request,
            400,
            "This connect link cannot be used",
            "It is unknown, expired (a link lasts 10 minutes) or was already used, so nothing was changed.",
            CONNECT_AGAIN,
        )
    except ReauthorizationRequired as refused:
        return answer(
            request,
            400,
            "Brightpearl refused the authorization",
            f"Brightpearl said: {refused.reason}. The code it sent expired or was already used.",
            CONNECT_AGAIN,
        )
    except OAuthClientRejected:
        return answer(
            request,
            502,
            "Brightpearl refused this relay's app",
            "Brightpearl's token endpoint answered invalid_client.",
            "The relay's operator must check RELAY_BRIGHTPEARL_APP_REF and RELAY_BRIGHTPEARL_CLIENT_SECRET; then "
            "connect again.",
        )
    except InvalidInput as unusable:
        return answer(request, 503, "This relay cannot connect accounts", str(unusable), "Tell the relay's operator.")
    except BrightpearlError as failed:
        log.warning("connecting an account failed: %s", failed)
        return answer(
            request,
            502,
            "Brightpearl did not answer as expected",
            f"{failed}",
            "Nothing is lost: connect again in a minute. " + CONNECT_AGAIN,
        )
    account = connected.account.code
    log.info("account %s connected through Brightpearl%s", account, "" if connected.first else " again")
    if connected.first:
        message = (
            f"Account {account} is connected to Brightpearl. The relay took its starting point now and sends a "
            "webhook for every change from here on."
        )
    else:
        message = (
            f"Account {account} is authorized again. Polling resumes where it stopped, so the changes made "
            "meanwhile are delivered too."
        )
    todo = f"You can close this window. GET /v1/accounts/{account} shows the account's status."
    return answer(request, 200, "Connected", message, todo, account)


ROUTES = (oauth_callback,)
