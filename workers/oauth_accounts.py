"""How an OAuth account's Brightpearl calls are authorized: the relay's OAuth app (from its settings) and the
token manager, shared by every client a process makes (poller, registration, hint subscriber).

A private app's account carries its token in its record; an OAuth account's record carries none: its tokens live
apart (``subscriptions.store.oauth_tokens``), refreshed once for every process by :class:`OAuthTokens`. When the
relay has no OAuth app configured, an OAuth account's calls fail as unauthorized, naming the settings to set.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp
from redis.asyncio import Redis

from subscriptions.core.crypto import TokenCipher
from subscriptions.core.models import AccountRecord
from subscriptions.store.oauth_tokens import OAuthTokenStore
from workers.brightpearl.client import Credentials
from workers.brightpearl.errors import AuthenticationFailed
from workers.brightpearl.oauth import OAuthApp, TokenEndpoint
from workers.budget import requests_per_minute
from workers.oauth_tokens import OAuthTokens

OAUTH_SETTINGS = ("RELAY_BRIGHTPEARL_APP_REF", "RELAY_BRIGHTPEARL_CLIENT_SECRET", "RELAY_BRIGHTPEARL_DEV_REF")
NOT_CONFIGURED = f"OAuth accounts need {', '.join(OAUTH_SETTINGS)} set"


@dataclass(frozen=True)
class OAuthAccess:
    """The relay's OAuth app and the token manager of one process."""

    app_ref: str
    dev_ref: str
    tokens: OAuthTokens
    budget_per_minute: int  # RELAY_OAUTH_BUDGET_SHARE of the account's own 200 a minute

    @property
    def endpoint(self) -> TokenEndpoint:
        """The token endpoint (the connect flow exchanges its codes there)."""
        return self.tokens.endpoint


@dataclass(frozen=True)
class OAuthConfig:
    """The OAuth app as the settings give it (``RELAY_BRIGHTPEARL_OAUTH_URL``, ``_APP_REF``, ``_CLIENT_SECRET``,
    ``_DEV_REF``, ``RELAY_OAUTH_BUDGET_SHARE``); empty values are not set."""

    oauth_url: str = "https://oauth.brightpearl.com"
    app_ref: str = ""
    client_secret: str = field(default="", repr=False)
    dev_ref: str = ""
    budget_share: float = 0.9

    def missing(self) -> list[str]:
        """The settings an OAuth account needs that are not set."""
        values = (self.app_ref, self.client_secret, self.dev_ref)
        return [name for name, value in zip(OAUTH_SETTINGS, values, strict=True) if not value]

    def access(
        self,
        redis: "Redis",
        session: aiohttp.ClientSession,
        cipher: TokenCipher | None,
        clock: Callable[[], datetime],
        on_reauthorization_required: Callable[[str], None] = lambda code: None,
    ) -> OAuthAccess | None:
        """The process's OAuth access, or ``None`` when any of the app's three settings is not set;
        ``on_reauthorization_required`` is told each account whose refresh Brightpearl refuses (a metric)."""
        if self.missing():
            return None
        app = OAuthApp(self.oauth_url, self.app_ref, self.client_secret, self.dev_ref)
        endpoint = TokenEndpoint(session, app, clock=clock)
        tokens = OAuthTokens(
            OAuthTokenStore(redis, cipher),
            endpoint,
            clock=clock,
            on_reauthorization_required=on_reauthorization_required,
        )
        return OAuthAccess(self.app_ref, self.dev_ref, tokens, requests_per_minute(self.budget_share))


class _NotConfigured:
    """The access tokens of an OAuth account in a process without an OAuth app: every call is refused."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def current(self) -> str:
        raise AuthenticationFailed("GET", self.url, None, [NOT_CONFIGURED])

    async def after_unauthorized(self, token_used: str) -> str:
        return await self.current()


def credentials_of(account: AccountRecord, oauth: OAuthAccess | None) -> Credentials:
    """The credentials a client uses for ``account``: its own token, or the OAuth app's through the token manager."""
    if account.auth != "oauth":
        return Credentials(account.base_url, account.app_ref, account.token, account.auth)
    if oauth is None:
        return Credentials(account.base_url, account.app_ref, "", "oauth", "", _NotConfigured(account.base_url))
    return Credentials(account.base_url, oauth.app_ref, "", "oauth", oauth.dev_ref, oauth.tokens.of(account.code))


def budget_per_minute(account: AccountRecord, private: int, oauth: OAuthAccess | None) -> int:
    """The relay's requests a minute for ``account``: an OAuth app has its own pool of 200, a private app shares one."""
    return oauth.budget_per_minute if account.auth == "oauth" and oauth is not None else private
