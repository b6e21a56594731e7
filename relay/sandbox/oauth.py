"""An account's OAuth instance app and what Brightpearl's OAuth server keeps for it (API.md 2, 2.1): codes,
access tokens, refresh tokens, their lifetimes and the counters tests read.

No I/O and no clock of its own: every method that needs the time takes ``now_ms`` (the account's monotonic
clock, which tests move by hand). The HTTP side is :mod:`relay.sandbox.oauth_api` (authorize and token
endpoints) and the gateway (Bearer tokens on the API); :mod:`relay.sandbox.control_oauth` changes the settings.

Tokens look like the recorded ones (standard base64 ending in ``=``) and always hold a ``+`` and a ``/``, so a
client that does not URL-encode form values fails every time, not "intermittently" as Brightpearl warns.
"""

import base64
import itertools
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from relay.sandbox.throttle import RollingWindowThrottle

RECORDED_EXPIRES_IN_S = 604_800  # 7 days, as recorded
DEFAULT_CODE_LIFETIME_S = 300
DEFAULT_CLIENT_ID = "relay_oauth"
DEFAULT_DEV_REF = "relay_dev"
# What a refresh answers (API.md 2.1: whether refresh tokens rotate is UNCONFIRMED): "rotate" a new refresh token
# (the old one is refused from then on); "same" the refresh token sent; "omitted" no refresh_token at all.
Rotation = Literal["rotate", "same", "omitted"]
Grant = Literal["authorization_code", "refresh_token", "minted"]  # minted: by the control API
# Why the API refused a Bearer request with 401: "expired" (recorded body "Authorization token expired"),
# "invalid" (unknown or revoked: "Invalid instance token: …"), "headers" (app or dev ref missing or wrong).
Unauthorized = Literal["expired", "invalid", "headers"]

_installations = itertools.count(11)  # the recorded header said 11, the recorded token answer 13


def new_secret() -> str:
    return secrets.token_urlsafe(24)


def new_oauth_token() -> str:
    """A token shaped like the recorded ones (standard base64, ``=`` at the end) holding a ``+`` and a ``/``."""
    while True:
        token = base64.b64encode(secrets.token_bytes(32)).decode()
        if "+" in token and "/" in token:
            return token


class OAuthError(Exception):
    """A token request Brightpearl's OAuth server refuses: HTTP 400 with ``{"error", "error_description"?}``."""

    def __init__(self, error: str, description: str | None = None) -> None:
        super().__init__(description or error)
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        body = {"error": self.error}
        if self.description is not None:
            body["error_description"] = self.description
        return body


INVALID_GRANT_DESCRIPTION = "The auth token has either expired or does not exist"


def invalid_grant() -> OAuthError:
    return OAuthError("invalid_grant", INVALID_GRANT_DESCRIPTION)


@dataclass(frozen=True)
class OAuthApp:
    """The account's one OAuth instance app: its reference (``client_id``, sent as ``brightpearl-app-ref``), its
    secret, and the developer reference sent as ``brightpearl-dev-ref``."""

    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = field(default_factory=new_secret)
    dev_ref: str = DEFAULT_DEV_REF

    def describe(self) -> dict[str, str]:
        return {"client_id": self.client_id, "client_secret": self.client_secret, "dev_ref": self.dev_ref}


@dataclass(frozen=True)
class AuthorizationCode:
    client_id: str
    redirect_uri: str
    expires_ms: int


@dataclass
class OAuthCounters:
    """What the OAuth server did, for tests that count ("one refresh per expiry")."""

    codes_issued: int = 0
    tokens_issued: Counter[str] = field(default_factory=Counter)  # by grant
    token_errors: Counter[str] = field(default_factory=Counter)  # by error: invalid_client, invalid_grant, ...
    unauthorized: Counter[str] = field(default_factory=Counter)  # API 401s by reason
    api_requests: int = 0  # Bearer requests the API accepted

    def describe(self) -> dict[str, Any]:
        return {
            "codes_issued": self.codes_issued,
            "tokens_issued": dict(self.tokens_issued),
            "refreshes": self.tokens_issued["refresh_token"],
            "token_errors": dict(self.token_errors),
            "unauthorized": dict(self.unauthorized),
            "api_requests": self.api_requests,
        }


