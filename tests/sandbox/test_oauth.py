"""The sandbox as Brightpearl's OAuth server (API.md 2, 2.1): authorize redirects at once with a code, the token
endpoint takes forms only and answers both grants and both recorded errors, access tokens expire and refresh
tokens rotate as the control API sets, revocation ends the install, and the API takes Bearer tokens with the
recorded 401 bodies and its own throttle, leaving private apps as they were."""

from typing import Any

import pytest
from yarl import URL

from relay.sandbox.oauth import new_oauth_token
from tests.sandbox.conftest import Client, FakeMonotonic, Reply

REDIRECT = "http://127.0.0.1:8080/oauth/callback?from=relay"
ORDER_STATUS = "order-service/order-status"
INVALID_GRANT = {"error": "invalid_grant", "error_description": "The auth token has either expired or does not exist"}
TOKEN_KEYS = {"access_token", "refresh_token", "installation_instance_id", "api_domain", "token_type", "expires_in"}


def authorize_query(client: Client, account: str = "acme", **changes: str | None) -> dict[str, str]:
    app = client.sandbox.account(account).oauth.app
    query: dict[str, str | None] = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": REDIRECT,
        "state": "st+ate/1=",
    }
    query.update(changes)
    return {name: value for name, value in query.items() if value is not None}


async def authorize(client: Client, account: str = "acme", **changes: str | None) -> Reply:
    url = f"{client.sandbox.oauth_url}/authorize/{account}"
    return await client.call("GET", url, params=authorize_query(client, account, **changes))


async def code_of(client: Client, account: str = "acme") -> str:
    reply = await authorize(client, account)
    assert reply.status == 302, reply.text
    return URL(reply.headers["Location"]).query["code"]


async def token(client: Client, form: dict[str, str], account: str = "acme", secret: str | None = None) -> Reply:
    """A token request, form-encoded by aiohttp (every value URL-encoded), with the app's client credentials."""
    app = client.sandbox.account(account).oauth.app
    data = {"client_id": app.client_id, "client_secret": secret or app.client_secret} | form
    return await client.call("POST", f"{client.sandbox.oauth_url}/token/{account}", data=data)


async def connect(client: Client, account: str = "acme") -> dict[str, Any]:
    """The whole authorization: a code from the redirect, exchanged for tokens."""
    code = await code_of(client, account)
    reply = await token(client, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}, account)
    assert reply.status == 200, reply.text
    answer: dict[str, Any] = reply.body
    return answer


async def refresh(client: Client, refresh_token: str) -> Reply:
    return await token(client, {"grant_type": "refresh_token", "refresh_token": refresh_token})


def bearer(client: Client, access_token: str, account: str = "acme") -> dict[str, str]:
    app = client.sandbox.account(account).oauth.app
    return {
        "Authorization": f"Bearer {access_token}",
        "brightpearl-app-ref": app.client_id,
        "brightpearl-dev-ref": app.dev_ref,
    }


async def api(client: Client, access_token: str) -> Reply:
    return await client.bp("GET", ORDER_STATUS, headers=bearer(client, access_token))


async def oauth_state(client: Client) -> Any:
    return await client.ok("GET", "/oauth")


async def test_the_whole_flow_redirects_with_a_code_then_answers_tokens_as_recorded(client: Client) -> None:
    reply = await authorize(client)
    assert reply.status == 302
    location = URL(reply.headers["Location"])
    assert str(location).startswith("http://127.0.0.1:8080/oauth/callback?")
    assert location.query["from"] == "relay"
    assert location.query["state"] == "st+ate/1="
    code = location.query["code"]

    exchanged = await token(client, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT})
    assert exchanged.status == 200, exchanged.text
    assert exchanged.headers["Content-Type"] == "application/json;charset=UTF-8"
    answer = exchanged.body
    assert set(answer) == TOKEN_KEYS
    assert answer["token_type"] == "Bearer"
    assert answer["expires_in"] == 604800
    assert answer["api_domain"] == URL(client.sandbox.url).raw_authority  # the sandbox's own host:port
    installation = client.sandbox.account().oauth.installation_instance_id
    assert answer["installation_instance_id"] == installation
    assert answer["access_token"].endswith("=")
    assert "+" in answer["access_token"]

    called = await api(client, answer["access_token"])
    assert called.status == 200, called.text
    assert called.headers["Brightpearl-Installed-Integration-Instance-Id"] == installation
    counters = (await oauth_state(client))["counters"]
    assert counters["codes_issued"] == 1
    assert counters["tokens_issued"] == {"authorization_code": 1}
    assert counters["api_requests"] == 1


