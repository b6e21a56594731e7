"""The sandbox's own date-time reader and writers, from API.md 5 and 8 (recorded renderings)."""

from datetime import UTC, datetime

import pytest

from relay.sandbox.times import TimestampError, format_in_offset, format_utc, parse_timestamp, to_ms


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "default_offset", "expected"),
    [
        ("2022-01-26T10:39:46.000-06:00", None, utc(2022, 1, 26, 16, 39, 46)),  # as recorded
        ("2026-01-01T00:00:00Z", None, utc(2026, 1, 1)),
        ("2026-01-01T10:00:00.5+11:00", None, utc(2025, 12, 31, 23, 0, 0, 500_000)),
        ("2026-01-01T10:00:00.123456+0530", None, utc(2026, 1, 1, 4, 30, 0, 123_456)),
        ("2026-01-01T10:00Z", None, utc(2026, 1, 1, 10)),
        ("2026-01-01", -360, utc(2026, 1, 1, 6)),  # a date alone, in the account's zone
        ("2026-01-01T00:00:00", 660, utc(2025, 12, 31, 13)),
    ],
)
def test_parse_timestamp(text: str, default_offset: int | None, expected: datetime) -> None:
    assert parse_timestamp(text, default_offset) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-01T00:00:00",  # no offset and no zone to read it in
        "2026-01-01",
        "2026-13-01T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01T10:00:00 11:00",  # an offset's '+' sent unencoded arrives as a blank
        "2026-01-01T10:00:00+24:00",
        "yesterday",
        "",
        " 2026-01-01T00:00:00Z",
        "2026-01-01T00:00:00.1234567Z",
    ],
)
def test_parse_timestamp_refuses(text: str) -> None:
    with pytest.raises(TimestampError):
        parse_timestamp(text)


@pytest.mark.parametrize(
    ("value", "offset", "expected"),
    [
        (utc(2022, 1, 26, 16, 39, 46), -360, "2022-01-26T10:39:46.000-06:00"),  # as recorded
        (utc(2026, 1, 1, 0, 0, 0, 250_999), 660, "2026-01-01T11:00:00.250+11:00"),
        (utc(2026, 1, 1), 0, "2026-01-01T00:00:00.000+00:00"),
        (utc(2026, 1, 1), 330, "2026-01-01T05:30:00.000+05:30"),
        (utc(2026, 1, 1), -570, "2025-12-31T14:30:00.000-09:30"),
    ],
)
def test_format_in_offset(value: datetime, offset: int, expected: str) -> None:
    assert format_in_offset(value, offset) == expected
    assert parse_timestamp(expected) == value.replace(microsecond=value.microsecond // 1000 * 1000)


def test_format_utc_shows_milliseconds_only_when_there_are_any() -> None:
    assert format_utc(utc(2026, 11, 26, 10, 15, 2)) == "2026-11-26T10:15:02Z"
    assert format_utc(utc(2026, 11, 26, 10, 15, 2, 7_000)) == "2026-11-26T10:15:02.007Z"


def test_to_ms() -> None:
    assert to_ms(utc(1970, 1, 1)) == 0
    assert to_ms(utc(2026, 1, 1, 0, 0, 0, 999_999)) == 1_767_225_600_999
