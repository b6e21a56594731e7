"""What a thin hint says, which native webhooks the relay subscribes, and which resources they cover."""

import json

import pytest

from workers.hints import (
    MAX_HINT_IDS,
    Hint,
    HintError,
    body_template,
    coalesce_ms,
    covered_resources,
    parse_hint,
    resources_of,
    wanted_events,
)

ALL = ["orders", "stock", "goods-out-notes", "products", "contacts"]


def body(**fields: object) -> bytes:
    base: dict[str, object] = {
        "accountCode": "acme",
        "resourceType": "order",
        "id": "5906",
        "lifecycleEvent": "modified",
        "fullEvent": "order.modified.order-status",
        "raisedOn": "2022-09-19T10:20:41.691Z",
    }
    return json.dumps(base | fields).encode()


def test_the_recorded_body_reads_as_one_order() -> None:
    recorded = (
        b'{"accountCode":"apiworxtest4","resourceType":"order","id":"5906","lifecycleEvent":"modified",'
        b'"fullEvent":"order.modified.order-status","raisedOn":"2022-09-19T10:20:41.691Z","brightpearlVersion":"4.95"}'
    )
    assert parse_hint(recorded) == Hint("order", "order.modified.order-status", (5906,))


def test_an_id_set_with_ranges_names_every_id() -> None:
    assert parse_hint(body(id="1-5,99,202")).ids == (1, 2, 3, 4, 5, 99, 202)


def test_a_set_naming_too_many_ids_asks_for_the_whole_resource() -> None:
    hint = parse_hint(body(id=f"1-{MAX_HINT_IDS + 1}"))
    assert hint.overflow
    assert hint.ids == ()
    assert parse_hint(body(id="1-999999999999")).overflow  # never expanded


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        (b"not json", "not JSON"),
        (b"[1]", "not a JSON object"),
        (body(fullEvent=None), "fullEvent"),
        (body(id=""), "id is missing"),
        (body(id="5-1"), "does not ascend"),
        (body(id="a,b"), "not a non-negative integer"),
        (b"\xff\xfe", "not JSON"),
    ],
)
def test_a_malformed_body_is_refused_naming_what_is_wrong(raw: bytes, complaint: str) -> None:
    with pytest.raises(HintError, match=complaint):
        parse_hint(raw)


def test_the_template_makes_a_body_the_parser_reads() -> None:
    rendered = (
        body_template()
        .replace("${account-code}", "acme")
        .replace("${resource-type}", "product")
        .replace("${resource-id}", "7,9-11")
        .replace("${lifecycle-event}", "modified")
        .replace("${full-event}", "product.modified.on-hand-modified")
        .replace("${raised-on}", "2026-12-03T10:00:00.000Z")
    )
    assert parse_hint(rendered.encode()) == Hint("product", "product.modified.on-hand-modified", (7, 9, 10, 11))


@pytest.mark.parametrize(
    ("event", "kind", "resources"),
    [
        ("order.modified", "order", ["orders"]),
        ("order.modified.order-status", "order", ["orders"]),
        ("product.modified.on-hand-modified", "product", ["stock"]),
        ("product.modified", "product", ["products"]),
        ("product.created", "product", ["products"]),
        ("product.destroyed", "product", ["products"]),
        ("goods-out-note.modified.shipped", "goods-out-note", ["goods-out-notes"]),
        ("contact.created", "contact", ["contacts"]),
        ("goods-in-note.created", "goods-in-note", []),
    ],
)
def test_a_hint_is_for_the_resource_its_event_names(event: str, kind: str, resources: list[str]) -> None:
    assert resources_of(Hint(kind, event, (1,)), ALL) == resources


def test_a_hint_for_a_resource_not_watched_is_for_nothing() -> None:
    assert resources_of(Hint("order", "order.modified", (1,)), ["stock"]) == []


def test_the_relay_subscribes_what_its_resources_need_once() -> None:
    assert wanted_events(ALL) == [
        "contact.created",
        "contact.modified",
        "goods-out-note",
        "order.created",
        "order.modified",
        "order.modified.order-status",
        "product",
    ]
    assert wanted_events(["stock"]) == ["product.modified.on-hand-modified"]


def test_refused_events_leave_their_resource_uncovered() -> None:
    subscribed = ["goods-out-note", "order.modified", "order.modified.order-status", "product"]  # contact.* refused
    assert covered_resources(subscribed, ALL) == ["orders", "stock", "goods-out-notes", "products"]
    assert covered_resources(["product.modified.on-hand-modified"], ALL) == ["stock"]
    assert covered_resources([], ALL) == []


@pytest.mark.parametrize(
    ("used", "delay_ms"),
    [(0, 30), (50, 30), (75, 515), (100, 1_000), (180, 1_000)],
)
def test_hints_wait_longer_for_more_as_the_budget_fills(used: int, delay_ms: int) -> None:
    assert coalesce_ms(used, 100, 30) == delay_ms


def test_a_longer_base_wait_is_kept_whatever_the_budget() -> None:
    assert coalesce_ms(100, 100, 2_000) == 2_000
