from datetime import UTC, datetime

import pytest

from workers.brightpearl.timestamps import (
    TimestampError,
    format_in_offset,
    format_utc,
    parse_optional_timestamp,
    parse_timestamp,
)


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2022-01-26T10:39:46.000-06:00", datetime(2022, 1, 26, 16, 39, 46, tzinfo=UTC)),
        ("2025-08-28T14:59:22.970-06:00", datetime(2025, 8, 28, 20, 59, 22, 970000, tzinfo=UTC)),
        ("2026-01-01T08:00:00.000+11:00", datetime(2025, 12, 31, 21, 0, 0, tzinfo=UTC)),
        ("2026-11-26T10:15:02Z", datetime(2026, 11, 26, 10, 15, 2, tzinfo=UTC)),
        ("2026-11-26T10:15:02.5+05:30", datetime(2026, 11, 26, 4, 45, 2, 500000, tzinfo=UTC)),
    ],
)
def test_parse_timestamp_normalises_to_utc(text: str, utc: datetime) -> None:
    assert parse_timestamp(text) == utc
    assert parse_timestamp(text).tzinfo == UTC


@pytest.mark.parametrize("text", ["2022-01-26T10:39:46.000", "yesterday", "", "2022-13-01T00:00:00Z"])
def test_parse_timestamp_refuses_what_it_cannot_place(text: str) -> None:
    with pytest.raises(TimestampError):
        parse_timestamp(text)


def test_optional_timestamp_accepts_null() -> None:
    assert parse_optional_timestamp(None) is None
    assert parse_optional_timestamp("2026-11-26T10:15:02Z") == datetime(2026, 11, 26, 10, 15, 2, tzinfo=UTC)
    with pytest.raises(TimestampError):
        parse_optional_timestamp(12)


@pytest.mark.parametrize(
    ("offset", "text"),
    [
        (-360, "2022-01-26T10:39:46.000-06:00"),
        (660, "2022-01-27T03:39:46.000+11:00"),
        (0, "2022-01-26T16:39:46.000+00:00"),
        (330, "2022-01-26T22:09:46.000+05:30"),
    ],
)
def test_format_in_offset_round_trips(offset: int, text: str) -> None:
    instant = datetime(2022, 1, 26, 16, 39, 46, tzinfo=UTC)
    assert format_in_offset(instant, offset) == text
    assert parse_timestamp(text) == instant


def test_format_utc() -> None:
    assert format_utc(datetime(2026, 11, 26, 10, 15, 2, tzinfo=UTC)) == "2026-11-26T10:15:02Z"
    assert format_utc(datetime(2026, 11, 26, 10, 15, 2, 970000, tzinfo=UTC)) == "2026-11-26T10:15:02.970Z"