@pytest.mark.parametrize(
    ("account", "changes", "says"),
    [
        ("nobody", {}, "There is no Brightpearl account nobody"),
        ("acme", {"state": None}, "has no state"),
        ("acme", {"client_id": None, "redirect_uri": None}, "has no client_id, redirect_uri"),
        ("acme", {"response_type": "token"}, "response_type must be code"),
        ("acme", {"client_id": "someone_else"}, "Account acme has no app someone_else"),
        ("acme", {"redirect_uri": "/oauth/callback"}, "redirect_uri must be an absolute http or https URL"),
    ],
)
async def test_authorize_refuses_with_a_page_that_says_why(
    client: Client, account: str, changes: dict[str, str | None], says: str
) -> None:
    url = f"{client.sandbox.oauth_url}/authorize/{account}"
    query = authorize_query(client, **changes)
    reply = await client.call("GET", url, params=query)
    assert reply.status == 400
    assert reply.headers["Content-Type"].startswith("text/html")
    assert says in reply.text
    assert (await oauth_state(client))["counters"]["codes_issued"] == 0


async def test_the_token_endpoint_takes_forms_only(client: Client) -> None:
    app = client.sandbox.account().oauth.app
    code = await code_of(client)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "redirect_uri": REDIRECT,
    }
    as_json = await client.call("POST", f"{client.sandbox.oauth_url}/token/acme", json=form)
    assert as_json.status == 400
    assert as_json.body["error"] == "invalid_request"
    assert "application/x-www-form-urlencoded" in as_json.body["error_description"]
    # values not URL-encoded: the code's '+' reads as a space, so the code is not the one issued
    raw = "&".join(f"{name}={value}" for name, value in form.items())
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    unencoded = await client.call("POST", f"{client.sandbox.oauth_url}/token/acme", data=raw, headers=headers)
    assert unencoded.status == 400
    assert unencoded.body == INVALID_GRANT
    # neither attempt named the code as issued, so it is still there to exchange properly
    encoded = await token(client, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT})
    assert encoded.status == 200, encoded.text


def test_tokens_always_need_url_encoding() -> None:
    for _ in range(50):
        made = new_oauth_token()
        assert "+" in made
        assert "/" in made
        assert made.endswith("=")


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({}, "invalid_request"),
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"grant_type": "refresh_token"}, "invalid_request"),
        ({"grant_type": "authorization_code", "code": "x"}, "invalid_request"),
    ],
)
async def test_malformed_token_requests_are_invalid_requests(client: Client, form: dict[str, str], error: str) -> None:
    reply = await token(client, form)
    assert reply.status == 400
    assert reply.body["error"] == error
    assert (await oauth_state(client))["counters"]["token_errors"] == {error: 1}


async def test_a_code_is_single_use(client: Client) -> None:
    code = await code_of(client)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    assert (await token(client, form)).status == 200
    again = await token(client, form)
    assert again.status == 400
    assert (
        again.text
        == '{"error":"invalid_grant","error_description":"The auth token has either expired or does not exist"}'
    )
    assert again.headers["Content-Type"] == "application/json;charset=UTF-8"


async def test_a_code_is_bound_to_its_redirect_uri_and_short_lived(client: Client, monotonic: FakeMonotonic) -> None:
    code = await code_of(client)
    other = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT + "&x=1"}
    assert (await token(client, other)).body == INVALID_GRANT
    assert (await token(client, other | {"redirect_uri": REDIRECT})).body == INVALID_GRANT  # used up by the try

    await client.ok("PATCH", "/oauth", {"code_lifetime_s": 30})
    late = await code_of(client)
    monotonic.advance(30_000)
    expired = await token(client, {"grant_type": "authorization_code", "code": late, "redirect_uri": REDIRECT})
    assert expired.status == 400
    assert expired.body == INVALID_GRANT
    assert (await oauth_state(client))["counters"]["token_errors"] == {"invalid_grant": 3}


@pytest.mark.parametrize("wrong", ["client_id", "client_secret"])
async def test_wrong_client_credentials_are_invalid_client(client: Client, wrong: str) -> None:
    answer = await connect(client)
    reply = await token(client, {"grant_type": "refresh_token", "refresh_token": answer["refresh_token"], wrong: "no"})
    assert reply.status == 400
    assert reply.text == '{"error":"invalid_client"}'
    code = await code_of(client)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    assert (await token(client, form, secret="not-it")).body == {"error": "invalid_client"}
    assert (await token(client, form)).status == 200  # a refused client did not use the code up


