"""Who is looking at the dashboard: an opaque session kept on the server, named by a random id in a cookie.

Logging in with a token (the admin token or an account's API key) opens a session. The browser gets a random
session id (256 bits) in a cookie; Redis keeps only the id's SHA-256, with who logged in, when, and until when
(``SESSION_LIFETIME``, 12 hours from login, also the record's TTL). Neither the token nor the session id is
stored, so a copy of Redis lets nobody in. Every page looks the session up and checks it still holds:

- logging out deletes it;
- a session opened with an API key ends when the key is revoked or its account deleted: revocation deletes
  the key's sessions (``subscriptions.store.api_keys``), and every page checks that the key still exists;
- the admin's session ends when ``RELAY_API_TOKEN`` changes: it keeps HMAC-SHA256(session id, admin token),
  which only the session id (in the browser alone) and the current token reproduce.

The cookie is ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page sends it) and
``Secure`` over https, also when a proxy in front ended TLS and says so. Forms that change something also check
that ``Origin`` (or ``Referer``) names this host, so they cannot be posted from elsewhere even by a browser that
ignores ``SameSite``. A cookie that is not a session id (bytes other than UTF-8, the raw token an older version
kept) is no session: the login page, never an error.
"""

import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Literal, cast
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import BaseModel
from redis.asyncio import Redis

from relay.api.access import ADMIN, Principal
from relay.api.auth import authenticate
from relay.api.context import ApiContext, context
from subscriptions.core.errors import NotFound
from subscriptions.store import keyspace
from subscriptions.store.api_keys import ApiKeys

COOKIE = "relay_ui_session"
OLD_COOKIE = "relay_ui_token"  # what versions before sessions kept: the raw token; dropped wherever it is seen
COOKIE_PATH = "/ui"
MAX_TOKEN_CHARS = 512
SESSION_LIFETIME = timedelta(hours=12)
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32): 256 bits
_NEXT = re.compile(r"/ui(?:[/?][\x21-\x7e]*)?")  # printable ASCII only: it goes into a Location header


class SessionRecord(BaseModel):
    """What Redis keeps of a session (under the SHA-256 of its id): who, and until when."""

    kind: Literal["admin", "key"]
    account: str | None = None  # a key's session: the key's account
    key_id: str | None = None
    admin_check: str | None = None  # the admin's session: HMAC-SHA256(session id, RELAY_API_TOKEN), hex
    created_at: datetime
    expires_at: datetime


def session_digest(session_id: str) -> str:
    """The stored name of a session: the SHA-256 of its id (256 random bits; nothing to guess from it)."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def admin_check(session_id: str, admin_token: str) -> str:
    """Ties an admin session to the admin token it was opened with, without storing anything of the token that
    could be checked without the session id."""
    return hmac.new(session_id.encode(), admin_token.encode(), hashlib.sha256).hexdigest()


class DashboardSessions:
    """The dashboard's sessions, over one Redis connection pool (``decode_responses=True``)."""

    def __init__(self, redis: "Redis", admin_token: str, clock: Callable[[], datetime]) -> None:
        self.redis = redis
        self.admin_token = admin_token
        self.clock = clock

    @classmethod
    def of(cls, ctx: ApiContext) -> "DashboardSessions":
        return cls(ctx.redis, ctx.admin_token, ctx.clock)

    async def open(self, who: Principal) -> str:
        """A new session for ``who``; its id, which only the browser will have."""
        session_id = secrets.token_urlsafe(32)
        digest = session_digest(session_id)
        now = self.clock()
        record = SessionRecord(
            kind="admin" if who.is_admin else "key",
            account=who.account,
            key_id=who.key_id,
            admin_check=admin_check(session_id, self.admin_token) if who.is_admin else None,
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
        lifetime_ms = int(SESSION_LIFETIME.total_seconds() * 1000)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keyspace.dashboard_session(digest), record.model_dump_json(), px=lifetime_ms)
            if record.key_id is not None:  # revoking the key finds its sessions here; the set outlives them
                pipe.sadd(keyspace.api_key_dashboard_sessions(record.key_id), digest)
                pipe.pexpire(keyspace.api_key_dashboard_sessions(record.key_id), lifetime_ms)
            await pipe.execute()
        return session_id

    async def find(self, session_id: str) -> Principal | None:
        """Who the session ``session_id`` is for, or None: no such session, expired, or no longer good."""
        if not SESSION_ID.fullmatch(session_id):
            return None
        text = cast(str | None, await self.redis.get(keyspace.dashboard_session(session_digest(session_id))))
        if text is None:
            return None
        record = SessionRecord.model_validate_json(text)
        who = await self._still_good(session_id, record)
        if who is None:
            await self.end(session_id)
        return who

    async def _still_good(self, session_id: str, record: SessionRecord) -> Principal | None:
        now = self.clock()
        if record.expires_at <= now:
            return None
        if record.kind == "admin":
            expected = admin_check(session_id, self.admin_token)
            return ADMIN if record.admin_check and hmac.compare_digest(record.admin_check, expected) else None
        if record.key_id is None:
            return None
        store = ApiKeys(self.redis)
        try:
            key = await store.get(record.key_id)
        except NotFound:
            return None  # revoked (its sessions are deleted with it; this one was opened while that ran)
        if key.account != record.account:
            return None
        await store.touch(key, now)
        return Principal(account=key.account, key_id=key.id)

    async def end(self, session_id: str) -> None:
        """Delete the session ``session_id`` (nothing happens if there is none)."""
        if not SESSION_ID.fullmatch(session_id):
            return
        digest = session_digest(session_id)
        text = cast(str | None, await self.redis.getdel(keyspace.dashboard_session(digest)))
        if text is not None:
            key_id = SessionRecord.model_validate_json(text).key_id
            if key_id is not None:
                await cast(Awaitable[int], self.redis.srem(keyspace.api_key_dashboard_sessions(key_id), digest))


