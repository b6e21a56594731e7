"""What the HTTP API takes and gives: request bodies, query parameters and answers, as pydantic models.

OpenAPI's schemas are generated from these, so they are the API's reference. Answers never carry a
Brightpearl token; a subscription's secret appears only when it is created and at ``/secret``.
"""

import re
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from subscriptions.core.events import MAX_PATTERN_CHARS, MAX_PATTERNS
from subscriptions.core.ids import EVENT_PREFIX, SUBSCRIPTION_PREFIX, id_pattern
from subscriptions.core.models import RESOURCES, Attempt, AuthKind, DeliveryStatus, Resource, SubscriptionState
from subscriptions.store.admission import MIN_RATE_PER_S
from subscriptions.store.paging import DEFAULT_LIMIT, MAX_LIMIT

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
PollInterval = Annotated[float, Field(ge=1, le=86_400)]
SafetyInterval = Annotated[float, Field(ge=10, le=3600)]
T = TypeVar("T")
_ISO_TIME_START = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_time(value: object) -> object:
    # pydantic would also read a number ("0.5", 1700000000) as Unix time, which the spec's date-time is not
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_TIME_START.match(value)):
        return value
    raise ValueError("give an ISO 8601 time, e.g. 2026-11-26T10:00:00Z")


Instant = Annotated[datetime, BeforeValidator(_iso_time)]


