"""Date-times as the sandbox reads and writes them, from Brightpearl's documentation (API.md 5, 8), not the
client's.

Brightpearl keeps UTC and renders every date-time in the account's own offset with milliseconds
(``2022-01-26T10:39:46.000-06:00``). Filters arrive as ISO-8601 with ``Z`` or an offset, or, as integrations
send them, a date or time without one (``2021-01-31``), which the sandbox reads in the account's zone. The
sandbox has its own reader so that a bug in the relay's (``workers.brightpearl.timestamps``) shows up as a
refusal in a test instead of agreeing with itself. The control API answers in UTC with ``Z``.
"""

import re
from datetime import UTC, datetime, timedelta, timezone

from subscriptions.core.errors import RelayError

_INSTANT = re.compile(
    r"(?P<date>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,6}))?)?)?"
    r"(?P<zone>Z|[+-]\d{2}:?\d{2})?",
    re.ASCII,
)


class TimestampError(RelayError, ValueError):
    """Text that is not an ISO-8601 date-time the sandbox can place in time."""


def _zone(text: str | None, default_offset_minutes: int | None, whole: str) -> timezone:
    if text is None:
        if default_offset_minutes is None:
            raise TimestampError(f"{whole!r} has no offset")
        return timezone(timedelta(minutes=default_offset_minutes))
    if text == "Z":
        return UTC
    digits = text[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + int(digits[2:])
    if minutes >= 24 * 60:
        raise TimestampError(f"{whole!r} has an offset beyond a day")
    return timezone(timedelta(minutes=-minutes if text[0] == "-" else minutes))


def parse_timestamp(text: str, default_offset_minutes: int | None = None) -> datetime:
    """The UTC instant ``text`` names: ``2026-01-01T10:00:00.500-06:00``, ``...Z``, a date alone. Text without an
    offset is read at ``default_offset_minutes`` and refused when that is ``None``."""
    found = _INSTANT.fullmatch(text)
    if found is None:
        raise TimestampError(f"{text!r} is not an ISO-8601 date-time")
    part = found.groupdict()
    fraction = (part["fraction"] or "").ljust(6, "0")
    try:
        local = datetime(
            int(part["date"]),
            int(part["month"]),
            int(part["day"]),
            int(part["hour"] or 0),
            int(part["minute"] or 0),
            int(part["second"] or 0),
            int(fraction),
            tzinfo=_zone(part["zone"], default_offset_minutes, text),
        )
    except ValueError as error:  # month 13, hour 25...
        raise TimestampError(f"{text!r} is not a date-time: {error}") from error
    return local.astimezone(UTC)


def format_in_offset(value: datetime, offset_minutes: int) -> str:
    """``2022-01-26T10:39:46.000-06:00``: ``value`` as Brightpearl renders it for an account at that offset."""
    local = value.astimezone(timezone(timedelta(minutes=offset_minutes)))
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    millis = local.microsecond // 1000
    return f"{local:%Y-%m-%dT%H:%M:%S}.{millis:03d}{sign}{hours:02d}:{minutes:02d}"


def format_utc(value: datetime) -> str:
    """``2026-11-26T10:15:02Z``, with milliseconds only when there are any: how the control API shows times."""
    utc = value.astimezone(UTC)
    millis = f".{utc.microsecond // 1000:03d}" if utc.microsecond else ""
    return f"{utc:%Y-%m-%dT%H:%M:%S}{millis}Z"


def to_ms(value: datetime) -> int:
    """Milliseconds since the Unix epoch (products' ``version`` counts them)."""
    return (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