@dataclass(eq=False)
class OAuthServer:
    """One account's install of its OAuth app: the codes and tokens out, the settings tests change, counters.

    An access token replaced by a refresh stays valid until it expires (other processes may still hold it);
    revoking the install ends every code and token at once.
    """

    app: OAuthApp = field(default_factory=OAuthApp)
    installation_instance_id: str = field(default_factory=lambda: str(next(_installations)))
    access_token_lifetime_s: float = RECORDED_EXPIRES_IN_S
    code_lifetime_s: float = DEFAULT_CODE_LIFETIME_S
    refresh_rotation: Rotation = "rotate"
    # OAuth apps have their own 200 a minute per account and developer (API.md 2.1, 3), apart from private apps'
    throttle: RollingWindowThrottle = field(default_factory=RollingWindowThrottle)
    counters: OAuthCounters = field(default_factory=OAuthCounters)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    access_tokens: dict[str, int] = field(default_factory=dict)  # token -> expiry (monotonic ms)
    refresh_tokens: set[str] = field(default_factory=set)

    def expires_in_s(self) -> int:
        return max(1, round(self.access_token_lifetime_s))

    def authorize(self, client_id: str, redirect_uri: str, now_ms: int) -> str:
        """A new single-use code for ``client_id`` and ``redirect_uri``; the caller has checked ``client_id``."""
        self._forget_stale_codes(now_ms)
        code = new_oauth_token()
        self.codes[code] = AuthorizationCode(client_id, redirect_uri, now_ms + round(self.code_lifetime_s * 1000))
        self.counters.codes_issued += 1
        return code

    def _forget_stale_codes(self, now_ms: int) -> None:
        for code in [code for code, issued in self.codes.items() if issued.expires_ms <= now_ms]:
            del self.codes[code]

    def check_client(self, client_id: str | None, client_secret: str | None) -> None:
        """:class:`OAuthError` ``invalid_client`` unless both are the app's."""
        if client_id != self.app.client_id or client_secret != self.app.client_secret:
            raise OAuthError("invalid_client")

    def exchange_code(
        self, code: str, client_id: str, redirect_uri: str, now_ms: int, api_domain: str
    ) -> dict[str, Any]:
        """The token answer for a code (used up whatever the outcome); ``invalid_grant`` if it is unknown, used,
        expired, or was issued to another client or redirect URI."""
        issued = self.codes.pop(code, None)
        if issued is None or issued.expires_ms <= now_ms:
            raise invalid_grant()
        if issued.client_id != client_id or issued.redirect_uri != redirect_uri:
            raise invalid_grant()
        refresh_token = new_oauth_token()
        self.refresh_tokens.add(refresh_token)
        return self._issue("authorization_code", refresh_token, now_ms, api_domain)

    def refresh(self, refresh_token: str, now_ms: int, api_domain: str) -> dict[str, Any]:
        """The token answer for a refresh token, rotating it or not as set; ``invalid_grant`` if unknown,
        rotated away or revoked."""
        if refresh_token not in self.refresh_tokens:
            raise invalid_grant()
        if self.refresh_rotation == "rotate":
            self.refresh_tokens.discard(refresh_token)
            refresh_token = new_oauth_token()
            self.refresh_tokens.add(refresh_token)
        answer = self._issue("refresh_token", refresh_token, now_ms, api_domain)
        if self.refresh_rotation == "omitted":
            del answer["refresh_token"]
        return answer

    def mint(self, now_ms: int, api_domain: str) -> dict[str, Any]:
        """A token pair as an authorization would give, without the browser (for "bring your own tokens")."""
        refresh_token = new_oauth_token()
        self.refresh_tokens.add(refresh_token)
        return self._issue("minted", refresh_token, now_ms, api_domain)

    def _issue(self, grant: Grant, refresh_token: str, now_ms: int, api_domain: str) -> dict[str, Any]:
        access_token = new_oauth_token()
        self.access_tokens[access_token] = now_ms + round(self.access_token_lifetime_s * 1000)
        self.counters.tokens_issued[grant] += 1
        return {
            "access_token": access_token,
            "refresh_token": refresh_token,
            "installation_instance_id": self.installation_instance_id,
            "api_domain": api_domain,
            "token_type": "Bearer",
            "expires_in": self.expires_in_s(),
        }

    def check_access(self, token: str, now_ms: int) -> Unauthorized | None:
        """Why the API refuses ``token`` (``"expired"`` or ``"invalid"``), or ``None`` if it is good now."""
        expires_ms = self.access_tokens.get(token)
        if expires_ms is None:
            return "invalid"
        if expires_ms <= now_ms:
            return "expired"
        return None

    def expire_access_tokens(self, now_ms: int) -> int:
        """Make every access token expired now (refresh tokens still work); how many were live."""
        live = [token for token, expires_ms in self.access_tokens.items() if expires_ms > now_ms]
        for token in live:
            self.access_tokens[token] = now_ms
        return len(live)

    def revoke(self) -> dict[str, int]:
        """End the install's every code and token, as an uninstall would: refreshes get ``invalid_grant``, API
        calls 401 "Invalid instance token"."""
        revoked = {
            "codes": len(self.codes),
            "access_tokens": len(self.access_tokens),
            "refresh_tokens": len(self.refresh_tokens),
        }
        self.codes.clear()
        self.access_tokens.clear()
        self.refresh_tokens.clear()
        return revoked

    def describe(self, now_ms: int) -> dict[str, Any]:
        """The settings, what is live now and the counters, as the control API shows them."""
        return {
            "app": self.app.describe(),
            "installation_instance_id": self.installation_instance_id,
            "access_token_lifetime_s": self.access_token_lifetime_s,
            "code_lifetime_s": self.code_lifetime_s,
            "refresh_rotation": self.refresh_rotation,
            "live": {
                "codes": sum(1 for issued in self.codes.values() if issued.expires_ms > now_ms),
                "access_tokens": sum(1 for expires_ms in self.access_tokens.values() if expires_ms > now_ms),
                "refresh_tokens": len(self.refresh_tokens),
            },
            "in_window": self.throttle.in_window(now_ms),
            "counters": self.counters.describe(),
        }
