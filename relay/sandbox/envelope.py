"""Brightpearl's envelope: answer bodies, error bodies and the headers every answer carries.

Bodies are ``{"response": ...}`` or ``{"errors": [{"code", "message"}]}``; auth failures and throttling answer
a plain string ``response``. The codes and messages below are the recorded ones, except where marked
"not recorded": there the sandbox had to choose, keeping Brightpearl's ``XXXY-NNN`` form.
"""

import json
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from relay.sandbox.throttle import ThrottleDecision
from subscriptions.core.errors import RelayError

CONTENT_TYPE = "application/json;charset=UTF-8"


INTERNAL_ERROR_CODE = "CMNU-003"
NOT_FOUND_CODE = "CMNC-404"
METHOD_NOT_ALLOWED_CODE = "CMNC-405"  # not recorded
BAD_BODY_CODE = "CMNC-400"  # not recorded
TOO_MANY_IDS_CODE = "CMNC-029"  # not recorded
FILTER_ERROR_CODE = "CMNC-018"  # recorded: "The filter orderStatusId=BAD PARAM cannot be parsed as: INTEGER"
COLUMN_ERROR_CODE = "CMNC-019"  # not recorded: Brightpearl's code for an unknown column is unknown
NO_ORDER_TYPE_CODE = "ORDC-005"
BAD_ORDER_TYPE_CODE = "ORDC-006"
NO_SUPPLIER_CODE = "ORDC-022"
UNKNOWN_STATUS_CODE = "ORDC-011"  # not recorded
BAD_AVAILABILITY_IDS_CODE = "WHSC-097"  # not recorded: ours, for availability's 400 on a bad id (API.md 8.1)

PROXY_MESSAGE_TYPE = "api-proxy"  # recorded on auth failures: the proxy answered, not a service


def response(value: Any) -> dict[str, Any]:
    """A body that answers: ``{"response": value}`` (the proxy's refusals put a message there)."""
    return {"response": value}


THROTTLED = response("You have sent too many requests. Please wait before sending another request")
UNAVAILABLE = response("Service Unavailable")
NOT_AUTHENTICATED = response("Not authenticated. You must provide a valid authentication token.")
TOKEN_EXPIRED = response("Authorization token expired")


def invalid_token(sent: str) -> dict[str, Any]:
    """The 401 body for a token that is not the account's, echoing what was sent as Brightpearl does."""
    return response(f"Invalid instance token: {sent}")


def errors(code: str, message: str) -> dict[str, list[dict[str, str]]]:
    return {"errors": [{"code": code, "message": message}]}


INTERNAL_ERROR = errors(INTERNAL_ERROR_CODE, "Internal Server Error")


@dataclass(frozen=True)
class Answer:
    """What a Brightpearl handler answers: a status and a JSON body."""

    status: int
    body: Any


def ok(value: Any) -> Answer:
    """A 200 answering ``value`` as ``{"response": value}``."""
    return Answer(200, response(value))


class ApiError(RelayError):
    """A request Brightpearl refuses with an ``errors`` list; handlers raise it, the gateway renders it."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def answer(self) -> Answer:
        return Answer(self.status, errors(self.code, self.message))


def headers(message_type: str, throttle: ThrottleDecision) -> dict[str, str]:
    """The headers on every Brightpearl answer, errors included, as recorded."""
    return {
        "Content-Type": CONTENT_TYPE,
        "Cache-Control": "no-cache, must-revalidate",
        "Expires": "Mon, 20 Dec 1998 01:00:00 GMT",
        "Message-Type": message_type,
        "Ruid": str(uuid.uuid4()),
        "Pragma": "no-cache",
        "Brightpearl-Next-Throttle-Period": str(throttle.next_throttle_period_ms),
        "Brightpearl-Requests-Remaining": str(throttle.requests_remaining),
    }


def encode(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def truncated(body: bytes) -> bytes:
    """The first half of ``body``: JSON that stops mid-way, as a connection cut short would leave it."""
    return body[: max(1, len(body) // 2)] if len(body) > 1 else b"{"


# Cloudflare's own pages (not Brightpearl's): its 5xx pages name the error in the title, "<host> | 522:
# Connection timed out"; its 403 is the firewall's "Attention Required!" page.
CLOUDFLARE_TITLES = {
    403: "Attention Required! | Cloudflare",
    502: "{host} | 502: Bad gateway",
    520: "{host} | 520: Web server is returning an unknown error",
    521: "{host} | 521: Web server is down",
    522: "{host} | 522: Connection timed out",
    523: "{host} | 523: Origin is unreachable",
    524: "{host} | 524: A timeout occurred",
}


def cloudflare_page(status: int, host: str) -> web.Response:
    """The HTML error page Cloudflare, in front of the API (API.md 4, 8.1), answers with ``status``."""
    title = CLOUDFLARE_TITLES.get(status, "{host} | " + str(status)).format(host=host)
    html = (
        '<!DOCTYPE html>\n<html lang="en-US">\n<head>\n<title>'
        + title
        + '</title>\n<meta charset="UTF-8" />\n</head>\n<body>\n<div id="cf-wrapper"><h1>'
        + title
        + "</h1><p>Cloudflare Ray ID: "
        + uuid.uuid4().hex[:16]
        + "</p></div>\n</body>\n</html>\n"
    )
    headers = {"Server": "cloudflare", "Cf-Ray": uuid.uuid4().hex[:16] + "-LHR", "Cache-Control": "no-store"}
    return web.Response(status=status, text=html, content_type="text/html", charset="UTF-8", headers=headers)


def empty(message_type: str, throttle: ThrottleDecision) -> web.Response:
    """A 200 with Brightpearl's headers and no body at all, where a body was needed."""
    return web.Response(status=200, body=b"", headers=headers(message_type, throttle))


def respond(answer: Answer, message_type: str, throttle: ThrottleDecision, *, malformed: bool = False) -> web.Response:
    """The HTTP response for ``answer``; ``malformed`` cuts the body short and answers 200."""
    body = encode(answer.body)
    if malformed:
        return web.Response(status=200, body=truncated(body), headers=headers(message_type, throttle))
    return web.Response(status=answer.status, body=body, headers=headers(message_type, throttle))
