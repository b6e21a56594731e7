"""``integration-service/webhook``: Brightpearl's native webhook subscriptions as its API answers them
(API.md 7.1 and the recordings ``webhook__*``): create, list, get by ID set, delete, simulate.

Handlers take what :class:`relay.sandbox.resources.Call` carries and answer an
:class:`~relay.sandbox.envelope.Answer`; they go through the gateway like every other Brightpearl request
(throttle, faults, authentication, request log). Errors are the recorded ones: 404 ``CMNC-404`` "No webhooks
available in ID Set {ids}" and "Cannot find webhook: {id}", 400 ``INTC-064`` for an event that does not exist
or that the account refuses. A missing field is a 400 ``CMNC-400`` (not recorded), and so, on a strict account,
is a field the documentation does not name.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from relay.sandbox import envelope
from relay.sandbox.account import SandboxAccount
from relay.sandbox.envelope import Answer, ApiError
from relay.sandbox.hints import Hint, calls_for
from relay.sandbox.idsets import IdSetError, parse_id_set
from relay.sandbox.webhook_events import UNSUBSCRIBABLE_CODE, subscribable, unsubscribable_message

MAX_SIMULATED = 10  # webhook-simulate takes at most 10 ids (API.md 6.1)
HTTP_METHODS = ("GET", "POST", "PUT", "DELETE")
# The documented fields (API.md 7.1); a strict account refuses any other.
FIELDS = frozenset(
    {"subscribeTo", "httpMethod", "uriTemplate", "bodyTemplate", "contentType", "idSetAccepted", "qualityOfService"}
)


class WebhookCall(Protocol):
    """What a webhook handler is given (:class:`relay.sandbox.resources.Call` is one)."""

    @property
    def account(self) -> SandboxAccount: ...

    @property
    def params(self) -> Mapping[str, str]: ...

    def json_object(self) -> dict[str, Any]: ...


def _bad(message: str) -> ApiError:
    return ApiError(400, envelope.BAD_BODY_CODE, message)


def _text(body: dict[str, Any], name: str, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise _bad(f"You have not supplied a valid {name}")
    return value


def post_webhook(call: WebhookCall) -> Answer:
    """``POST webhook``: ``{"response": <new id>}``."""
    body = call.json_object()
    unknown = sorted(set(body) - FIELDS)
    if unknown and call.account.strict:
        raise _bad(f"Unknown fields: {', '.join(unknown)}")
    subscribe_to = _text(body, "subscribeTo") or ""
    method = (_text(body, "httpMethod") or "").upper()
    if method not in HTTP_METHODS:
        raise _bad(f"httpMethod must be one of {', '.join(HTTP_METHODS)}")
    uri_template = _text(body, "uriTemplate") or ""
    carries_body = method in ("POST", "PUT")
    body_template = _text(body, "bodyTemplate", required=carries_body)
    content_type = _text(body, "contentType", required=carries_body)
    id_set_accepted = body.get("idSetAccepted", False)
    if not isinstance(id_set_accepted, bool):
        raise _bad("idSetAccepted must be true or false")
    quality = body.get("qualityOfService", 0)
    if quality not in (0, 1) or isinstance(quality, bool):
        raise _bad("qualityOfService must be 0 or 1")
    account = call.account
    if not subscribable(subscribe_to, account.refused_webhook_events):
        raise ApiError(400, UNSUBSCRIBABLE_CODE, unsubscribable_message(subscribe_to))
    webhook = account.webhooks.add(
        subscribe_to=subscribe_to,
        http_method=method,
        uri_template=uri_template,
        body_template=body_template,
        content_type=content_type,
        id_set_accepted=id_set_accepted,
        quality_of_service=quality,
    )
    return envelope.ok(webhook.id)


def _ids(text: str) -> list[int]:
    try:
        return parse_id_set(text)
    except IdSetError:
        return []


def get_webhooks(call: WebhookCall) -> Answer:
    """``GET webhook[/{ID-SET}]``: the webhooks named (all when none are), in id order; 404 when an ID set names
    none that exist."""
    book = call.account.webhooks
    if "ids" not in call.params:
        return envelope.ok([hook.describe() for hook in book.webhooks.values()])
    text = call.params["ids"]
    found = book.find(_ids(text))
    if not found:
        raise ApiError(404, envelope.NOT_FOUND_CODE, f"No webhooks available in ID Set {text}")
    return envelope.ok([hook.describe() for hook in found])


def delete_webhook(call: WebhookCall) -> Answer:
    """``DELETE webhook/{id}``: ``{}``; 404 for a webhook that does not exist."""
    text = call.params["id"]
    if not (text.isdigit() and call.account.webhooks.remove(int(text))):
        raise ApiError(404, envelope.NOT_FOUND_CODE, f"Cannot find webhook: {text}")
    return Answer(200, {})


def simulate_webhook(call: WebhookCall) -> Answer:
    """``POST webhook/{ID-SET}/simulate`` with ``{"testData": {"${name}": value}}``: each webhook named (at most
    10) called once at once, with the values given (the others as an ``order.modified`` of id 1 would give them),
    no hint fault applied; ``{}``."""
    text = call.params["ids"]
    ids = _ids(text)
    if len(ids) > MAX_SIMULATED:
        raise ApiError(400, envelope.TOO_MANY_IDS_CODE, f"At most {MAX_SIMULATED} webhooks may be simulated at once")
    account = call.account
    found = account.webhooks.find(ids)
    if not found:
        raise ApiError(404, envelope.NOT_FOUND_CODE, f"No webhooks available in ID Set {text}")
    test_data = call.json_object().get("testData", {})
    if not isinstance(test_data, dict) or not all(isinstance(v, str) for v in test_data.values()):
        raise _bad("testData must map template variables to strings")
    now: datetime = account.now()
    for hook in found:
        account.hints.send_now(calls_for(Hint(hook, account.code, "order.modified", (1,), now), values=test_data))
    return Answer(200, {})
