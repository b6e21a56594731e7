"""The OAuth token endpoint client: what its answers mean (a table), the form it sends, and its retries, against a
real HTTP server over loopback."""

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import aiohttp
import pytest
from aiohttp import web

from workers.brightpearl.errors import (
    AuthenticationFailed,
    BrightpearlError,
    OAuthClientRejected,
    ReauthorizationRequired,
    RequestRejected,
    Unavailable,
)
from workers.brightpearl.oauth import (
    OAuthApp,
    TokenEndpoint,
    TokenSet,
    form_body,
    is_token_refused,
    read_token_answer,
)
from workers.oauth_tokens import needs_refresh, refresh_margin_s

NOW = datetime(2026, 12, 3, 10, 0, 0, tzinfo=UTC)
URL = "https://oauth.brightpearl.com/token/acme"
SECRET = "s3cr3t+/=&client"
ACCESS = "6wxz+access/token=="
REFRESH = "R89F+refresh/token=="
RECORDED = (
    '{"access_token":"6wxz+access/token==","refresh_token":"R89F+refresh/token==","installation_instance_id":"13",'
    '"api_domain":"ws-use.brightpearl.com","token_type":"Bearer","expires_in":604800}'
)
INVALID_GRANT = '{"error":"invalid_grant","error_description":"The auth token has either expired or does not exist"}'


def test_form_body_encodes_every_value() -> None:
    body = form_body({"grant_type": "refresh_token", "refresh_token": "a+b/c=", "client_secret": "x y&z"})
    assert body == "grant_type=refresh_token&refresh_token=a%2Bb%2Fc%3D&client_secret=x%20y%26z"
    assert dict(parse_qsl(body)) == {"grant_type": "refresh_token", "refresh_token": "a+b/c=", "client_secret": "x y&z"}


def test_authorize_url_is_the_documented_one_with_every_value_encoded() -> None:
    app = OAuthApp("https://oauth.brightpearl.com/", "acme_relay", SECRET)
    url = app.authorize_url("acme", "https://relay.example.com/oauth/callback", "acme.a-b_c")
    assert url == (
        "https://oauth.brightpearl.com/authorize/acme?response_type=code&client_id=acme_relay"
        "&redirect_uri=https%3A%2F%2Frelay.example.com%2Foauth%2Fcallback&state=acme.a-b_c"
    )
    assert SECRET not in url


def test_recorded_answer_is_a_token_set() -> None:
    tokens = read_token_answer(URL, 200, "application/json", RECORDED, now=NOW)
    assert tokens == TokenSet(ACCESS, REFRESH, NOW + timedelta(days=7), NOW, "ws-use.brightpearl.com", "13")
    assert ACCESS not in repr(tokens)
    assert REFRESH not in repr(tokens)


@pytest.mark.parametrize(
    ("text", "previous", "refresh_token"),
    [
        ('{"access_token":"a2","refresh_token":"r2","expires_in":5}', "r1", "r2"),  # rotated: the new one
        ('{"access_token":"a2","expires_in":5}', "r1", "r1"),  # not rotated: the old one is kept
        ('{"access_token":"a2","refresh_token":"","expires_in":5}', "r1", "r1"),
    ],
)
def test_refresh_token_kept_unless_rotated(text: str, previous: str, refresh_token: str) -> None:
    tokens = read_token_answer(URL, 200, "application/json", text, now=NOW, previous_refresh_token=previous)
    assert (tokens.access_token, tokens.refresh_token, tokens.expires_at) == (
        "a2",
        refresh_token,
        NOW + timedelta(seconds=5),
    )


@pytest.mark.parametrize(
    ("status", "content_type", "text", "error", "kind"),
    [
        (400, "application/json", INVALID_GRANT, ReauthorizationRequired, "auth"),
        (400, "application/json", '{"error":"invalid_client"}', OAuthClientRejected, "auth"),
        (401, "application/json", '{"error":"invalid_client"}', OAuthClientRejected, "auth"),
        (400, "application/json", '{"error":"unsupported_grant_type"}', RequestRejected, "rejected"),
        (500, "application/json", '{"error":"server_error"}', Unavailable, "unavailable"),
        (502, "text/html", "<html><title>502 Bad Gateway</title></html>", Unavailable, "html"),
        (200, "text/html", "<html><title>Just a moment...</title></html>", Unavailable, "html"),
        (503, "application/json", "", Unavailable, "unavailable"),
        (429, "application/json", "{}", Unavailable, "unavailable"),
        (200, "application/json", '{"access_token":"a"', Unavailable, "malformed"),
        (200, "application/json", '{"refresh_token":"r"}', Unavailable, "malformed"),
        (200, "application/json", '{"access_token":"a"}', Unavailable, "malformed"),  # a code grant needs both
        (200, "application/json", "[]", Unavailable, "malformed"),
    ],
)
def test_what_an_error_answer_means(
    status: int, content_type: str, text: str, error: type[BrightpearlError], kind: str
) -> None:
    with pytest.raises(error) as raised:
        read_token_answer(URL, status, content_type, text, now=NOW)
    assert type(raised.value) is error
    assert raised.value.kind == kind


def test_invalid_grant_carries_the_reason_and_invalid_client_names_the_settings() -> None:
    with pytest.raises(ReauthorizationRequired) as grant:
        read_token_answer(URL, 400, "application/json", INVALID_GRANT, now=NOW)
    assert grant.value.reason == "The auth token has either expired or does not exist"
    assert isinstance(grant.value, AuthenticationFailed)
    with pytest.raises(OAuthClientRejected) as client:
        read_token_answer(URL, 400, "application/json", '{"error":"invalid_client"}', now=NOW)
    assert "RELAY_BRIGHTPEARL_APP_REF" in str(client.value)
    assert "RELAY_BRIGHTPEARL_CLIENT_SECRET" in str(client.value)


