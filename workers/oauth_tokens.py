"""An OAuth account's access token, kept valid: refreshed before it expires and after Brightpearl says it has,
exactly once across every process.

Every process that finds the token due (or just refused) asks for the account's refresh lock in Redis. The one
that gets it reads the tokens again (another may have refreshed them meanwhile: then it refreshes nothing),
refreshes, and stores the new access and refresh tokens in one write that also releases the lock. The others poll
the stored tokens until the token they judged stale is replaced, for a bounded time: they never call the token
endpoint while the lock is held. A refresh refused with ``invalid_grant`` marks the account
``reauthorization_required`` (with Brightpearl's reason) in the same step that releases the lock, and from then on
:meth:`OAuthTokens.current` raises :class:`ReauthorizationRequired` without calling Brightpearl, until the connect
flow stores new tokens (:meth:`OAuthTokens.connected`).

When to refresh is the pure :func:`needs_refresh`: within a margin of the expiry, the smaller of 60 s and a tenth
of the token's life (a 7-day token refreshes a minute early, a 5-second one half a second early).
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from subscriptions.store.oauth_tokens import (
    AUTHORIZATION_REQUIRED,
    AUTHORIZED,
    REAUTHORIZATION_REQUIRED,
    OAuthTokenRecord,
    OAuthTokenStore,
)
from workers.brightpearl.errors import AuthenticationFailed, ReauthorizationRequired, Unavailable
from workers.brightpearl.oauth import TokenEndpoint, TokenSet

log = logging.getLogger(__name__)

MAX_MARGIN_S = 60.0
MARGIN_SHARE = 0.1
WAIT_POLL_S = 0.05  # how often a process waiting for another's refresh looks at the stored tokens


def refresh_margin_s(life_s: float) -> float:
    """How long before its expiry a token of ``life_s`` seconds is refreshed."""
    return max(0.0, min(MAX_MARGIN_S, MARGIN_SHARE * life_s))


def needs_refresh(expires_at: datetime, issued_at: datetime, now: datetime) -> bool:
    """Whether a token issued at ``issued_at`` and expiring at ``expires_at`` should be refreshed at ``now``."""
    life_s = (expires_at - issued_at).total_seconds()
    return now >= expires_at - timedelta(seconds=refresh_margin_s(life_s))


def record_of(tokens: TokenSet) -> OAuthTokenRecord:
    return OAuthTokenRecord(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_at=tokens.expires_at,
        issued_at=tokens.issued_at,
        api_domain=tokens.api_domain,
        installation_instance_id=tokens.installation_instance_id,
    )


class OAuthTokens:
    """The OAuth tokens of every account, over one store and one token endpoint."""

    def __init__(
        self,
        store: OAuthTokenStore,
        endpoint: TokenEndpoint,
        *,
        clock: Callable[[], datetime],
        wait_s: float | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_reauthorization_required: Callable[[str], None] = lambda code: None,
    ) -> None:
        self.on_reauthorization_required = on_reauthorization_required  # told each account that becomes so
        self.store = store
        self.endpoint = endpoint
        self.clock = clock
        self.sleep = sleep
        bound_s = endpoint.bound_s() + 5.0  # a refresh with every retry, and some room
        self.lock_ttl_ms = int(bound_s * 1000)  # a crashed refresher's lock ends on its own
        self.wait_s = wait_s if wait_s is not None else bound_s
        self.refreshes = 0  # refreshes this process made (tests, metrics)

    def of(self, code: str) -> "AccountTokens":
        """The tokens of one account, as a Brightpearl client asks for them."""
        return AccountTokens(self, code)

    async def connected(self, code: str, tokens: TokenSet, *, baseline_pending: bool = False) -> None:
        """Store the tokens of a new authorization (the connect flow, or tokens an integrator brings): the account
        is authorized again and polling may resume; with ``baseline_pending`` (a first connection) it stays
        ``authorization_required``, its tokens usable to take the baseline, until :meth:`activate`."""
        state = AUTHORIZATION_REQUIRED if baseline_pending else AUTHORIZED
        await self.store.save(code, record_of(tokens), state=state)

    async def activate(self, code: str) -> None:
        """The account's baseline is stored: it may be polled."""
        await self.store.activate(code)

    async def current(self, code: str) -> str:
        """A valid access token of the account, refreshed first if it is due."""
        tokens = await self._read(code)
        if not needs_refresh(tokens.expires_at, tokens.issued_at, self.clock()):
            return tokens.access_token
        return (await self._refresh(code, tokens.access_token)).access_token

    async def after_unauthorized(self, code: str, token_used: str) -> str:
        """An access token to try again with after Brightpearl refused ``token_used`` with a 401 ("Authorization
        token expired", or "Invalid instance token" as a revoked install answers): the one another process stored
        meanwhile, or a refreshed one."""
        tokens = await self._read(code)
        if tokens.access_token != token_used:
            return tokens.access_token
        return (await self._refresh(code, token_used)).access_token

    async def _read(self, code: str) -> OAuthTokenRecord:
        tokens, auth = await self.store.read(code)
        if auth.state == REAUTHORIZATION_REQUIRED:
            raise ReauthorizationRequired("POST", self._url(code), None, auth.reason or "invalid_grant")
        if tokens is None:
            raise AuthenticationFailed(
                "POST", self._url(code), None, ["no OAuth tokens stored: the account must be authorized first"]
            )
        return tokens

    async def _refresh(self, code: str, stale: str) -> OAuthTokenRecord:
        """The account's tokens once ``stale`` is replaced: by this process if it gets the lock, else by the
        process that holds it (waited for, at most :attr:`wait_s`)."""
        deadline = time.monotonic() + self.wait_s
        while True:
            lock = await self.store.lock(code, self.lock_ttl_ms)
            if lock is not None:
                return await self._refresh_locked(code, stale, lock)
            await self.sleep(WAIT_POLL_S)
            tokens = await self._read(code)
            if tokens.access_token != stale:
                return tokens
            if time.monotonic() >= deadline:
                raise Unavailable(
                    "POST",
                    self._url(code),
                    None,
                    [f"another process has been refreshing the tokens for over {self.wait_s:.0f} s"],
                    kind="timeout",
                )

    async def _refresh_locked(self, code: str, stale: str, lock: str) -> OAuthTokenRecord:
        try:
            tokens = await self._read(code)
        except BaseException:
            await self.store.release(code, lock)
            raise
        if tokens.access_token != stale:  # refreshed by another process between our read and our lock
            await self.store.release(code, lock)
            return tokens
        try:
            fresh = record_of(await self.endpoint.refresh(code, tokens.refresh_token))
        except ReauthorizationRequired as error:
            log.warning("account %r needs a new authorization: %s", code, error.reason)
            await self.store.require_reauthorization(code, error.reason, lock=lock)
            self.on_reauthorization_required(code)
            raise
        except BaseException:
            await self.store.release(code, lock)
            raise
        await self.store.save(code, fresh, lock=lock)
        self.refreshes += 1
        log.info("refreshed the OAuth tokens of account %r; they expire at %s", code, fresh.expires_at.isoformat())
        return fresh

    def _url(self, code: str) -> str:
        return self.endpoint.app.token_url(code)


@dataclass(frozen=True)
class AccountTokens:
    """One account's access token, as :class:`~workers.brightpearl.client.BrightpearlClient` asks for it."""

    tokens: OAuthTokens
    code: str

    async def current(self) -> str:
        return await self.tokens.current(self.code)

    async def after_unauthorized(self, token_used: str) -> str:
        return await self.tokens.after_unauthorized(self.code, token_used)
