"""Brightpearl's timestamps, normalised to UTC.

Brightpearl stores UTC but renders every date-time in the account's own offset
(``2022-01-26T10:39:46.000-06:00``), sometimes ``Z``, with milliseconds that are usually ``.000``. Everything
the relay compares or stores is an aware UTC ``datetime``; filters are sent as UTC with ``Z``.
"""

from datetime import UTC, datetime, timedelta, timezone

from subscriptions.core.envelope import format_timestamp
from subscriptions.core.errors import RelayError


class TimestampError(RelayError, ValueError):
    """A value Brightpearl sent as a date-time that is not ISO-8601 with an offset."""


def parse_timestamp(text: str) -> datetime:
    """An aware UTC datetime from an ISO-8601 string with an offset or ``Z``.

    A string without an offset is refused rather than guessed: Brightpearl always sends one, and a wrong
    guess would move a cursor by hours.
    """
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError as error:
        raise TimestampError(f"not an ISO-8601 date-time: {text!r}") from error
    if value.tzinfo is None:
        raise TimestampError(f"date-time without an offset: {text!r}")
    return value.astimezone(UTC)


def parse_optional_timestamp(value: object) -> datetime | None:
    """``parse_timestamp`` for a field that may be ``null`` (new orders' ``updatedOn`` is)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TimestampError(f"date-time is not a string: {value!r}")
    return parse_timestamp(value)


def format_utc(value: datetime) -> str:
    """``2026-11-26T10:15:02Z`` (milliseconds only when there are any), the form the relay sends and shows:
    :func:`subscriptions.core.envelope.format_timestamp`, the form of an event's timestamp."""
    return format_timestamp(value)


def format_in_offset(value: datetime, offset_minutes: int) -> str:
    """``2022-01-26T10:39:46.000-06:00``: how Brightpearl renders a UTC instant for an account in that offset."""
    local = value.astimezone(timezone(timedelta(minutes=offset_minutes)))
    sign = "+" if offset_minutes >= 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}{sign}{hours:02d}:{minutes:02d}"


def to_ms(value: datetime) -> int:
    """Unix milliseconds of an aware datetime."""
    return int(value.timestamp() * 1000)


def from_ms(value: int) -> datetime:
    """The aware UTC datetime of Unix milliseconds."""
    return datetime.fromtimestamp(value / 1000, tz=UTC)
