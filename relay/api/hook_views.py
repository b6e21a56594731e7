"""``POST /hooks/brightpearl/{account}/{hint_token}``: where Brightpearl's native webhooks arrive, as hints.

Brightpearl signs nothing (API.md 7.4): the secret token in the URL, made when the account's hints were turned
on, is what authenticates a hint. The route is open like ``/healthz`` (Brightpearl sends no bearer token), so
it guards itself, cheapest check first: the size of the body (413; at most 64 KB + 1 bytes are ever read), then
the account and its token (404 alike for an unknown account, hints off and a wrong token, compared in constant
time, also against a dummy when there is no account, so neither the answer nor its timing says which), the body
(400), the account's hints a minute (429). A hint that passes only queues ids (``subscriptions.store.hints``):
it makes no Brightpearl request itself, and answers 200 at once, so Brightpearl never backs up behind a read.

Neither the token nor the URL holding it is ever logged or put in a metric: log lines name the account only.
"""

import hmac
import logging

from aiohttp import web

from relay.api.access import Access
from relay.api.context import ApiContext, context
from relay.api.problems import problem
from relay.api.routing import route
from subscriptions.core.errors import NotFound
from subscriptions.core.models import AccountRecord
from subscriptions.core.times import ms
from subscriptions.store.hints import Offered
from workers.brightpearl.timestamps import format_utc
from workers.hints import MAX_HINT_BYTES, HintError, coalesce_ms, parse_hint, resources_of

log = logging.getLogger(__name__)

TAG = "hints"
DUMMY_TOKEN = "x" * 43  # what a token is compared with when there is no account, as long as a real one


class TooLarge(Exception):
    """The body is larger than :data:`MAX_HINT_BYTES`."""


async def read_limited(request: web.Request, limit: int = MAX_HINT_BYTES) -> bytes:
    """The body, refusing (:class:`TooLarge`) one that says or turns out to be larger than ``limit``, having read
    at most ``limit`` + 1 bytes of it (aiohttp's ``client_max_size`` would read, and buffer, the whole)."""
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge
    body = bytearray()
    while len(body) <= limit:
        chunk = await request.content.read(limit + 1 - len(body))
        if not chunk:
            return bytes(body)
        body += chunk
    raise TooLarge


async def hinted_account(ctx: ApiContext, code: str, token: str) -> AccountRecord | None:
    """The account a hint is for, if ``token`` is its hint token and its hints are on; None otherwise, after the
    same comparison either way."""
    try:
        account: AccountRecord | None = await ctx.store.get_account(code)
    except NotFound:
        account = None
    known = account is not None and account.hints and bool(account.hint_token)
    expected = account.hint_token if account is not None and known else DUMMY_TOKEN
    matched = hmac.compare_digest(token.encode(), expected.encode())
    return account if matched and known else None


def not_found() -> web.Response:
    return problem(404, "Not found", "no hints are accepted at this URL")


@route(
    "POST",
    "/hooks/brightpearl/{account}/{hint_token}",
    summary="A hint: one of Brightpearl's native webhooks, naming ids to read now (open: the token authenticates)",
    access=Access.OPEN,
    tag=TAG,
    errors=(400, 404, 413, 429),
)
async def receive_hint(request: web.Request, account: str, hint_token: str) -> web.Response:
    """(Path ids that could name nothing are 404 before this runs, as on every route.)"""
    ctx = context(request)
    received = ctx.metrics.hints_received
    try:
        body = await read_limited(request)
    except TooLarge:
        received.labels("too_large").inc()
        return problem(413, "Request body too large", f"a hint's body is at most {MAX_HINT_BYTES} bytes")
    hinted = await hinted_account(ctx, account, hint_token)
    if hinted is None:
        received.labels("forged").inc()
        return not_found()
    try:
        hint = parse_hint(body)
    except HintError as error:
        received.labels("malformed").inc()
        log.info("hint for account %s refused: %s", hinted.code, error)
        return problem(400, "Bad request", f"the hint's body is not what the relay subscribed: {error}")
    resources = resources_of(hint, hinted.resources)
    if not resources:
        received.labels("ignored").inc()
        return web.json_response({})
    groups = [Offered(r, [] if hint.overflow else hint.ids, overflow=hint.overflow) for r in resources]
    now = ctx.clock()
    used = await ctx.budgets.of(hinted.code).used_last_minute()
    delay_ms = coalesce_ms(used, ctx.budget_per_minute, ctx.hint_limits.coalesce_ms)
    if (
        await ctx.hints.offer(hinted.code, groups, now_ms=ms(now), at=format_utc(now), coalesce_ms=delay_ms)
        == "limited"
    ):
        received.labels("limited").inc()
        retry_after = await ctx.hints.retry_after_s(hinted.code, now_ms=ms(now))
        return problem(
            429,
            "Too many requests",
            f"account {hinted.code!r} has sent its {ctx.hint_limits.per_minute} hints of this minute; the polls "
            "still see every change",
            headers={"Retry-After": str(retry_after)},
        )
    received.labels("accepted").inc()
    return web.json_response({})


ROUTES = (receive_hint,)
