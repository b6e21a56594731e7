"""What the relay keeps: accounts, subscriptions, events, deliveries and their attempts.

These are the stored records (JSON in Redis). What the HTTP API shows is derived from them in
``relay.api.schemas``; secrets and tokens never leave through it except where the contract says so.
"""

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Resource = Literal["orders", "stock", "goods-out-notes", "products", "contacts"]
RESOURCES: tuple[Resource, ...] = ("orders", "stock", "goods-out-notes", "products", "contacts")
AuthKind = Literal["account_token", "staff_token", "oauth"]


class Record(BaseModel):
    """Base of stored records: strict about unknown fields so a typo never silently drops data."""

    model_config = ConfigDict(extra="forbid")


class AccountRecord(Record):
    """A Brightpearl account the relay polls."""

    code: str
    base_url: str
    app_ref: str
    auth: AuthKind
    token: str
    poll_interval_s: float
    poll_intervals_s: dict[Resource, float] = Field(default_factory=dict)  # per resource, over poll_interval_s
    resources: list[Resource]
    created_at: datetime
    hints: bool = False  # Brightpearl's native webhooks subscribed as hints (needs RELAY_PUBLIC_URL)
    safety_poll_interval_s: float = 60.0  # how often hinted resources are polled while their hints are healthy
    hint_token: str = ""  # the secret in the hint URL (Brightpearl signs nothing); sealed like the token when stored

    def intervals_s(self, resources: Iterable[Resource]) -> dict[str, float]:
        """The poll interval asked for each of ``resources``."""
        return {r: self.poll_intervals_s.get(r, self.poll_interval_s) for r in resources}


class SubscriptionState(StrEnum):
    active = "active"
    failing = "failing"
    disabled = "disabled"


class SubscriptionRecord(Record):
    """A callback URL and the events it wants from one account."""

    id: str
    account: str
    url: str
    events: list[str]
    description: str = ""
    secret: str
    previous_secret: str | None = None  # a rotated secret, still signing beside ``secret`` until the time below
    previous_secret_valid_until: datetime | None = None
    state: SubscriptionState = SubscriptionState.active
    disabled_reason: str | None = None
    disabled_at: datetime | None = None
    retry_schedule_s: list[float] | None = None  # None: the relay's RELAY_RETRY_SCHEDULE_S
    timeout_s: float | None = None  # None: RELAY_DELIVERY_TIMEOUT_S
    max_concurrency: int | None = None  # None: RELAY_SUBSCRIPTION_CONCURRENCY
    rate_limit_per_s: float | None = None  # None: RELAY_SUBSCRIPTION_RATE_PER_S (no limit when that is unset)
    created_at: datetime
    updated_at: datetime

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets that sign a webhook sent at ``now``: the current one, and a rotated one in its grace."""
        valid_until = self.previous_secret_valid_until
        if self.previous_secret and valid_until is not None and now < valid_until:
            return [self.secret, self.previous_secret]
        return [self.secret]


class EventRecord(Record):
    """One detected change; ``body`` is the exact JSON text every delivery of it sends."""

    id: str
    type: str
    account: str
    resource_id: int | str | None
    timestamp: str
    created_at: datetime
    body: str


class DeliveryStatus(StrEnum):
    pending = "pending"
    retrying = "retrying"
    succeeded = "succeeded"
    failed = "failed"
    skipped = "skipped"


FINAL = frozenset({DeliveryStatus.succeeded, DeliveryStatus.failed, DeliveryStatus.skipped})
"""The statuses a delivery ends in: nothing more is sent (only a manual retry or a recovery sends it again)."""


class DeliveryRecord(Record):
    """One event on its way to one subscription."""

    id: str
    event_id: str
    subscription: str
    account: str
    type: str
    status: DeliveryStatus
    created_at: datetime
    next_attempt_at: datetime | None
    attempt_count: int = 0
    last_attempt_at: datetime | None = None


class Attempt(Record):
    """One HTTP attempt of a delivery: the answer, or the error when no answer came."""

    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int
    response_excerpt: str = Field(default="", description="the start of the response body")
