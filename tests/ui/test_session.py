"""The dashboard's login cookie: ``Secure`` whenever the browser used https, behind a proxy that ended TLS too."""

import pytest

from tests.ui.world import TOKEN, Relay


@pytest.mark.parametrize(
    ("forwarded", "secure"),
    [
        ({}, False),
        ({"X-Forwarded-Proto": "http"}, False),
        ({"X-Forwarded-Proto": "https"}, True),
        ({"X-Forwarded-Proto": "HTTPS, http"}, True),  # the proxy nearest the browser comes first
        ({"Forwarded": "for=192.0.2.1;proto=https"}, True),
        ({"Forwarded": "for=192.0.2.1;proto=http"}, False),
    ],
)
async def test_the_login_cookie_is_secure_whenever_the_browser_used_https(
    relay: Relay, forwarded: dict[str, str], secure: bool
) -> None:
    async with relay.http.post(
        f"{relay.url}/ui/login",
        data={"token": TOKEN, "next": "/ui"},
        headers={"Origin": relay.url, **forwarded},
        allow_redirects=False,
    ) as response:
        assert response.status == 303
        cookie = response.cookies["relay_ui_token"]
    assert bool(cookie["secure"]) is secure
    assert cookie["httponly"]
    assert cookie["samesite"] == "Strict"