async def test_refresh_tokens_rotate_by_default(client: Client) -> None:
    first = await connect(client)
    refreshed = await refresh(client, first["refresh_token"])
    assert refreshed.status == 200, refreshed.text
    answer = refreshed.body
    assert set(answer) == TOKEN_KEYS
    assert answer["refresh_token"] != first["refresh_token"]
    assert answer["access_token"] != first["access_token"]
    assert (await refresh(client, first["refresh_token"])).body == INVALID_GRANT
    assert (await refresh(client, answer["refresh_token"])).status == 200
    # the access token a refresh replaced stays good until it expires: other processes may still hold it
    assert (await api(client, first["access_token"])).status == 200
    assert (await api(client, answer["access_token"])).status == 200
    counters = (await oauth_state(client))["counters"]
    assert counters["refreshes"] == 2
    assert counters["tokens_issued"] == {"authorization_code": 1, "refresh_token": 2}


@pytest.mark.parametrize("rotation", ["same", "omitted"])
async def test_refresh_tokens_that_do_not_rotate(client: Client, rotation: str) -> None:
    assert (await client.ok("PATCH", "/oauth", {"refresh_rotation": rotation}))["refresh_rotation"] == rotation
    first = await connect(client)
    for _ in range(2):
        reply = await refresh(client, first["refresh_token"])
        assert reply.status == 200, reply.text
        if rotation == "same":
            assert reply.body["refresh_token"] == first["refresh_token"]
        else:
            assert set(reply.body) == TOKEN_KEYS - {"refresh_token"}
        assert (await api(client, reply.body["access_token"])).status == 200


async def test_access_tokens_expire_after_the_lifetime_set(client: Client, monotonic: FakeMonotonic) -> None:
    await client.ok("PATCH", "/oauth", {"access_token_lifetime_s": 5})
    answer = await connect(client)
    assert answer["expires_in"] == 5
    monotonic.advance(4_999)
    assert (await api(client, answer["access_token"])).status == 200
    monotonic.advance(1)
    expired = await api(client, answer["access_token"])
    assert expired.status == 401
    assert expired.text == '{"response":"Authorization token expired"}'
    assert expired.headers["Message-Type"] == "api-proxy"
    assert "Brightpearl-Requests-Remaining" in expired.headers
    assert "WWW-Authenticate" not in expired.headers
    assert "Brightpearl-Installed-Integration-Instance-Id" not in expired.headers

    renewed = (await refresh(client, answer["refresh_token"])).body
    assert (await api(client, renewed["access_token"])).status == 200
    assert (await api(client, answer["access_token"])).status == 401
    state = await oauth_state(client)
    assert state["counters"]["refreshes"] == 1
    assert state["counters"]["unauthorized"] == {"expired": 2}
    assert state["live"] == {"codes": 0, "access_tokens": 1, "refresh_tokens": 1}


async def test_the_control_api_expires_access_tokens_now(client: Client) -> None:
    answer = await connect(client)
    assert (await client.ok("POST", "/oauth/expire"))["expired"] == 1
    assert (await api(client, answer["access_token"])).body == {"response": "Authorization token expired"}
    assert (await refresh(client, answer["refresh_token"])).status == 200


async def test_an_unknown_token_is_an_invalid_instance_token(client: Client) -> None:
    await connect(client)
    reply = await api(client, "INVALID_STUFF")
    assert reply.status == 401
    assert reply.text == '{"response":"Invalid instance token: INVALID_STUFF"}'
    assert (await oauth_state(client))["counters"]["unauthorized"] == {"invalid": 1}


@pytest.mark.parametrize("header", ["brightpearl-app-ref", "brightpearl-dev-ref"])
async def test_a_bearer_token_needs_the_apps_refs(client: Client, header: str) -> None:
    answer = await connect(client)
    headers = bearer(client, answer["access_token"])
    for sent in ({header: "someone_else"}, {}):
        changed = {name: value for name, value in headers.items() if name != header} | sent
        reply = await client.bp("GET", ORDER_STATUS, headers=changed)
        assert reply.status == 401
        assert reply.body == {"response": "Not authenticated. You must provide a valid authentication token."}
    assert (await oauth_state(client))["counters"]["unauthorized"] == {"headers": 2}


async def test_revocation_ends_every_token_until_authorized_again(client: Client) -> None:
    answer = await connect(client)
    pending = await code_of(client)
    revoked = await client.ok("POST", "/oauth/revoke")
    assert revoked["revoked"] == {"codes": 1, "access_tokens": 1, "refresh_tokens": 1}
    assert (await refresh(client, answer["refresh_token"])).body == INVALID_GRANT
    called = await api(client, answer["access_token"])
    assert called.status == 401
    assert called.body == {"response": f"Invalid instance token: {answer['access_token']}"}
    form = {"grant_type": "authorization_code", "code": pending, "redirect_uri": REDIRECT}
    assert (await token(client, form)).body == INVALID_GRANT
    # private apps are not touched by an OAuth app's revocation
    assert (await client.bp("GET", ORDER_STATUS)).status == 200

    again = await connect(client)
    assert (await api(client, again["access_token"])).status == 200


