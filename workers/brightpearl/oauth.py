"""Brightpearl's OAuth token endpoint (API.md 2.1): exchanging an authorization code and refreshing, and what
its answers mean.

Both grants ``POST {oauth_url}/token/{account}`` a form whose every value is URL-encoded (Brightpearl warns
that anything else fails intermittently; its tokens are base64 with ``+``, ``/`` and ``=``). The answer is read by
the pure :func:`read_token_answer`: a :class:`TokenSet`, or ``invalid_grant`` (:class:`ReauthorizationRequired`),
``invalid_client`` (:class:`OAuthClientRejected`, the relay's settings are wrong), or anything else
(:class:`Unavailable`, transient: the endpoint retries it a bounded number of times with backoff).

Tokens and the client secret never reach an exception's text, a log line or a ``repr``: the dataclasses hide
them from ``repr`` and the errors carry only the endpoint's URL (which holds the account code, no secret) and
what Brightpearl said about the grant.
"""

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp

from workers.brightpearl.answers import html_title, looks_like_html
from workers.brightpearl.errors import OAuthClientRejected, ReauthorizationRequired, RequestRejected, Unavailable
from workers.brightpearl.proxies import environment_proxies

log = logging.getLogger(__name__)

FORM = "application/x-www-form-urlencoded"
RETRY_DELAYS_S = (0.5, 2.0)  # a transient failure is tried again after these waits, then raised
DEFAULT_EXPIRES_IN_S = 3600  # an answer without expires_in: assume an hour (refreshing early costs little)
MAX_DESCRIPTION_CHARS = 200
# Brightpearl's 401s for an expired and for an unknown (or revoked) access token (API.md 2, recorded)
REFUSED_PHRASES = ("authorization token expired", "invalid instance token")


@dataclass(frozen=True)
class OAuthApp:
    """The relay's OAuth instance app: where Brightpearl's OAuth server is and who the relay is to it."""

    oauth_url: str  # RELAY_BRIGHTPEARL_OAUTH_URL, no trailing slash
    client_id: str  # RELAY_BRIGHTPEARL_APP_REF
    client_secret: str = field(repr=False)  # RELAY_BRIGHTPEARL_CLIENT_SECRET
    dev_ref: str = ""  # RELAY_BRIGHTPEARL_DEV_REF, sent on API calls (not to the token endpoint)

    def token_url(self, account: str) -> str:
        return f"{self.oauth_url.rstrip('/')}/token/{quote(account, safe='')}"

    def authorize_url(self, account: str, redirect_uri: str, state: str) -> str:
        """Where an account's admin is sent to install the app (API.md 2.1 step 1); Brightpearl sends the browser
        back to ``redirect_uri`` with ``code`` and ``state``."""
        query = form_body(
            {"response_type": "code", "client_id": self.client_id, "redirect_uri": redirect_uri, "state": state}
        )
        return f"{self.oauth_url.rstrip('/')}/authorize/{quote(account, safe='')}?{query}"


