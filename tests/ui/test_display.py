"""How the dashboard words things, and the small rules of its login: pure functions, table-tested."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request

from relay.api.schemas import AccountStatus, ResourceStatus
from relay.ui.display import (
    Badge,
    actual_interval,
    ago,
    auth_badge,
    connect_help,
    duration,
    percent,
    polling_health,
    short_url,
    when,
)
from relay.ui.session import safe_next, same_origin

NOW = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds_before", "text"),
    [
        (0.2, "just now"),
        (42, "42 s ago"),
        (180, "3 min ago"),
        (7300, "2 h ago"),
        (200_000, "2 d ago"),
        (-300, "in 5 min"),
    ],
)
def test_ago(seconds_before: float, text: str) -> None:
    assert ago(NOW - timedelta(seconds=seconds_before), NOW) == text


def test_times_are_utc_to_the_second_and_missing_ones_say_so() -> None:
    assert when("2026-11-26T11:15:02+01:00") == "2026-11-26 10:15:02"
    assert when(None) == "–"
    assert ago(None, NOW) == "never"


@pytest.mark.parametrize(("rate", "text"), [(None, "–"), (1.0, "100 %"), (0.0, "0 %"), (0.975, "97.5 %")])
def test_percent(rate: float | None, text: str) -> None:
    assert percent(rate) == text


def test_short_url() -> None:
    assert short_url("https://example.com/hooks") == "example.com/hooks"
    assert short_url("https://example.com/" + "x" * 60, 20) == "example.com/xxxxxxx…"


def status(lag_s: float | None = None, **times: str) -> AccountStatus:
    resource = ResourceStatus(poll_interval_s=5, effective_poll_interval_s=5, lag_s=lag_s)
    return AccountStatus.model_validate(
        {"requests_last_minute": 0, "budget_per_minute": 100, "resources": {"orders": resource}, **times}
    )


@pytest.mark.parametrize(
    ("fields", "label"),
    [
        ({}, "not polled yet"),
        ({"last_success_at": "2026-11-26T09:59:58Z", "lag_s": 3.0}, "healthy"),
        ({"last_success_at": "2026-11-26T09:59:58Z", "lag_s": 900.0}, "lagging"),
        ({"last_success_at": "2026-11-26T09:00:00Z", "last_error_at": "2026-11-26T09:59:00Z"}, "error"),
        ({"last_success_at": "2026-11-26T09:59:30Z", "last_error_at": "2026-11-26T09:00:00Z"}, "healthy"),
        ({"last_error_at": "2026-11-26T09:59:00Z"}, "error"),
        # an OAuth account waiting for an authorization is not polled: that comes first, whatever else is recorded
        ({"auth_state": "authorization_required"}, "authorization required"),
        (
            {"auth_state": "reauthorization_required", "last_error_at": "2026-11-26T09:59:00Z"},
            "reauthorization required",
        ),
        (
            {"auth_state": "reauthorization_required", "last_success_at": "2026-11-26T09:59:58Z"},
            "reauthorization required",
        ),
        ({"auth_state": "active", "last_success_at": "2026-11-26T09:59:58Z", "lag_s": 3.0}, "healthy"),
        ({"auth_state": "active"}, "not polled yet"),
    ],
)
def test_polling_health(fields: dict[str, Any], label: str) -> None:
    assert polling_health(status(**fields)).label == label


@pytest.mark.parametrize(
    ("auth_state", "badge", "help_starts"),
    [
        ("authorization_required", Badge("authorization required", "warn"), "First connection"),
        ("active", Badge("active", "ok"), "Reconnect"),
        ("reauthorization_required", Badge("reauthorization required", "bad"), "Authorize again"),
        ("something_new", Badge("something new", "idle"), "Reconnect"),
        (None, None, "Reconnect"),  # a private app's account has no authorization (and no button)
    ],
)
def test_an_oauth_accounts_authorization_and_what_connecting_it_does(
    auth_state: str | None, badge: Badge | None, help_starts: str
) -> None:
    assert auth_badge(auth_state) == badge
    assert connect_help(auth_state).startswith(help_starts + ":")


@pytest.mark.parametrize(
    ("target", "kept"),
    [
        (None, "/ui"),
        ("/ui", "/ui"),
        ("/ui/deliveries?status=failed", "/ui/deliveries?status=failed"),
        ("https://evil.example/", "/ui"),
        ("//evil.example/ui", "/ui"),
        ("/ui//evil.example", "/ui"),
        ("/ui\\@evil.example", "/ui"),
        ("/uix", "/ui"),
        ("/v1/accounts", "/ui"),
        ("/ui?\r\nSet-Cookie: a=1", "/ui"),  # a line break would end the Location header
        ("/ui/deliveries?subscription=sub_é", "/ui"),
        ("/ui/deliveries?subscription=sub_%C3%A9", "/ui/deliveries?subscription=sub_%C3%A9"),
        ("/ui/deliveries/\udcff", "/ui"),  # a path that was not UTF-8
        ("/ui/a b", "/ui"),
    ],
)
def test_after_login_only_dashboard_paths(target: str | None, kept: str) -> None:
    assert safe_next(target) == kept


@pytest.mark.parametrize(
    ("headers", "same"),
    [
        ({"Origin": "http://relay.local:8080"}, True),
        ({"Origin": "http://RELAY.local:8080"}, True),
        ({"Referer": "http://relay.local:8080/ui/deliveries/dlv_1"}, True),
        ({"Origin": "http://relay.local:8081"}, False),
        ({"Origin": "https://evil.example"}, False),
        ({"Origin": "null"}, False),
        ({"Referer": "http://evil.example/relay.local:8080"}, False),
        ({"Origin": "http://["}, False),  # urlsplit raises on an unclosed IPv6 address
        ({"Referer": "http://[::1/ui"}, False),
        ({}, False),
    ],
)
def test_forms_must_come_from_this_host(headers: dict[str, str], same: bool) -> None:
    request = make_mocked_request("POST", "/ui/deliveries/dlv_1/retry", headers={"Host": "relay.local:8080", **headers})
    assert same_origin(request) is same


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (1, "1 second"),
        (45, "45 seconds"),
        (60, "1 minute"),
        (61, "2 minutes"),
        (810, "14 minutes"),
        (900, "15 minutes"),
    ],
)
def test_a_wait_is_said_in_seconds_or_minutes_rounded_up(seconds: int, words: str) -> None:
    assert duration(seconds) == words


@pytest.mark.parametrize(
    ("actual", "effective", "shown"),
    [
        (None, 10.0, None),  # not measured yet
        (10.0, 10.0, Badge("10 s", "ok")),
        (10.95, 10.0, Badge("10.95 s", "ok")),  # within 10 % of the interval planned: a busy moment
        (14.62, 10.0, Badge("14.6 s", "warn")),  # the workers cannot keep up
        (330.0, 300.0, Badge("330 s", "ok")),  # the budget's interval, not the asked one, is the measure
    ],
)
def test_the_actual_interval(actual: float | None, effective: float, shown: Badge | None) -> None:
    resource = ResourceStatus(poll_interval_s=10, effective_poll_interval_s=effective, actual_poll_interval_s=actual)
    assert actual_interval(resource) == shown
