"""What an answer from Brightpearl means: a JSON body to use, or an error of a kind. Pure functions over the
status, the ``Content-Type`` and the text, so that every answer the API (or Cloudflare in front of it) gives is
decided in one table-tested place.

Only a Brightpearl-shaped 401/403 (its JSON envelope) is an authentication failure: Cloudflare fronts the API
(API.md 4, 8.1) and answers 403, 502 and 520-524 with an HTML page, which says nothing about the token. Such a
page, an empty body where one is needed and JSON cut short are all :class:`Unavailable`: transient, tried again
at the lane's next interval.
"""

import json
import re
from typing import Any

from workers.brightpearl.errors import AuthenticationFailed, RequestRejected, Unavailable

EMPTY: Any = None  # the body of an answer with no body (PUT/DELETE may answer so; a GET may not)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def messages_of(body: Any) -> list[str]:
    """The human-readable parts of an error answer: ``errors[].message`` or a string ``response``."""
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list):
            return [f"{e.get('code')}: {e.get('message')}" if isinstance(e, dict) else str(e) for e in errors]
        if isinstance(body.get("response"), str):
            return [body["response"]]
    return []


def is_envelope(body: Any) -> bool:
    """Whether ``body`` is Brightpearl's envelope: an object with a ``response`` or an ``errors`` list."""
    return isinstance(body, dict) and ("response" in body or isinstance(body.get("errors"), list))


def looks_like_html(content_type: str, text: str) -> bool:
    return "html" in content_type.lower() or text.lstrip()[:1] == "<"


def html_title(text: str) -> str:
    """The page's ``<title>`` (Cloudflare's name the error: "522: Connection timed out"), else its start."""
    found = _TITLE.search(text)
    shown = found.group(1) if found else text
    return " ".join(shown.split())[:120]


def read_body(method: str, url: str, status: int, content_type: str, text: str) -> Any:
    """The parsed JSON body of an answer; :data:`EMPTY` when it has none; :class:`Unavailable` of kind ``html``
    or ``malformed`` when it cannot be Brightpearl's."""
    if not text.strip():
        return EMPTY
    if looks_like_html(content_type, text):
        raise Unavailable(method, url, status, [f"an HTML page, not JSON: {html_title(text)!r}"], kind="html")
    try:
        return json.loads(text)
    except ValueError:
        raise Unavailable(method, url, status, [f"answer is not JSON: {text[:80]!r}"], kind="malformed") from None


def unwrap(method: str, url: str, status: int, payload: Any) -> Any:
    """The payload of a successful answer (a throttle was dealt with before); the error it means otherwise."""
    if 200 <= status < 300:
        return payload
    messages = messages_of(payload) or ([str(payload)[:200]] if payload is not EMPTY else [])
    if payload is EMPTY:
        raise Unavailable(method, url, status, messages or ["an error with no body"], kind="empty")
    if not is_envelope(payload):
        raise Unavailable(method, url, status, messages, kind="malformed")
    if status in (401, 403):
        raise AuthenticationFailed(method, url, status, messages)
    if status == 404:
        raise RequestRejected(method, url, status, messages, kind="not_found")
    if 400 <= status < 500 or (status == 500 and isinstance(payload.get("errors"), list)):
        raise RequestRejected(method, url, status, messages)
    raise Unavailable(method, url, status, messages)


def response_of(method: str, url: str, payload: Any) -> Any:
    """The ``response`` of a successful answer; :class:`Unavailable` when the body is empty or has none."""
    if payload is EMPTY:
        raise Unavailable(method, url, 200, ["an empty body where a response was needed"], kind="empty")
    if not isinstance(payload, dict) or "response" not in payload:
        raise Unavailable(method, url, 200, ["answer has no 'response'"], kind="malformed")
    return payload["response"]