class Input(BaseModel):
    """Request bodies refuse unknown fields, so a misspelt field is an error rather than silently ignored, and
    numbers that are not finite (JSON has none, Python's parser takes ``NaN`` and ``Infinity``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _exactly_one(data: object, *pairs: tuple[str, str], at_least: bool = True) -> list[InitErrorDetails]:
    """A problem for each pair of fields of which ``data`` does not give exactly one (at most one, when not
    ``at_least``), so that they are reported together with every other problem of the request."""
    if not isinstance(data, dict):
        return []
    found = []
    for first, second in pairs:
        given = (data.get(first) is not None) + (data.get(second) is not None)
        if given > 1 or (at_least and given == 0):
            wording = "exactly" if at_least else "at most"
            error = PydanticCustomError("one_of", f"give {wording} one of {first} and {second}")
            found.append(InitErrorDetails(type=error, loc=(), input=data))
    return found


def _with(problems: list[InitErrorDetails], title: str, handler: ValidatorFunctionWrapHandler, data: object) -> Any:
    """What ``handler`` makes of ``data``, failing with its own problems and ``problems`` all at once."""
    try:
        model = handler(data)
    except ValidationError as error:
        if not problems:
            raise
        theirs = [
            InitErrorDetails(type=PydanticCustomError(e["type"], e["msg"]), loc=e["loc"], input=e["input"])
            for e in error.errors(include_url=False)
        ]
        raise ValidationError.from_exception_data(title, theirs + problems) from None
    if problems:
        raise ValidationError.from_exception_data(title, problems)
    return model


class OAuthGrant(Input):
    """The tokens of an authorization an integrator ran itself (Brightpearl's token answer, as it came)."""

    access_token: str = Field(min_length=1, max_length=4096, repr=False)
    refresh_token: str = Field(min_length=1, max_length=4096, repr=False)
    expires_in: float = Field(gt=0, le=10 * 365 * 86_400, description="seconds the access token lives")
    api_domain: str = Field(
        min_length=1,
        max_length=253,
        pattern=r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$",
        description="e.g. euw1.brightpearlconnect.com",
    )


def _oauth_problems(data: object, *, create: bool) -> list[InitErrorDetails]:
    """With ``oauth`` tokens, or ``"auth": "oauth"`` (connect through Brightpearl): no token fields; without them
    (at registration): the private app's fields as before."""
    if not isinstance(data, dict):
        return []
    if data.get("oauth") is None and data.get("auth") != "oauth":
        if not create:
            return _exactly_one(data, ("base_url", "datacenter"), ("account_token", "staff_token"), at_least=False)
        problems = _exactly_one(data, ("base_url", "datacenter"), ("account_token", "staff_token"))
        if data.get("app_ref") is None:
            error = PydanticCustomError(
                "missing", 'app_ref is required (or "auth": "oauth" to connect through Brightpearl, or oauth tokens)'
            )
            problems.append(InitErrorDetails(type=error, loc=("app_ref",), input=data))
        return problems
    problems = _exactly_one(data, ("base_url", "datacenter"), at_least=False)
    if any(data.get(name) is not None for name in ("account_token", "staff_token", "app_ref")):
        error = PydanticCustomError(
            "one_of", 'give "auth": "oauth" (or oauth tokens) or account_token/staff_token with app_ref, not both'
        )
        problems.append(InitErrorDetails(type=error, loc=(), input=data))
    return problems


class AccountCreate(Input):
    code: str = Field(pattern=CODE_PATTERN, description="the Brightpearl account code, e.g. acme")
    base_url: str | None = Field(
        None, max_length=2048, description="e.g. https://euw1.brightpearlconnect.com/public-api/acme"
    )
    datacenter: str | None = Field(
        None, pattern=r"^[a-z0-9-]{2,32}$", description="instead of base_url: euw1, use1, usw1, ..."
    )
    app_ref: str | None = Field(None, min_length=1, max_length=128, description="brightpearl-app-ref")
    account_token: str | None = Field(None, min_length=1, max_length=1024, description="brightpearl-account-token")
    auth: Literal["oauth"] | None = Field(
        None,
        description='"oauth": connect through Brightpearl as the relay\'s OAuth app (the answer holds the '
        "authorize_url to open; needs the OAuth settings and RELAY_PUBLIC_URL)",
    )
    oauth: OAuthGrant | None = Field(
        None, description="instead of app_ref and a token: an OAuth instance app's tokens (needs the OAuth settings)"
    )
    staff_token: str | None = Field(
        None, min_length=1, max_length=1024, description="instead of account_token: brightpearl-staff-token"
    )
    poll_interval_s: float = Field(5.0, ge=1, le=3600)
    poll_intervals_s: dict[Resource, PollInterval] = Field(
        default_factory=dict, description='per resource, instead of poll_interval_s, e.g. {"contacts": 300}'
    )
    resources: list[Resource] = Field(default_factory=lambda: list(RESOURCES), min_length=1)
    hints: bool | None = Field(
        None,
        description="subscribe Brightpearl's native webhooks as hints (needs RELAY_PUBLIC_URL); "
        "default: true when RELAY_PUBLIC_URL is set",
    )
    safety_poll_interval_s: SafetyInterval = Field(
        60.0, description="how often hinted resources are polled while their hints are healthy, 10 to 3600 s"
    )

    @model_validator(mode="wrap")
    @classmethod
    def _everything_at_once(cls, data: object, handler: ValidatorFunctionWrapHandler) -> "AccountCreate":
        problems = _oauth_problems(data, create=True)
        account: AccountCreate = _with(problems, cls.__name__, handler, data)
        account.resources = list(dict.fromkeys(account.resources))
        return account


class AccountPatch(Input):
    base_url: str | None = Field(None, max_length=2048)
    datacenter: str | None = Field(None, pattern=r"^[a-z0-9-]{2,32}$")
    app_ref: str | None = Field(None, min_length=1, max_length=128)
    account_token: str | None = Field(None, min_length=1, max_length=1024)
    staff_token: str | None = Field(None, min_length=1, max_length=1024)
    oauth: OAuthGrant | None = Field(None, description="an OAuth account's new tokens (a new authorization)")
    poll_interval_s: float | None = Field(None, ge=1, le=3600)
    poll_intervals_s: dict[Resource, PollInterval] | None = None
    resources: list[Resource] | None = Field(None, min_length=1)
    hints: bool | None = None
    safety_poll_interval_s: SafetyInterval | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _everything_at_once(cls, data: object, handler: ValidatorFunctionWrapHandler) -> "AccountPatch":
        problems = _oauth_problems(data, create=False)
        patch: AccountPatch = _with(problems, cls.__name__, handler, data)
        if patch.resources is not None:
            patch.resources = list(dict.fromkeys(patch.resources))
        return patch


class ResourceStatus(BaseModel):
    poll_interval_s: float = Field(description="the interval asked for")
    effective_poll_interval_s: float = Field(description="the interval the budget allows (never shorter)")
    actual_poll_interval_s: float | None = Field(
        None,
        description="the interval the resource is really polled at: a running mean of the gaps between its last polls "
        "(weight 0.3 on the newest); over effective_poll_interval_s when the workers cannot keep up; none until two "
        "polls at the interval now planned",
    )
    poll_delay_s: float | None = Field(
        None, description="how late the resource's last poll started after it was due; none before its first poll"
    )
    last_poll_at: str | None = None
    caught_up_at: str | None = Field(None, description="every change before this time has been seen")
    lag_s: float | None = Field(None, description="seconds between caught_up_at and now")
    requests_per_poll: float | None = Field(None, description="Brightpearl requests a poll costs, on average")
    last_error: str | None = Field(None, description="the lane's last failed poll: which request, what came back")
    last_error_kind: str | None = Field(
        None,
        description="its kind: auth, rejected, not_found, throttled, budget, timeout, network, html, empty, "
        "malformed, unavailable",
    )
    last_error_at: str | None = None
    error_since: str | None = Field(
        None, description="the first error of the lane's current run of failures; none once a poll succeeds"
    )
    dropped_ids: int | None = Field(
        None, description="ids Brightpearl refused alone (a deleted or untracked product), dropped so far"
    )
    last_dropped_ids: list[int] | None = None
    last_dropped_at: str | None = None


class StockSweepStatus(BaseModel):
    mode: Literal["baseline", "reconcile", "idle"] = Field(
        description="baseline: taking the catalogue's first figures; reconcile: checking them; idle: waiting"
    )
    next_product_row: int
    last_completed_at: str | None
    last_corrections: int | None = Field(description="changes the last sweep caught that polling had missed")


class StatusSweepStatus(BaseModel):
    next_sweep_at: str | None = Field(description="when the next sweep of the newest orders' statuses is due")
    last_completed_at: str | None
    last_corrections: int | None = Field(
        description="status changes the last sweep caught that the orders poll had not (they did not move updatedOn)"
    )


class HintRequests(BaseModel):
    hints: int = Field(0, description="Brightpearl requests made for hints (targeted reads) in the last minute")
    polls: int = Field(0, description="the other Brightpearl requests of the last minute")


class HintsStatus(BaseModel):
    state: Literal["healthy", "degraded", "off"] = Field(
        "off",
        description="off: hints are off; degraded: polls found changes no hint announced, so the asked intervals "
        "apply; healthy: hinted resources are polled every safety_poll_interval_s",
    )
    last_hint_at: str | None = Field(None, description="when the last hint was accepted")
    subscribed: list[str] = Field(default_factory=list, description="the Brightpearl events subscribed as hints")
    refused: list[str] = Field(
        default_factory=list, description="events Brightpearl refused to subscribe (INTC-064): polled as before"
    )
    covered: list[str] = Field(default_factory=list, description="the resources the subscribed events cover")
    degraded_resources: list[str] = Field(default_factory=list, description="resources whose hints are degraded")
    reconciled_at: str | None = Field(None, description="when the webhooks were last reconciled with Brightpearl")
    error: str | None = Field(None, description="why the last reconcile of the webhooks failed; none after a success")
    requests_last_minute: HintRequests = Field(default_factory=HintRequests)


class AccountStatus(BaseModel):
    last_poll_at: str | None = None
    last_success_at: str | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    requests_last_minute: int = Field(description="Brightpearl requests the relay made in the last minute")
    budget_per_minute: int = Field(description="the relay's share of the account's 200 requests a minute")
    auth_state: str | None = Field(
        None,
        description='OAuth accounts: "authorization_required" (registered, not connected yet: nothing polled), '
        '"active", or "reauthorization_required" (polling paused, cursors kept)',
    )
    auth_reason: str | None = Field(None, description="why a new authorization is required, as Brightpearl said")
    resources: dict[str, ResourceStatus]
    stock_sweep: StockSweepStatus | None = None
    status_sweep: StatusSweepStatus | None = None
    hints: HintsStatus = Field(default_factory=HintsStatus)


class AccountView(BaseModel):
    code: str
    base_url: str | None = Field(
        description="the account's API host; null for an OAuth account until its authorization names it"
    )
    app_ref: str
    auth: AuthKind
    poll_interval_s: float
    poll_intervals_s: dict[Resource, float]
    resources: list[Resource]
    created_at: datetime
    hints: bool = Field(description="Brightpearl's native webhooks are subscribed as hints")
    safety_poll_interval_s: float
    warnings: list[str] = Field(
        default_factory=list,
        description="what a person should know: each resource the budget polls less often than asked, each the "
        "workers poll less often than planned (actual_poll_interval_s over 1.1 times the effective one), and what to "
        "do",
    )
    status: AccountStatus


class AccountCreated(AccountView):
    authorize_url: str | None = Field(
        None,
        description='"auth": "oauth": where the account\'s admin goes to connect it (valid 10 minutes, once; '
        "GET /v1/accounts/{code}/authorize gives a fresh one)",
    )


class AuthorizeLink(BaseModel):
    authorize_url: str = Field(description="where the account's admin goes to connect it: valid 10 minutes, once")


RetrySchedule = Annotated[list[Annotated[float, Field(ge=0, le=7 * 86_400)]], Field(max_length=30)]


class DeliveryOptions(Input):
    """What a subscription may set for itself; each left out (or null) takes the relay's setting. Every bound is
    what delivery can honour: timeouts are kept to a tenth of a second, a rate is spaced in whole milliseconds
    and at least one attempt every 100 s, and a delivery's schedule ends within a few weeks."""

    retry_schedule_s: RetrySchedule | None = Field(
        None, description="seconds before each retry, e.g. [5, 60, 600]; [] means one attempt only"
    )
    timeout_s: float | None = Field(None, ge=0.1, le=300, description="timeout of one attempt, 0.1 to 300 s")
    max_concurrency: int | None = Field(None, ge=1, le=1000, description="attempts under way at once, 1 to 1000")
    rate_limit_per_s: float | None = Field(
        None, ge=MIN_RATE_PER_S, le=1000, description=f"attempts a second at most, {MIN_RATE_PER_S} to 1000"
    )


EventPatterns = Annotated[
    list[Annotated[str, Field(max_length=MAX_PATTERN_CHARS)]], Field(min_length=1, max_length=MAX_PATTERNS)
]


class SubscriptionCreate(DeliveryOptions):
    account: str = Field(pattern=CODE_PATTERN)
    url: str = Field(max_length=2048)
    events: EventPatterns
    description: str = Field("", max_length=500)


class SubscriptionPatch(DeliveryOptions):
    url: str | None = Field(None, max_length=2048)
    events: EventPatterns | None = None
    state: Literal["active", "disabled"] | None = None
    description: str | None = Field(None, max_length=500)


class SubscriptionHealth(BaseModel):
    failing_since: datetime | None = Field(description="the first failed attempt with no success after it")
    last_success_at: datetime | None
    last_failure_at: datetime | None
    success_rate: float | None = Field(description="successes among the latest attempts (up to 100); 0 to 1")
    recent_attempts: int = Field(description="how many attempts success_rate is over")


class SubscriptionView(BaseModel):
    id: str
    account: str
    url: str
    events: list[str]
    description: str
    state: SubscriptionState = Field(description="active; failing while attempts keep failing; disabled")
    disabled_reason: str | None
    disabled_at: datetime | None
    retry_schedule_s: list[float] | None
    timeout_s: float | None
    max_concurrency: int | None
    rate_limit_per_s: float | None
    previous_secret_valid_until: datetime | None = Field(
        description="while set and in the future, the rotated-out secret still signs beside the current one"
    )
    health: SubscriptionHealth
    created_at: datetime
    updated_at: datetime


class SubscriptionCreated(SubscriptionView):
    secret: str = Field(description="whsec_… secret that signs this subscription's webhooks")


class SecretView(BaseModel):
    secret: str


class RotatedSecret(BaseModel):
    secret: str = Field(description="the new whsec_ secret; it signs every webhook from now on")
    previous_valid_until: datetime = Field(description="until then the previous secret signs beside it")


class RecoverRequest(Input):
    since: Instant = Field(description="re-send failed and skipped deliveries created at or after this time")
    until: Instant | None = Field(None, description="and before this time (default: now)")

    @model_validator(mode="after")
    def _ordered(self) -> "RecoverRequest":
        if self.since.tzinfo is None or (self.until is not None and self.until.tzinfo is None):
            raise ValueError("give times with a UTC offset, e.g. 2026-11-26T10:00:00Z")
        if self.until is not None and self.until <= self.since:
            raise ValueError("until must be after since")
        return self


class RecoveryView(BaseModel):
    id: str
    subscription: str
    status: Literal["running", "completed"] = Field(
        description="running until every delivery in it has been queued and reached succeeded or failed"
    )
    since: datetime
    until: datetime
    total: int = Field(description="failed and skipped deliveries found in the window")
    queued: int = Field(description="of them, re-queued for sending so far")
    done: int = Field(description="of them, sent again and now succeeded or failed")
    succeeded: int
    failed: int
    created_at: datetime


class DeliverySummary(BaseModel):
    id: str
    event_id: str
    subscription: str
    type: str
    status: DeliveryStatus
    created_at: datetime
    next_attempt_at: datetime | None
    attempt_count: int
    last_attempt_at: datetime | None


class DeliveryView(DeliverySummary):
    attempts: list[Attempt] = Field(description="every attempt, oldest first")


class EventSummary(BaseModel):
    id: str
    type: str
    account: str
    resource_id: int | str | None
    timestamp: str = Field(description="when the change happened, by Brightpearl's clock where it says")
    created_at: datetime = Field(description="when the relay stored the event")


class EventView(EventSummary):
    body: dict[str, Any] = Field(description="the JSON body every delivery of this event sends")


class Paged(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


class AccountList(Paged[AccountView]):
    pass


class SubscriptionList(Paged[SubscriptionView]):
    pass


class DeliveryList(Paged[DeliverySummary]):
    pass


class EventList(Paged[EventSummary]):
    pass


class ListQuery(BaseModel):
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(None, max_length=512)


# Filters that name an account, a subscription or an event must have the shape of one (a 422 naming the
# parameter otherwise): their values become Redis key names, which must never reach another key.


class SubscriptionQuery(ListQuery):
    account: str | None = Field(None, pattern=CODE_PATTERN, description="an account code")


class DeliveryQuery(ListQuery):
    subscription: str | None = Field(None, pattern=id_pattern(SUBSCRIPTION_PREFIX), description="a subscription id")
    event_id: str | None = Field(None, pattern=id_pattern(EVENT_PREFIX), description="an event id")
    type: str | None = Field(None, max_length=64)
    status: DeliveryStatus | None = None


class EventQuery(ListQuery):
    account: str | None = Field(None, pattern=CODE_PATTERN, description="an account code")
    type: str | None = Field(None, max_length=64)
    since: Instant | None = None


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    redis: bool


class ApiKeyCreate(Input):
    account: str = Field(pattern=CODE_PATTERN, description="the account the key may act on")
    description: str = Field("", max_length=500, description="what the key is for, e.g. who holds it")


class ApiKeyView(BaseModel):
    id: str
    account: str
    description: str
    created_at: datetime
    last_used_at: datetime | None = Field(description="when the key was last used, to the minute")


class ApiKeyCreated(BaseModel):
    id: str
    key: str = Field(description="the bearer token to use; shown this once, the relay keeps only its hash")
    account: str
    description: str
    created_at: datetime


class ApiKeyList(Paged[ApiKeyView]):
    pass


class ApiKeyQuery(ListQuery):
    account: str | None = Field(None, pattern=CODE_PATTERN, description="an account code")
