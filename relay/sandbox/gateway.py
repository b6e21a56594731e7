"""The way in to the Brightpearl API the sandbox serves: ``/public-api/{account}/{path}``.

Each request goes through the steps Brightpearl's proxy takes, in this order: find the account; count the
request against its throttle (every request counts, whatever it is answered) and refuse it with 503 when over
the cap; apply injected faults; authenticate; then hand it to the resource's handler. A request with an
``Authorization: Bearer`` token is the account's OAuth app's: it counts against that app's own throttle (API.md
2.1: 200 a minute per account and developer) and is authenticated by its token, app ref and dev ref; every
other request is a private app's, sharing the account's pool. Every answer, errors
included, carries the recorded headers.
"""

import asyncio
import hmac
import logging
from datetime import UTC
from email.utils import format_datetime

from aiohttp import hdrs, web
from multidict import CIMultiDictProxy

from relay.sandbox import envelope
from relay.sandbox.account import SandboxAccount
from relay.sandbox.envelope import Answer, ApiError, respond
from relay.sandbox.faults import Fault
from relay.sandbox.resources import ROUTES, Call, Route, find_route
from relay.sandbox.state import SANDBOX_STATE
from relay.sandbox.throttle import REQUESTS_PER_WINDOW, WINDOW_MS, ThrottleDecision

log = logging.getLogger(__name__)

APP_REF_HEADER = "brightpearl-app-ref"
ACCOUNT_TOKEN_HEADER = "brightpearl-account-token"  # noqa: S105 (a header name, not a secret)
STAFF_TOKEN_HEADER = "brightpearl-staff-token"  # noqa: S105 (a header name, not a secret)
DEV_REF_HEADER = "brightpearl-dev-ref"
INSTANCE_ID_HEADER = "Brightpearl-Installed-Integration-Instance-Id"  # recorded on OAuth-authenticated answers
# An unknown account has no throttle of its own; its 404 still carries the headers, as a fresh minute's.
FRESH_WINDOW = ThrottleDecision(True, REQUESTS_PER_WINDOW - 1, WINDOW_MS - 1)


def _same(sent: str | None, expected: str) -> bool:
    return sent is not None and hmac.compare_digest(sent.encode(), expected.encode())


def authentication_failure(headers: CIMultiDictProxy[str], account: SandboxAccount) -> Answer | None:
    """The 401 answer for a request whose credentials are not the account's, or ``None`` if they are."""
    app_ref = headers.get(APP_REF_HEADER)
    account_token = headers.get(ACCOUNT_TOKEN_HEADER)
    staff_token = headers.get(STAFF_TOKEN_HEADER)
    if not app_ref or not (account_token or staff_token):
        return Answer(401, envelope.NOT_AUTHENTICATED)
    if _same(app_ref, account.app_ref) and (
        _same(account_token, account.account_token) or _same(staff_token, account.staff_token)
    ):
        return None
    return Answer(401, envelope.invalid_token(account_token or staff_token or ""))


def bearer_token(headers: CIMultiDictProxy[str]) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or ``None`` if the request does not send one."""
    scheme, _, token = headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def oauth_failure(headers: CIMultiDictProxy[str], token: str, account: SandboxAccount) -> Answer | None:
    """The 401 answer for a Bearer request the account's OAuth app does not accept, or ``None`` if it does.

    Recorded: an expired token answers "Authorization token expired", an unknown one "Invalid instance token:
    {token}". Not recorded: a missing or wrong app or dev ref, answered as a request without credentials."""
    oauth = account.oauth
    if not _same(headers.get(APP_REF_HEADER), oauth.app.client_id) or not _same(
        headers.get(DEV_REF_HEADER), oauth.app.dev_ref
    ):
        oauth.counters.unauthorized["headers"] += 1
        return Answer(401, envelope.NOT_AUTHENTICATED)
    reason = oauth.check_access(token, account.monotonic_ms())
    if reason is None:
        oauth.counters.api_requests += 1
        return None
    oauth.counters.unauthorized[reason] += 1
    return Answer(401, envelope.TOKEN_EXPIRED if reason == "expired" else envelope.invalid_token(token))


def fault_answer(
    fault: Fault, decision: ThrottleDecision, now_ms: int, message_type: str
) -> tuple[Answer, str, ThrottleDecision] | None:
    """What ``fault`` answers instead of the resource (whose message type is ``message_type``), with the message
    type and throttle headers to send; ``None`` for faults that change only how the real answer is given. The
    proxy answers throttling, outages and expired tokens; the service its 500."""
    if fault.kind == "throttle":
        drained = ThrottleDecision(False, 0, fault.period_ms(now_ms))
        return Answer(503, envelope.THROTTLED), envelope.PROXY_MESSAGE_TYPE, drained
    if fault.kind == "unavailable":
        return Answer(503, envelope.UNAVAILABLE), envelope.PROXY_MESSAGE_TYPE, decision
    if fault.kind == "expire_token":
        return Answer(401, envelope.TOKEN_EXPIRED), envelope.PROXY_MESSAGE_TYPE, decision
    if fault.kind == "error_500":
        return Answer(500, envelope.INTERNAL_ERROR), message_type, decision
    return None  # slow and malformed


