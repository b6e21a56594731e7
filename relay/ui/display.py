"""How the dashboard words things: times, badges, polling health. Pure functions, no I/O, no clock."""

from dataclasses import dataclass
from datetime import UTC, datetime

from relay.api.schemas import AccountStatus, ResourceStatus
from workers.cadence import BEHIND

LAGGING_S = 300.0  # an account whose slowest resource is further behind than this is shown as lagging


@dataclass(frozen=True)
class Badge:
    """A short word and its tone: ``ok``, ``warn``, ``bad``, ``idle`` or ``muted`` (a CSS class)."""

    label: str
    tone: str


DELIVERY_TONES = {"succeeded": "ok", "failed": "bad", "retrying": "warn", "pending": "idle", "skipped": "muted"}
STATE_TONES = {"active": "ok", "failing": "warn", "disabled": "bad"}


def delivery_badge(status: str) -> Badge:
    return Badge(status, DELIVERY_TONES.get(status, "idle"))


def state_badge(state: str) -> Badge:
    return Badge(state, STATE_TONES.get(state, "idle"))


def parse_time(value: str | None) -> datetime | None:
    """An aware datetime from the ISO text the poller writes, or ``None`` for none or nonsense."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def max_lag_s(status: AccountStatus) -> float | None:
    lags = [r.lag_s for r in status.resources.values() if r.lag_s is not None]
    return max(lags) if lags else None


AUTH_BADGES = {
    "authorization_required": Badge("authorization required", "warn"),
    "active": Badge("active", "ok"),
    "reauthorization_required": Badge("reauthorization required", "bad"),
}
CONNECT_HELP = {
    "authorization_required": (
        "First connection: Brightpearl asks the account's admin to allow the relay's app and sends you back here. "
        "The relay then takes its starting point and sends a webhook for every change after it; nothing is polled "
        "before."
    ),
    "reauthorization_required": (
        "Authorize again: Brightpearl no longer accepts the relay's tokens (the app was revoked or removed). Polling "
        "is paused and nothing is lost: once authorized again it resumes where it stopped, and the changes made "
        "meanwhile are delivered."
    ),
    "active": (
        "Reconnect: the account is connected. Connecting again gives the relay new tokens (after the app was "
        "reinstalled, or to connect as another Brightpearl user); polling goes on where it is."
    ),
}


def auth_badge(auth_state: str | None) -> Badge | None:
    """An OAuth account's authorization in words; ``None`` for an account that has none (a private app's)."""
    if auth_state is None:
        return None
    return AUTH_BADGES.get(auth_state, Badge(auth_state.replace("_", " "), "idle"))


def connect_help(auth_state: str | None) -> str:
    """What the Connect to Brightpearl button does for an OAuth account in ``auth_state``."""
    return CONNECT_HELP.get(auth_state or "", CONNECT_HELP["active"])


def polling_health(status: AccountStatus) -> Badge:
    """How an account's polling is doing, in one word: an OAuth account waiting for an authorization is not polled,
    and says so; otherwise an error newer than the last success wins."""
    if status.auth_state in ("authorization_required", "reauthorization_required"):
        return AUTH_BADGES[status.auth_state]
    last_ok = parse_time(status.last_success_at)
    last_error = parse_time(status.last_error_at)
    if last_error is not None and (last_ok is None or last_error > last_ok):
        return Badge("error", "bad")
    if last_ok is None:
        return Badge("not polled yet", "idle")
    lag = max_lag_s(status)
    if lag is not None and lag > LAGGING_S:
        return Badge("lagging", "warn")
    return Badge("healthy", "ok")


def actual_interval(resource: ResourceStatus) -> Badge | None:
    """A resource's actual poll interval in words, ``warn`` when the workers poll it more than 10 % less often than
    planned (they cannot keep up), ``ok`` otherwise; ``None`` before it is measured."""
    actual = resource.actual_poll_interval_s
    if actual is None:
        return None
    behind = actual > resource.effective_poll_interval_s * BEHIND
    return Badge(f"{actual:.1f} s" if behind else f"{actual:g} s", "warn" if behind else "ok")


HINT_TONES = {"healthy": "ok", "degraded": "warn", "off": "muted"}


def hints_health(status: AccountStatus) -> Badge:
    """How an account's hints are doing: healthy, degraded (polls found changes no hint announced), or off; a
    failed subscribing shows as an error while hints are on."""
    hints = status.hints
    if hints.state != "off" and hints.error:
        return Badge("hints error", "bad")
    return Badge(f"hints {hints.state}", HINT_TONES[hints.state])


def when(value: datetime | str | None) -> str:
    """A time as people read it, in UTC to the second: ``2026-11-26 10:15:02``."""
    moment = parse_time(value) if isinstance(value, str) else value
    if moment is None:
        return "–"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def ago(value: datetime | str | None, now: datetime) -> str:
    """How long before ``now``: ``just now``, ``42 s ago``, ``3 min ago``, ``5 h ago``, ``2 d ago``;
    ``in 5 min`` for a time still to come."""
    moment = parse_time(value) if isinstance(value, str) else value
    if moment is None:
        return "never"
    seconds = (now - moment).total_seconds()
    ahead = seconds < 0
    seconds = abs(seconds)
    if seconds < 1:
        return "just now" if not ahead else "now"
    if seconds < 60:
        text = f"{seconds:.0f} s"
    elif seconds < 3600:
        text = f"{seconds // 60:.0f} min"
    elif seconds < 86_400:
        text = f"{seconds // 3600:.0f} h"
    else:
        text = f"{seconds // 86_400:.0f} d"
    return f"in {text}" if ahead else f"{text} ago"


def percent(rate: float | None) -> str:
    """A success rate in 0..1 as ``97.5 %``; a dash before any attempt."""
    if rate is None:
        return "–"
    return f"{rate * 100:.0f} %" if rate in (0, 1) else f"{rate * 100:.1f} %"


def short_url(url: str, limit: int = 48) -> str:
    """A URL cut to ``limit`` characters with an ellipsis, for table cells (the full one goes in a title)."""
    plain = url.removeprefix("https://").removeprefix("http://")
    return plain if len(plain) <= limit else plain[: limit - 1] + "…"


def duration(seconds: int) -> str:
    """A wait in words, rounded up: ``45 seconds``, ``1 minute``, ``13 minutes``."""
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = -(-seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
