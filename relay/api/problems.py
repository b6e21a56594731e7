"""Errors as ``application/problem+json`` (RFC 9457), in one middleware: the only place that maps errors to HTTP.

A request the API cannot accept is a 4xx with a ``detail`` a person can act on, never a 5xx or a traceback.
Handlers raise the relay's errors (``subscriptions.core.errors``, whose docstring draws the tree) and let them through:
:data:`RELAY_ERRORS` gives each its status and title, and :func:`relay_problem` its detail.
"""

import json
import logging
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError

from subscriptions.core.crypto import TokenKeyError
from subscriptions.core.errors import Conflict, InvalidInput, NotFound, RelayError, TooMany
from workers.brightpearl.errors import AuthenticationFailed, BrightpearlError, RequestRejected

log = logging.getLogger(__name__)

PROBLEM_TYPE = "application/problem+json"
MAX_BODY_BYTES = 64 * 1024


class Problem(BaseModel):
    """An RFC 9457 problem: what went wrong (``title``) and what to do about it (``detail``)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


class Forbidden(RelayError):
    """The caller's key may not do this."""


class Unauthenticated(RelayError):
    """No valid bearer token came with the request."""


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = Problem(title=title, status=status, detail=detail, errors=errors)
    return web.Response(
        status=status, text=body.model_dump_json(exclude_none=True), content_type=PROBLEM_TYPE, headers=headers
    )


def validation_problem(error: ValidationError, where: str) -> web.Response:
    errors = [
        {"loc": ".".join(str(part) for part in e["loc"]) or where, "msg": str(e["msg"]).removeprefix("Value error, ")}
        for e in error.errors(include_url=False)
    ]
    detail = "; ".join(f"{e['loc']}: {e['msg']}" for e in errors[:5])
    return problem(422, f"Invalid {where}", detail, errors=errors)


def json_problem(error: json.JSONDecodeError) -> web.Response:
    return problem(400, "Malformed JSON", f"the request body is not valid JSON: {error}")


_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Unprocessable",
    429: "Too many requests",
}


RELAY_ERRORS: tuple[tuple[type[RelayError], int, str], ...] = (
    (Unauthenticated, 401, "Unauthorized"),
    (Forbidden, 403, "Forbidden"),
    (NotFound, 404, "Not found"),
    (Conflict, 409, "Conflict"),
    (InvalidInput, 422, "Unprocessable"),
    (TooMany, 429, "Too many requests"),
    (BrightpearlError, 422, "Unprocessable"),  # Brightpearl refused what the request gave it: see its detail
    (TokenKeyError, 503, "Misconfigured"),  # this process's RELAY_ENCRYPTION_KEY is not the one that wrote it
)
"""Each error the relay raises on purpose, its status and title; the first matching class wins, and any other
:class:`RelayError` is a 422."""

BRIGHTPEARL_ACCOUNT = web.RequestKey("relay_brightpearl_account", str)
"""The account whose Brightpearl a request is asking (registering or changing it), named in a refusal's detail."""


def brightpearl_detail(error: BrightpearlError, account: str | None) -> str:
    """What a person can do about Brightpearl refusing or failing a request made for ``account``."""
    asked = f" for {account!r}" if account else ""
    said = f"HTTP {error.status}: {'; '.join(error.messages)}"
    if isinstance(error, AuthenticationFailed):
        return f"Brightpearl rejected the credentials{asked} ({said}); check app_ref and the token"
    if isinstance(error, RequestRejected):
        return f"Brightpearl refused a request to {error.url} ({said}); check base_url or datacenter and the code"
    return f"could not reach Brightpearl{asked}: {error}"


def relay_problem(error: RelayError, request: web.Request) -> web.Response:
    """The problem answer of an error the relay raised on purpose while serving ``request``."""
    status, title = next(((s, t) for kind, s, t in RELAY_ERRORS if isinstance(error, kind)), (422, "Unprocessable"))
    if isinstance(error, BrightpearlError):
        return problem(status, title, brightpearl_detail(error, request.get(BRIGHTPEARL_ACCOUNT)))
    if status == 401:
        return problem(status, title, str(error), headers={"WWW-Authenticate": "Bearer"})
    if isinstance(error, TooMany) and error.retry_after_s is not None:
        return problem(status, title, str(error), headers={"Retry-After": str(error.retry_after_s)})
    if status == 503:
        log.error("cannot serve a request: %s", error)
        return problem(status, title, f"{error}; an operator must fix this process's settings")
    return problem(status, title, str(error))


@web.middleware
async def problem_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
    except RelayError as error:
        return relay_problem(error, request)
    except web.HTTPRequestEntityTooLarge:
        return problem(
            413,
            "Request body too large",
            f"the request body is larger than the {MAX_BODY_BYTES} bytes this API accepts",
        )
    except web.RequestPayloadError as error:  # the body as sent cannot be read: a bad Content-Encoding or chunking
        reason = getattr(error.__cause__, "message", None) or str(error)
        return problem(400, "Bad request", f"the request body cannot be read: {reason}")
    except web.HTTPException as error:
        if error.status < 400:
            raise
        detail = error.text if error.text and not error.text.startswith(f"{error.status}:") else error.reason
        headers = None
        if error.status == 404:
            detail = f"no endpoint at {request.method} {request.path}; see /openapi.json"
        elif error.status == 405:
            detail = f"{request.method} is not allowed on {request.path}; see /openapi.json"
            headers = {"Allow": error.headers.get("Allow", "")}  # RFC 9110: a 405 says which methods are allowed
        return problem(error.status, _TITLES.get(error.status, error.reason), detail or error.reason, headers=headers)
    except RedisError as error:
        log.warning("Redis error serving %s %s: %s", request.method, request.path, error)
        return problem(
            503,
            "Storage unavailable",
            "the relay cannot reach its Redis right now; try again shortly",
            headers={"Retry-After": "5"},
        )
    return response
