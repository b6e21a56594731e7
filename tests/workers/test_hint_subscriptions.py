"""Which of an account's Brightpearl webhooks the relay keeps, deletes and creates: table tests of the pure plan."""

from typing import Any

import pytest

from workers.brightpearl.errors import RequestRejected, Unavailable
from workers.hint_subscriptions import (
    WebhookPlan,
    hook_prefix,
    hook_url,
    is_refusal,
    matches,
    plan_webhooks,
    safe_error,
    wanted_webhook,
)

PUBLIC = "https://relay.example.com"
PREFIX = hook_prefix(PUBLIC, "acme")
URL = hook_url(PUBLIC, "acme", "tok")
OLD_URL = hook_url(PUBLIC, "acme", "old")


def hook(hook_id: int, event: str, url: str = URL, **changes: Any) -> dict[str, Any]:
    return {"id": hook_id, **wanted_webhook(event, url), **changes}


def test_urls() -> None:
    assert PREFIX == "https://relay.example.com/hooks/brightpearl/acme/"
    assert URL == PREFIX + "tok"
    assert hook_prefix(PUBLIC + "/", "acme") == PREFIX


def test_the_wanted_webhook_is_the_contracts() -> None:
    body = wanted_webhook("order.modified", URL)
    assert body["httpMethod"] == "POST"
    assert body["contentType"] == "application/json"
    assert body["idSetAccepted"] is True
    assert body["qualityOfService"] == 1
    assert "${resource-id}" in body["bodyTemplate"]
    assert body["uriTemplate"] == URL
    assert matches({"id": 1, **body}, URL)
    assert not matches({**body, "qualityOfService": 0}, URL)
    assert not matches(body, OLD_URL)


@pytest.mark.parametrize(
    ("existing", "url", "events", "expected"),
    [
        # nothing yet: create every event
        ([], URL, ["order.modified", "product"], WebhookPlan({}, (), ("order.modified", "product"))),
        # exactly as wanted: kept, nothing to do
        ([hook(1, "product")], URL, ["product"], WebhookPlan({"product": 1}, (), ())),
        # an event no longer wanted: deleted
        ([hook(1, "product"), hook(2, "contact.created")], URL, ["product"], WebhookPlan({"product": 1}, (2,), ())),
        # the token changed: every old one deleted and created again
        (
            [hook(1, "product", OLD_URL), hook(2, "order.modified", OLD_URL)],
            URL,
            ["order.modified", "product"],
            WebhookPlan({}, (1, 2), ("order.modified", "product")),
        ),
        # another field differs (no update in Brightpearl): deleted and created
        ([hook(1, "product", qualityOfService=0)], URL, ["product"], WebhookPlan({}, (1,), ("product",))),
        ([hook(1, "product", bodyTemplate="{}")], URL, ["product"], WebhookPlan({}, (1,), ("product",))),
        # a duplicate of a kept one: deleted, so a change is hinted once
        ([hook(1, "product"), hook(2, "product")], URL, ["product"], WebhookPlan({"product": 1}, (2,), ())),
        # hints off: every own one deleted, none created
        ([hook(1, "product"), hook(2, "order.modified")], None, ["product"], WebhookPlan({}, (1, 2), ())),
    ],
)
def test_plan(existing: list[dict[str, Any]], url: str | None, events: list[str], expected: WebhookPlan) -> None:
    assert plan_webhooks(existing, prefix=PREFIX, url=url, events=events) == expected


@pytest.mark.parametrize(
    "foreign",
    [
        hook(9, "product", "https://other.example.com/hooks"),  # another integration
        hook(9, "product", hook_url(PUBLIC, "acme-eu", "tok")),  # another account of this relay: not a prefix of it
        hook(9, "product", "https://relay.example.com/hooks/brightpearl/acme"),  # no slash: not under the prefix
        hook(9, "product", "http://relay.example.com/hooks/brightpearl/acme/tok"),  # another scheme
        {"id": 9, "subscribeTo": "product"},  # no uriTemplate at all
    ],
)
@pytest.mark.parametrize("url", [URL, None])
def test_foreign_webhooks_are_never_touched(foreign: dict[str, Any], url: str | None) -> None:
    plan = plan_webhooks([foreign, hook(1, "order.modified")], prefix=PREFIX, url=url, events=["product"])
    assert 9 not in plan.delete
    assert 9 not in plan.keep.values()
    assert plan.delete == (1,)
    assert plan.create == (("product",) if url else ())


def test_a_refusal_is_intc_064_only() -> None:
    url = "https://x/integration-service/webhook"
    refused = RequestRejected("POST", url, 400, ["INTC-064: order.created cannot be subscribed too"])
    assert is_refusal(refused)
    assert not is_refusal(RequestRejected("POST", url, 400, ["CMNC-400: bad body"]))
    assert not is_refusal(Unavailable("POST", url, 503, ["INTC-064"]))


def test_an_error_shown_never_holds_the_token() -> None:
    error = RequestRejected("POST", "https://x/webhook", 400, ["uriTemplate " + URL + " is bad"])
    assert "tok" not in safe_error(error, "tok").split("/acme/")[-1]
    assert URL not in safe_error(error, "tok")