def cookie_session(request: web.Request) -> str:
    """The session id the request's cookie names ("" without one)."""
    return request.cookies.get(COOKIE, "")


async def caller(request: web.Request) -> Principal | None:
    """The principal of the request's session, or ``None`` without a valid one."""
    found = cookie_session(request)
    return await DashboardSessions.of(context(request)).find(found) if found else None


async def check_token(request: web.Request, token: str) -> Principal | None:
    """Who a token typed at the login page belongs to, or None."""
    token = token.strip()
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    return await authenticate(context(request), token)


def remember(response: web.StreamResponse, request: web.Request, session_id: str) -> None:
    """Keep ``session_id`` in the browser for the dashboard's pages only, until the browser closes."""
    response.set_cookie(
        COOKIE,
        session_id,
        path=COOKIE_PATH,
        httponly=True,
        samesite="Strict",
        secure=over_https(request),
    )
    if OLD_COOKIE in request.cookies:
        response.del_cookie(OLD_COOKIE, path=COOKIE_PATH)


def over_https(request: web.Request) -> bool:
    """Whether the browser used https: to this server, or to a proxy in front that ended TLS and said so
    (``X-Forwarded-Proto``, ``Forwarded``). The headers are trusted from anyone: they can only make the cookie
    stricter, never send it anywhere it would not go."""
    if request.scheme == "https":
        return True
    if request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower() == "https":
        return True
    return any(str(hop.get("proto", "")).lower() == "https" for hop in request.forwarded[:1])


def forget(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path=COOKIE_PATH)
    response.del_cookie(OLD_COOKIE, path=COOKIE_PATH)


def has_cookie(request: web.Request) -> bool:
    return COOKIE in request.cookies or OLD_COOKIE in request.cookies


def same_origin(request: web.Request) -> bool:
    """Whether a form was posted from a page of this host: ``Origin``, else ``Referer``, must name it."""
    source = request.headers.get("Origin") or request.headers.get("Referer") or ""
    if source in ("", "null"):
        return False
    try:
        netloc = urlsplit(source).netloc
    except ValueError:  # e.g. "http://[" (an unclosed IPv6 address)
        return False
    return netloc.lower() == request.host.lower()


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a dashboard path, never another site (``//evil`` or ``/ui\\@evil``), and
    nothing that cannot go into a ``Location`` header as it is (spaces, line breaks, non-ASCII)."""
    if not target or "//" in target or "\\" in target or not _NEXT.fullmatch(target):
        return "/ui"
    return target
