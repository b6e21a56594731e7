"""Settings: environment variables with the prefix ``RELAY_`` (a ``.env`` file works too).

The contract's settings are here with their defaults; the README lists them all. A bad value stops the
command with one line naming the variable and what it expects (see :func:`describe_error`).
"""

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from relay.redis_url import check_redis_url
from subscriptions.core.crypto import TokenCipher
from subscriptions.core.retry import DEFAULT_RETRY_SCHEDULE_S

MIN_API_TOKEN_CHARS = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RELAY_", env_file=".env", extra="ignore")

    redis_url: str | None = Field(
        None,
        description="Redis to use: redis://host:port/db, rediss://…, unix://… or "
        "redis+sentinel://host:port[,host:port]/service[/db]; none: embedded store",
    )
    api_token: SecretStr | None = Field(None, description="the admin bearer token of the HTTP API")
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    worker_port: int = Field(8081, ge=0, le=65535)
    retry_schedule_s: Annotated[tuple[float, ...], NoDecode] = DEFAULT_RETRY_SCHEDULE_S
    delivery_timeout_s: float = Field(15.0, gt=0, le=300)
    budget_share: float = Field(0.5, gt=0, le=1)
    allow_private_targets: bool = False
    encryption_key: SecretStr | None = None
    poll_overlap_s: float = Field(60.0, ge=0, le=3600, description="how far back each poll looks again")
    stock_sweep_interval_s: float = Field(
        3600.0, ge=60, le=7 * 86400, description="how often the stock reconciliation sweep starts"
    )
    brightpearl_timeout_s: float = Field(
        30.0, ge=1, le=300, description="how long one Brightpearl request may take before it counts as unanswered"
    )
    status_sweep_interval_s: float = Field(
        300.0,
        ge=10,
        le=7 * 86400,
        description="how often the newest orders' statuses are swept for changes that did not move updatedOn",
    )
    max_in_flight: int = Field(512, ge=1, le=10_000, description="delivery attempts under way per worker process")
    poll_concurrency: int = Field(
        200, ge=1, le=10_000, description="account polls one worker process runs at once (each mostly waits)"
    )
    account_max_in_flight: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description="attempts under way at once for one account's subscriptions together; none: max_in_flight / 4",
    )
    max_subscriptions_per_account: int = Field(100, ge=1, le=100_000, description="subscriptions one account may have")
    test_pings_per_minute: int = Field(30, ge=1, le=10_000, description="test pings one account may send a minute")
    metrics_token: SecretStr | None = Field(None, description="when set, /metrics needs it as a bearer token")
    subscription_concurrency: int = Field(32, ge=1, le=1_000, description="attempts under way per subscription")
    connections_per_host: int = Field(
        64,
        ge=1,
        le=10_000,
        description="attempts (connections) under way to one receiver (host, port, scheme) per worker process",
    )
    subscription_rate_per_s: float | None = Field(
        None, gt=0, le=100_000, description="attempts a second per subscription, over every worker; none: no limit"
    )
    retry_after_max_s: float = Field(
        3600.0, ge=0, le=86_400, description="the longest Retry-After (429, 502, 503, 504) the relay honours"
    )
    disable_after_s: float = Field(
        5 * 86_400.0, ge=60, description="a subscription with no successful delivery for this long is disabled"
    )
    secret_grace_s: float = Field(
        86_400.0, ge=0, le=30 * 86_400, description="how long a rotated secret keeps signing beside the new one"
    )
    retention_s: float = Field(
        7 * 86_400.0, ge=300, description="events, deliveries and attempts expire this long after their last change"
    )
    public_url: str | None = Field(
        None,
        description="where Brightpearl reaches this relay's API (https://relay.example.com): with it, accounts "
        "subscribe Brightpearl's native webhooks as hints; none: polling alone",
    )
    hints_per_minute: int = Field(600, ge=1, le=100_000, description="hints one account may send a minute")
    hint_coalesce_ms: int = Field(
        30, ge=0, le=5_000, description="how long a hint waits for others to be read with it, in milliseconds"
    )
    brightpearl_app_ref: str | None = Field(None, description="the OAuth app's reference (its client_id)")
    brightpearl_client_secret: SecretStr | None = Field(None, description="the OAuth app's client secret")
    brightpearl_dev_ref: str | None = Field(None, description="the developer reference sent as brightpearl-dev-ref")
    brightpearl_oauth_url: str = Field(
        "https://oauth.brightpearl.com",
        description="Brightpearl's OAuth server: authorize at {this}/authorize/{account}, tokens at "
        "{this}/token/{account}",
    )
    oauth_budget_share: float = Field(
        0.9, gt=0, le=1, description="share of an OAuth account's own 200 requests a minute the relay may spend"
    )
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = Field("text", description="json: one JSON object per log line")

    @field_validator("retry_schedule_s", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            try:
                return tuple(float(part) for part in parts)
            except ValueError:
                raise ValueError(f"expected comma-separated seconds such as 5,300,1800, got {value!r}") from None
        return value

    @field_validator("retry_schedule_s")
    @classmethod
    def _non_negative(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(delay < 0 for delay in value):
            raise ValueError("retry delays cannot be negative")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None  # set but empty, as in `RELAY_REDIS_URL=` in a .env file: not set
        return check_redis_url(value)  # a RedisUrlError (a ValueError) quotes it with its password hidden

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None  # set but empty: not set (polling alone)
        return check_public_url(value)

    @field_validator("brightpearl_oauth_url")
    @classmethod
    def _oauth_url(cls, value: str) -> str:
        return check_base_url(value, "https://oauth.brightpearl.com")

    @field_validator("brightpearl_app_ref", "brightpearl_dev_ref")
    @classmethod
    def _optional_text(cls, value: str | None) -> str | None:
        return value.strip() if value is not None and value.strip() else None  # set but empty: not set

    @field_validator("brightpearl_client_secret")
    @classmethod
    def _client_secret(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value().strip() else None

    @field_validator("api_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None  # set but empty: not set (`relay api` and `relay run` say how to set it)
        length = len(value.get_secret_value().strip())
        if length < MIN_API_TOKEN_CHARS:
            raise ValueError(
                f"must be at least {MIN_API_TOKEN_CHARS} characters, this one has {length}; generate one with "
                "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value().strip() else None

    @field_validator("encryption_key")
    @classmethod
    def _fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None  # set but empty, as in `RELAY_ENCRYPTION_KEY=` in a .env file: not set
        TokenCipher.from_setting(value.get_secret_value())  # InvalidKey, a ValueError, says what is wrong
        return value

    def token(self) -> str | None:
        return self.api_token.get_secret_value().strip() if self.api_token else None

    def account_in_flight(self) -> int:
        """Attempts under way at once for one account's subscriptions together (a quarter of the whole by default)."""
        return self.account_max_in_flight or max(1, self.max_in_flight // 4)

    def cipher(self) -> TokenCipher | None:
        """What encrypts Brightpearl tokens at rest: the keys of RELAY_ENCRYPTION_KEY; None when it is not set."""
        return TokenCipher.from_setting(self.encryption_key.get_secret_value()) if self.encryption_key else None


def check_public_url(value: str) -> str:
    """``value`` as the base of hint URLs: an absolute http(s) URL with a host, no query or fragment, no trailing
    slash (the relay appends ``/hooks/brightpearl/...``; a stray slash would make its webhooks look foreign)."""
    return check_base_url(value, "https://relay.example.com")


def check_base_url(value: str, example: str) -> str:
    """``value`` as a base the relay appends paths to: an absolute http(s) URL with a host, no query or fragment,
    no trailing slash."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an absolute http(s) URL such as {example}, got {value!r}")
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise ValueError(f"expected a URL without a query or fragment, got {value!r}")
    return value.strip().rstrip("/")


# redis_url may hold a password: its own message quotes it with the password hidden
SECRET_SETTINGS = frozenset({"api_token", "brightpearl_client_secret", "encryption_key", "metrics_token", "redis_url"})


def describe_error(error: ValidationError) -> str:
    """One line naming the first bad variable and what it expects."""
    first = error.errors()[0]
    name = "RELAY_" + str(first["loc"][0]).upper() if first["loc"] else "RELAY_*"
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["loc"] and first["loc"][0] in SECRET_SETTINGS:
        return f"{name}: {message}"  # never echo a secret, even a malformed one, into a terminal or a log
    shown = repr(first.get("input"))
    if shown in message:  # the message already quotes what it got
        return f"{name}: {message}"
    return f"{name}: {message} (got {shown})"
