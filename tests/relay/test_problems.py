"""One error base, mapped to HTTP problems in one place: every error the relay raises on purpose is a
``RelayError``, and ``relay.api.problems`` gives each its status, title and detail."""

import pytest
from aiohttp.test_utils import make_mocked_request

from relay.api.problems import BRIGHTPEARL_ACCOUNT, Forbidden, Unauthenticated, brightpearl_detail, relay_problem
from relay.service import StartupError
from subscriptions.core.crypto import InvalidKey, TokenKeyError
from subscriptions.core.errors import Conflict, InvalidInput, LostLease, NotFound, RelayError, TooMany
from workers.brightpearl.errors import AuthenticationFailed, BrightpearlError, RequestRejected, Unavailable
from workers.guard import TargetRefused

URL = "https://euw1.brightpearlconnect.com/public-api/acme/account-service/account-search"


@pytest.mark.parametrize(
    "kind",
    [
        NotFound,
        Conflict,
        InvalidInput,
        TooMany,
        LostLease,
        InvalidKey,
        TokenKeyError,
        BrightpearlError,
        TargetRefused,
        StartupError,
        Unauthenticated,
        Forbidden,
    ],
)
def test_every_error_the_relay_raises_on_purpose_is_a_relay_error(kind: type[Exception]) -> None:
    assert issubclass(kind, RelayError)


def test_a_refused_target_is_still_a_failed_connection() -> None:
    refused = TargetRefused("refused: 127.0.0.1 is a loopback address")
    assert isinstance(refused, OSError)  # aiohttp's connector wraps it as a ClientConnectorError
    assert str(refused) == "refused: 127.0.0.1 is a loopback address"


@pytest.mark.parametrize(
    ("error", "account", "detail"),
    [
        (
            AuthenticationFailed("GET", URL, 401, ["Not authorised"]),
            "acme",
            "Brightpearl rejected the credentials for 'acme' (HTTP 401: Not authorised); check app_ref and the token",
        ),
        (
            RequestRejected("GET", URL, 404, ["no such service", "see the docs"]),
            "acme",
            f"Brightpearl refused a request to {URL} (HTTP 404: no such service; see the docs); check base_url or "
            "datacenter and the code",
        ),
        (
            Unavailable("GET", URL, None, ["no answer within 30.0 s"]),
            "acme",
            f"could not reach Brightpearl for 'acme': Brightpearl GET {URL}: no answer: no answer within 30.0 s",
        ),
        (
            Unavailable("GET", URL, 503, []),
            None,
            f"could not reach Brightpearl: Brightpearl GET {URL}: HTTP 503: no message",
        ),
    ],
)
def test_brightpearl_refusals_say_what_to_check(error: BrightpearlError, account: str | None, detail: str) -> None:
    assert brightpearl_detail(error, account) == detail


@pytest.mark.parametrize(
    ("error", "status", "title", "headers"),
    [
        (Unauthenticated("no token"), 401, "Unauthorized", {"WWW-Authenticate": "Bearer"}),
        (Forbidden("admin only"), 403, "Forbidden", {}),
        (NotFound("subscription 'sub_x' does not exist"), 404, "Not found", {}),
        (Conflict("already registered"), 409, "Conflict", {}),
        (InvalidInput("bad url"), 422, "Unprocessable", {}),
        (TooMany("too many pings", retry_after_s=7), 429, "Too many requests", {"Retry-After": "7"}),
        (TooMany("too many subscriptions"), 429, "Too many requests", {}),
        (AuthenticationFailed("GET", URL, 401, ["no"]), 422, "Unprocessable", {}),
        (Unavailable("GET", URL, None, ["timeout"]), 422, "Unprocessable", {}),
        (TokenKeyError("cannot decrypt"), 503, "Misconfigured", {}),
        (LostLease("taken over"), 422, "Unprocessable", {}),  # any other RelayError
    ],
)
def test_each_error_has_one_problem(error: RelayError, status: int, title: str, headers: dict[str, str]) -> None:
    request = make_mocked_request("POST", "/v1/accounts")
    request[BRIGHTPEARL_ACCOUNT] = "acme"
    response = relay_problem(error, request)
    assert response.status == status
    assert response.content_type == "application/problem+json"
    assert response.text is not None
    assert f'"title":"{title}"' in response.text
    for name, value in headers.items():
        assert response.headers[name] == value