@dataclass(frozen=True)
class TokenSet:
    """An account's tokens as the last token answer gave them."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime
    issued_at: datetime  # when the answer came: with expires_at, the token's life (the refresh margin is a share)
    api_domain: str = ""
    installation_instance_id: str = ""

    def life_s(self) -> float:
        return max(0.0, (self.expires_at - self.issued_at).total_seconds())


def form_body(fields: Mapping[str, str]) -> str:
    """``fields`` as a form body, every name and value URL-encoded (``+``, ``/``, ``=`` and spaces too)."""
    return urlencode(dict(fields), quote_via=quote, safe="")


def code_grant(app: OAuthApp, code: str, redirect_uri: str) -> dict[str, str]:
    """The form of ``grant_type=authorization_code`` (API.md 2.1 step 2)."""
    return {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "redirect_uri": redirect_uri,
    }


def refresh_grant(app: OAuthApp, refresh_token: str) -> dict[str, str]:
    """The form of ``grant_type=refresh_token`` (API.md 2.1 step 4)."""
    return {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": app.client_id,
        "client_secret": app.client_secret,
    }


def read_token_answer(
    url: str, status: int, content_type: str, text: str, *, now: datetime, previous_refresh_token: str = ""
) -> TokenSet:
    """What one answer of the token endpoint means: the tokens, or the error it is.

    A refresh answer without a ``refresh_token`` keeps ``previous_refresh_token``: whether Brightpearl rotates
    refresh tokens is UNCONFIRMED (API.md 2.1), so whatever comes back is stored and nothing is assumed."""
    if looks_like_html(content_type, text):
        raise Unavailable("POST", url, status, [f"an HTML page, not JSON: {html_title(text)!r}"], kind="html")
    try:
        body: Any = json.loads(text) if text.strip() else None
    except ValueError:
        body = None
    if status in {400, 401}:
        error = body.get("error") if isinstance(body, dict) else None
        if error == "invalid_grant":
            raise ReauthorizationRequired("POST", url, status, _description(body) or "invalid_grant")
        if error == "invalid_client":
            raise OAuthClientRejected("POST", url, status)
    if status != 200:
        error_name = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), str) else ""
        detail = ": ".join(part for part in (error_name, _description(body)) if part) or "no usable answer"
        if 400 <= status < 500 and status not in (408, 429):  # a refusal of the request itself: not retried
            raise RequestRejected("POST", url, status, [f"token endpoint: {detail}"])
        raise Unavailable("POST", url, status, [f"token endpoint: {detail}"])
    if not isinstance(body, dict):
        raise Unavailable("POST", url, status, ["token answer is not a JSON object"], kind="malformed")
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        raise Unavailable("POST", url, status, ["token answer has no access_token"], kind="malformed")
    refresh = body.get("refresh_token")
    refresh_token = refresh if isinstance(refresh, str) and refresh else previous_refresh_token
    if not refresh_token:
        raise Unavailable("POST", url, status, ["token answer has no refresh_token"], kind="malformed")
    expires_in = body.get("expires_in")
    try:
        expires_in_s = float(expires_in) if expires_in is not None else DEFAULT_EXPIRES_IN_S
    except (TypeError, ValueError):
        expires_in_s = DEFAULT_EXPIRES_IN_S
    instance = body.get("installation_instance_id")
    return TokenSet(
        access_token=access,
        refresh_token=refresh_token,
        expires_at=now + timedelta(seconds=max(0.0, expires_in_s)),
        issued_at=now,
        api_domain=str(body.get("api_domain") or ""),
        installation_instance_id=str(instance) if instance is not None else "",
    )


def is_token_refused(status: int, messages: list[str]) -> bool:
    """Whether an API answer refuses an OAuth access token in a way a refresh may cure: Brightpearl's 401
    "Authorization token expired", or "Invalid instance token" (API.md 2), which is also what a revoked install
    answers: refreshing then meets ``invalid_grant`` at once, and the account shows it needs a new authorization
    instead of failing every call until the token would have expired (7 days)."""
    return status == 401 and any(phrase in message.lower() for message in messages for phrase in REFUSED_PHRASES)


def _description(body: Any) -> str:
    """``error_description`` of an OAuth error answer, short and single-line (never a token: Brightpearl's are
    fixed sentences)."""
    value = body.get("error_description") if isinstance(body, dict) else None
    return " ".join(str(value).split())[:MAX_DESCRIPTION_CHARS] if value else ""


class TokenEndpoint:
    """The token endpoint of one OAuth app over a shared ``aiohttp.ClientSession``."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        app: OAuthApp,
        *,
        timeout_s: float = 15.0,
        retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S,
        clock: Callable[[], datetime],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.session = session
        self.app = app
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.retry_delays_s = retry_delays_s
        self.clock = clock
        self.sleep = sleep
        self.calls = 0  # POSTs made (tests and metrics)

    def bound_s(self) -> float:
        """The longest one grant can take, retries included: how long a refresh lock must live."""
        return (len(self.retry_delays_s) + 1) * (self.timeout.total or 0.0) + sum(self.retry_delays_s)

    async def exchange_code(self, account: str, code: str, redirect_uri: str) -> TokenSet:
        """Tokens for the authorization ``code`` Brightpearl sent back to ``redirect_uri`` (the same URI as at
        authorize)."""
        return await self._grant(account, code_grant(self.app, code, redirect_uri), "")

    async def refresh(self, account: str, refresh_token: str) -> TokenSet:
        """New tokens for ``refresh_token``; the answer's refresh token if it has one, else the same one."""
        return await self._grant(account, refresh_grant(self.app, refresh_token), refresh_token)

    async def _grant(self, account: str, fields: Mapping[str, str], previous_refresh_token: str) -> TokenSet:
        url = self.app.token_url(account)
        for attempt, delay_s in enumerate((*self.retry_delays_s, None)):
            try:
                return await self._post(url, fields, previous_refresh_token)
            except Unavailable as error:
                if delay_s is None:
                    raise
                log.warning(
                    "token endpoint for account %r failed (%s, try %d of %d); trying again in %.1f s",
                    account,
                    error.kind,
                    attempt + 1,
                    len(self.retry_delays_s) + 1,
                    delay_s,
                )
                await self.sleep(delay_s)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def _post(self, url: str, fields: Mapping[str, str], previous_refresh_token: str) -> TokenSet:
        self.calls += 1
        try:
            async with self.session.post(
                url,
                data=form_body(fields).encode(),
                headers={"content-type": FORM, "accept": "application/json"},
                timeout=self.timeout,
                allow_redirects=False,
                proxy=environment_proxies().for_url(url),
            ) as response:
                text = await response.text()
                status = response.status
                content_type = response.headers.get("Content-Type", "")
        except TimeoutError as error:
            raise Unavailable(
                "POST", url, None, [f"no answer within {self.timeout.total} s"], kind="timeout"
            ) from error
        except aiohttp.ClientError as error:
            raise Unavailable("POST", url, None, [type(error).__name__], kind="network") from error
        return read_token_answer(
            url, status, content_type, text, now=self.clock(), previous_refresh_token=previous_refresh_token
        )