def injected_response(
    faults: list[Fault], account: SandboxAccount, decision: ThrottleDecision, message_type: str, host: str
) -> web.Response | None:
    """The answer the first of ``faults`` that replaces the resource's gives, or ``None``."""
    for fault in faults:
        if fault.kind == "html":  # Cloudflare answered: no Brightpearl headers
            return envelope.cloudflare_page(fault.status, host)
        if fault.kind == "empty":
            return envelope.empty(message_type, decision)
        injected = fault_answer(fault, decision, account.monotonic_ms(), message_type)
        if injected is not None:
            if fault.kind == "throttle":
                account.requests.throttled += 1
            return respond(*injected)
    return None


async def handle_brightpearl(request: web.Request) -> web.StreamResponse:
    """Answer one request to ``/public-api/{account}/{path}`` as Brightpearl would."""
    state = request.app[SANDBOX_STATE]
    code = request.match_info["account"]
    path = request.match_info.get("path", "")
    found = find_route(ROUTES, request.method, path)
    route = found[0]
    message_type = route.message_type if route else envelope.PROXY_MESSAGE_TYPE
    account = state.get(code)
    if account is None:
        not_found = envelope.errors(envelope.NOT_FOUND_CODE, f"Account {code} not found")
        return respond(Answer(404, not_found), envelope.PROXY_MESSAGE_TYPE, FRESH_WINDOW)

    now_ms = account.monotonic_ms()
    token = bearer_token(request.headers)
    decision = (account.throttle if token is None else account.oauth.throttle).record(now_ms)
    account.requests.record(path, route.template if route else None)
    if not decision.allowed:
        account.requests.throttled += 1
        return respond(Answer(503, envelope.THROTTLED), envelope.PROXY_MESSAGE_TYPE, decision)

    faults = account.faults.take(path, now_ms)
    delay_ms = sum(fault.delay_ms for fault in faults if fault.kind == "slow")
    if delay_ms:
        await asyncio.sleep(delay_ms / 1000)
    injected = injected_response(faults, account, decision, message_type, request.host)
    if injected is not None:
        return injected
    malformed = any(fault.kind == "malformed" for fault in faults)

    if token is None:
        failure = authentication_failure(request.headers, account)
    else:
        failure = oauth_failure(request.headers, token, account)
    if failure is not None:
        return respond(failure, envelope.PROXY_MESSAGE_TYPE, decision, malformed=malformed)
    answer, message_type = await _resource_answer(request, account, path, found, message_type)
    response = respond(answer, message_type, decision, malformed=malformed)
    if token is not None:
        response.headers[INSTANCE_ID_HEADER] = account.oauth.installation_instance_id
    return response


async def _resource_answer(
    request: web.Request,
    account: SandboxAccount,
    path: str,
    found: tuple[Route | None, dict[str, str], list[str]],
    message_type: str,
) -> tuple[Answer, str]:
    """What the resource at ``path`` (``found`` by :func:`find_route`) answers an authenticated request, and the
    message type to send with it."""
    route, params, allowed = found
    if route is None:
        if allowed:
            message = f"{request.method} is not supported on {path}; use {', '.join(allowed)}"
            return Answer(405, envelope.errors(envelope.METHOD_NOT_ALLOWED_CODE, message)), message_type
        return Answer(404, envelope.errors(envelope.NOT_FOUND_CODE, f"No resource found at {path}")), message_type
    call = Call(account, dict(request.query), params, await request.read() if request.can_read_body else b"")
    try:
        answer = route.handler(call)
    except ApiError as error:
        answer = error.answer()
    except Exception:  # a sandbox bug answers like Brightpearl's own: 500 CMNU-003, logged here
        log.exception("sandbox handler for %s %s failed", request.method, path)
        answer = Answer(500, envelope.INTERNAL_ERROR)
    if answer.status >= 400 and route.error_message_type:
        message_type = route.error_message_type
    return answer, message_type


async def date_by_account_clock(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer's ``Date`` (recorded on every Brightpearl answer) by the account's own clock, so that a skewed,
    drifting or stepped clock shows in it as it does in the account's stamps; none at all from an account set not
    to send one (a proxy that strips it), where the client must do without."""
    code = request.match_info.get("account")
    if code is None or not request.path.startswith("/public-api/"):
        return
    account = request.app[SANDBOX_STATE].get(code)
    if account is None:
        return
    if account.sends_date:
        response.headers[hdrs.DATE] = format_datetime(account.now().astimezone(UTC), usegmt=True)
    else:
        response.headers.popall(hdrs.DATE, None)
