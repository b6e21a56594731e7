"""An OAuth account's tokens in Redis, sealed with ``RELAY_ENCRYPTION_KEY`` like the private apps' tokens, and the
lock that lets one process at a time refresh them.

The access token, the refresh token and their expiry are one record written by one command (``oauth_save.lua``):
a rotated refresh token is never stored apart from the access token it came with. The account's ``auth_state``
and ``auth_reason`` live in its status hash (``keyspace.account_status``), where the API and dashboard read the
rest of its status. Removing an account removes its tokens (``AccountStore.delete_account``).
"""

import secrets
from collections.abc import Awaitable
from datetime import datetime
from typing import cast

from pydantic import BaseModel, Field

from subscriptions.core.crypto import seal, unseal
from subscriptions.store import keyspace
from subscriptions.store.lua import Script
from subscriptions.store.sealed import RecordStore, Sealed

AUTHORIZED = "active"
AUTHORIZATION_REQUIRED = "authorization_required"  # registered, never connected: no baseline yet, nothing polled
REAUTHORIZATION_REQUIRED = "reauthorization_required"  # Brightpearl refused its refresh: polling paused, cursors kept
WAITING = frozenset({AUTHORIZATION_REQUIRED, REAUTHORIZATION_REQUIRED})  # states in which nothing is polled

_SAVE = Script.beside(__file__, "oauth_save.lua")
_FAIL = Script.beside(__file__, "oauth_fail.lua")
_RELEASE = Script.beside(__file__, "oauth_release.lua")


class OAuthTokenRecord(BaseModel):
    """An account's tokens as the rest of the relay sees them (plain); stored with both tokens sealed."""

    access_token: str = Field(repr=False)  # tokens never in a repr (logs, tracebacks)
    refresh_token: str = Field(repr=False)
    expires_at: datetime
    issued_at: datetime
    api_domain: str = ""
    installation_instance_id: str = ""


class OAuthAuthState(BaseModel):
    """What the status hash says of the account's authorization: ``None`` when nothing was recorded."""

    state: str | None = None
    reason: str | None = None


class OAuthTokenStore(RecordStore):
    """OAuth tokens of accounts, and their refresh locks."""

    async def read(self, code: str) -> tuple[OAuthTokenRecord | None, OAuthAuthState]:
        """The account's tokens (decrypted; ``None`` when none are stored) and its authorization state, in one round
        trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(keyspace.oauth_tokens(code))
            pipe.hmget(keyspace.account_status(code), ["auth_state", "auth_reason"])
            text, (state, reason) = await pipe.execute()
        auth = OAuthAuthState(state=state, reason=reason)
        if text is None:
            return None, auth
        return self._open(OAuthTokenRecord.model_validate_json(text), code), auth

    def _open(self, stored: OAuthTokenRecord, code: str = "") -> OAuthTokenRecord:
        """Stored tokens as the relay uses them: decrypted; :class:`TokenKeyError` when the keys cannot."""
        what = f"the OAuth tokens of account {code!r}" if code else "the OAuth tokens of an account"
        return stored.model_copy(
            update={
                "access_token": unseal(stored.access_token, self.cipher, what),
                "refresh_token": unseal(stored.refresh_token, self.cipher, what),
            }
        )

    def _json(self, tokens: OAuthTokenRecord) -> str:
        """The stored JSON of an account's tokens: both encrypted under the first key, when there is a key."""
        sealed = tokens.model_copy(
            update={
                "access_token": seal(tokens.access_token, self.cipher),
                "refresh_token": seal(tokens.refresh_token, self.cipher),
            }
        )
        return sealed.model_dump_json()

    async def reseal_tokens(self) -> tuple[int, list[str]]:
        """Encrypt every account's OAuth tokens not yet under the first key again (key rotation, or a key set after
        they were stored); how many accounts were, and the codes of those whose tokens the keys cannot decrypt. The
        authorization state is left as it is; a refresh meanwhile wins (the record is watched)."""
        kind = Sealed(
            keyspace.ACCOUNTS,
            keyspace.oauth_tokens,
            OAuthTokenRecord,
            lambda t: [t.access_token, t.refresh_token],
            self._open,
            self._json,
        )
        return await self._reseal(kind)

    async def save(self, code: str, tokens: OAuthTokenRecord, *, lock: str = "", state: str = AUTHORIZED) -> None:
        """Store ``tokens`` in one write with the account's ``state``, and release the refresh lock ``lock`` if it is
        still held under that token (a refresh; the connect flow passes none). A refresh leaves an account that is
        being connected (``authorization_required``, its baseline not taken yet) as it is."""
        keys = [keyspace.oauth_tokens(code), keyspace.account_status(code), keyspace.oauth_refresh_lock(code)]
        args = {"lock": lock, "state": state, "connecting": AUTHORIZATION_REQUIRED}
        await _SAVE.run(self.redis, keys, args, [self._json(tokens)])

    async def activate(self, code: str) -> None:
        """Mark a connected account authorized (its baseline is stored: it may be polled)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keyspace.account_status(code), "auth_state", AUTHORIZED)
            pipe.hdel(keyspace.account_status(code), "auth_reason")
            await pipe.execute()

    async def await_authorization(self, code: str) -> None:
        """Mark a registered account as waiting for its first authorization."""
        await cast(Awaitable[int], self.redis.hset(keyspace.account_status(code), "auth_state", AUTHORIZATION_REQUIRED))

    async def require_reauthorization(self, code: str, reason: str, *, lock: str = "") -> None:
        """Mark the account as needing a new authorization, saying why, and release the refresh lock ``lock``."""
        keys = [keyspace.account_status(code), keyspace.oauth_refresh_lock(code)]
        await _FAIL.run(self.redis, keys, {"lock": lock, "state": REAUTHORIZATION_REQUIRED, "reason": reason})

    async def lock(self, code: str, ttl_ms: int) -> str | None:
        """Take the account's refresh lock for ``ttl_ms``: its token, or ``None`` when another process holds it."""
        token = secrets.token_hex(8)
        taken = await self.redis.set(keyspace.oauth_refresh_lock(code), token, nx=True, px=max(1, ttl_ms))
        return token if taken else None

    async def release(self, code: str, lock: str) -> None:
        """Release the refresh lock if ``lock`` still holds it (after a failure that stored nothing)."""
        await _RELEASE.run(self.redis, [keyspace.oauth_refresh_lock(code)], {"lock": lock})

    async def locked(self, code: str) -> bool:
        return bool(await cast(Awaitable[int], self.redis.exists(keyspace.oauth_refresh_lock(code))))