async def test_oauth_apps_have_their_own_throttle(client: Client) -> None:
    answer = await connect(client)
    spent = await client.ok("POST", "/spend", {"requests": 200})
    assert spent["requests_remaining"] == 0
    private = await client.bp("GET", ORDER_STATUS)
    assert private.status == 503
    oauth = await api(client, answer["access_token"])
    assert oauth.status == 200
    assert oauth.headers["Brightpearl-Requests-Remaining"] == "199"

    client.sandbox.account().throttle.reset()
    drained = await client.ok("POST", "/spend", {"requests": 199, "pool": "oauth"})
    assert drained["in_window"] == 200
    throttled = await api(client, answer["access_token"])
    assert throttled.status == 503
    assert "too many requests" in throttled.body["response"]
    private = await client.bp("GET", ORDER_STATUS)
    assert private.status == 200
    assert private.headers["Brightpearl-Requests-Remaining"] == "199"
    assert (await oauth_state(client))["in_window"] == 200


async def test_private_apps_answer_as_before(client: Client) -> None:
    await connect(client)
    reply = await client.bp("GET", ORDER_STATUS)
    assert reply.status == 200
    assert "Brightpearl-Installed-Integration-Instance-Id" not in reply.headers
    assert reply.headers["Brightpearl-Requests-Remaining"] == "199"
    wrong = await client.bp(
        "GET", ORDER_STATUS, headers={"brightpearl-app-ref": "acme_relay", "brightpearl-account-token": "x"}
    )
    assert wrong.body == {"response": "Invalid instance token: x"}
    assert (await oauth_state(client))["counters"]["unauthorized"] == {}


async def test_an_account_made_with_its_own_oauth_app(client: Client) -> None:
    app = {"client_id": "shop_connect", "client_secret": "s3cret", "dev_ref": "devco"}
    made = await client.control("POST", "/accounts", {"code": "shop", "oauth": app})
    assert made.status == 201, made.text
    assert made.body["oauth"] == app | {"oauth_url": client.sandbox.oauth_url}
    assert (await client.ok("GET", "/oauth", account="shop"))["app"] == app
    answer = await connect(client, "shop")
    headers = bearer(client, answer["access_token"], "shop")
    assert headers["brightpearl-dev-ref"] == "devco"
    assert (await client.bp("GET", ORDER_STATUS, account="shop", headers=headers)).status == 200
    # one account's token is not another's
    elsewhere = await client.bp("GET", ORDER_STATUS, headers=bearer(client, answer["access_token"]))
    assert elsewhere.body == {"response": f"Invalid instance token: {answer['access_token']}"}
    refused = await client.control("POST", "/accounts", {"code": "bad", "oauth": {"client_id": ""}})
    assert refused.status == 400


async def test_the_control_api_mints_tokens_and_resets_counters(client: Client) -> None:
    minted = await client.ok("POST", "/oauth/tokens", status=201)
    assert set(minted) == TOKEN_KEYS
    assert (await api(client, minted["access_token"])).status == 200
    assert (await refresh(client, minted["refresh_token"])).status == 200
    state = await oauth_state(client)
    assert state["counters"]["tokens_issued"] == {"minted": 1, "refresh_token": 1}
    reset = await client.ok("DELETE", "/oauth/counters")
    assert reset["counters"] == {
        "codes_issued": 0,
        "tokens_issued": {},
        "refreshes": 0,
        "token_errors": {},
        "unauthorized": {},
        "api_requests": 0,
    }


@pytest.mark.parametrize(
    "body",
    [{}, {"access_token_lifetime_s": 0}, {"refresh_rotation": "sometimes"}, {"code_lifetime_s": "5"}, {"x": 1}],
)
async def test_oauth_settings_refuse_what_cannot_be(client: Client, body: dict[str, Any]) -> None:
    reply = await client.control("PATCH", "/accounts/acme/oauth", body)
    assert reply.status == 400, reply.text
    assert "error" in reply.body


async def test_the_oauth_control_api_of_an_unknown_account_is_404(client: Client) -> None:
    assert (await client.control("GET", "/accounts/nobody/oauth")).status == 404
    unknown = await client.call("POST", f"{client.sandbox.oauth_url}/token/nobody", data={"grant_type": "x"})
    assert unknown.status == 400
    assert unknown.body["error"] == "invalid_request"