@pytest.mark.parametrize(
    ("status", "messages", "expired"),
    [
        (401, ["Authorization token expired"], True),
        (401, ["Invalid instance token: INVALID_STUFF"], True),
        (401, ["Not authenticated. You must provide a valid authentication token."], False),
        (403, ["Authorization token expired"], False),
        (200, [], False),
    ],
)
def test_which_401_a_refresh_may_cure(status: int, messages: list[str], expired: bool) -> None:
    assert is_token_refused(status, messages) is expired


@pytest.mark.parametrize(
    ("life_s", "margin_s"),
    [(604_800, 60.0), (3600, 60.0), (600, 60.0), (300, 30.0), (5, 0.5), (0, 0.0)],
)
def test_refresh_margin(life_s: float, margin_s: float) -> None:
    assert refresh_margin_s(life_s) == pytest.approx(margin_s)


@pytest.mark.parametrize(
    ("life_s", "age_s", "due"),
    [
        (604_800, 0, False),
        (604_800, 604_800 - 61, False),
        (604_800, 604_800 - 60, True),
        (5, 4.4, False),
        (5, 4.5, True),
        (5, 10, True),  # expired long ago
    ],
)
def test_needs_refresh(life_s: float, age_s: float, due: bool) -> None:
    issued = NOW
    assert needs_refresh(issued + timedelta(seconds=life_s), issued, issued + timedelta(seconds=age_s)) is due


@dataclass
class TokenServer:
    """A token endpoint answering each POST with the next scripted answer, remembering the forms it received."""

    answers: list[Callable[[], web.Response]] = field(default_factory=list)
    forms: list[dict[str, str]] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.content_types.append(request.content_type)
        self.forms.append(dict(parse_qsl(await request.text(), strict_parsing=True)))
        return self.answers.pop(0)()


def json_answer(status: int, text: str) -> Callable[[], web.Response]:
    return lambda: web.Response(status=status, text=text, content_type="application/json")


@pytest.fixture
async def token_server() -> AsyncIterator[TokenServer]:
    server = TokenServer()
    app = web.Application()
    app.router.add_post("/oauth/token/{account}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}/oauth"
    yield server
    await runner.cleanup()


async def no_sleep(_: float) -> None:
    return None


def endpoint(server: TokenServer, session: aiohttp.ClientSession) -> TokenEndpoint:
    app = OAuthApp(server.url, "acme_relay", SECRET, "dev-1")
    return TokenEndpoint(session, app, clock=lambda: NOW, sleep=no_sleep, timeout_s=5)


async def test_exchange_and_refresh_send_url_encoded_forms(token_server: TokenServer) -> None:
    token_server.answers = [json_answer(200, RECORDED), json_answer(200, '{"access_token":"a2","expires_in":60}')]
    async with aiohttp.ClientSession() as session:
        tokens = await endpoint(token_server, session).exchange_code("acme", "c+o/d=e", "https://relay.example/cb?x=1")
        again = await endpoint(token_server, session).refresh("acme", tokens.refresh_token)
    assert token_server.content_types == ["application/x-www-form-urlencoded"] * 2
    assert token_server.forms == [
        {
            "grant_type": "authorization_code",
            "code": "c+o/d=e",
            "client_id": "acme_relay",
            "client_secret": SECRET,
            "redirect_uri": "https://relay.example/cb?x=1",
        },
        {"grant_type": "refresh_token", "refresh_token": REFRESH, "client_id": "acme_relay", "client_secret": SECRET},
    ]
    assert (again.access_token, again.refresh_token) == ("a2", REFRESH)


async def test_transient_failures_are_retried_a_bounded_number_of_times(token_server: TokenServer) -> None:
    html = lambda: web.Response(status=502, text="<html><title>502</title></html>", content_type="text/html")  # noqa: E731
    token_server.answers = [html, json_answer(500, "{}"), json_answer(200, RECORDED)]
    async with aiohttp.ClientSession() as session:
        tokens = await endpoint(token_server, session).refresh("acme", REFRESH)
        assert tokens.access_token == ACCESS
        token_server.answers = [html, html, html, html]
        failing = endpoint(token_server, session)
        with pytest.raises(Unavailable):
            await failing.refresh("acme", REFRESH)
    assert failing.calls == 3
    assert len(token_server.answers) == 1


async def test_invalid_grant_is_not_retried_and_secrets_stay_out_of_errors_and_logs(
    token_server: TokenServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token_server.answers = [json_answer(503, "{}"), json_answer(400, INVALID_GRANT)]
    async with aiohttp.ClientSession() as session:
        grant = endpoint(token_server, session)
        with pytest.raises(ReauthorizationRequired) as raised:
            await grant.refresh("acme", REFRESH)
    assert grant.calls == 2
    shown = [str(raised.value), repr(raised.value), caplog.text, repr(grant.app)]
    for secret in (SECRET, REFRESH):
        assert not any(secret in text for text in shown)


async def test_network_failure_is_transient() -> None:
    async with aiohttp.ClientSession() as session:
        app = OAuthApp("http://127.0.0.1:1", "acme_relay", SECRET)
        grant = TokenEndpoint(session, app, clock=lambda: NOW, sleep=no_sleep, timeout_s=2)
        with pytest.raises(Unavailable) as raised:
            await grant.refresh("acme", REFRESH)
    assert raised.value.kind == "network"
    assert grant.calls == 3
    assert SECRET not in str(raised.value)
    assert REFRESH not in str(raised.value)
