"""The sandbox's own ID-set reader and writer, from API.md 6.1 and the recorded OPTIONS answer."""

import pytest

from relay.sandbox.idsets import IdSetError, Part, chunked, compressed, parse_id_set, parse_parts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8", [8]),
        ("1-5", [1, 2, 3, 4, 5]),
        ("1,5,9", [1, 5, 9]),
        ("9-10,1,5", [9, 10, 1, 5]),  # unordered is allowed; the order written is kept
        ("1-3,2-4", [1, 2, 3, 4]),  # each id once
        (" 1 , 2-3 ", [1, 2, 3]),  # leniently, blanks around elements
        ("5-5", [5]),  # leniently, a range of one
    ],
)
def test_parse_id_set(text: str, expected: list[int]) -> None:
    assert parse_id_set(text) == expected


@pytest.mark.parametrize("text", ["", ",", "1,", "a", "1-", "-1", "5-1", "1.5", "1;2", "1-2-3", "+1", "١", "1-٣"])
def test_parse_id_set_refuses(text: str) -> None:
    with pytest.raises(IdSetError):
        parse_id_set(text)


@pytest.mark.parametrize("text", [" 1", "1, 2", "5-5"])
def test_strict_refuses_blanks_and_ranges_that_do_not_ascend(text: str) -> None:
    parse_id_set(text)
    with pytest.raises(IdSetError):
        parse_id_set(text, strict=True)


def test_parts_tell_a_range_from_a_single_id() -> None:
    assert parse_parts("3,7-9") == [Part(3, 3, False), Part(7, 9, True)]


def test_expanding_is_bounded() -> None:
    assert len(parse_id_set("1-10", max_ids=10)) == 10
    with pytest.raises(IdSetError):
        parse_id_set("1-11", max_ids=10)
    with pytest.raises(IdSetError):
        parse_id_set("1-999999999")


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        ([], ""),
        ([7], "7"),
        ([1, 2, 5, 8, *range(10, 42), 43, 44], "1-2,5,8,10-41,43-44"),  # the recorded getUris
        ([3, 1, 2, 2], "1-3"),
    ],
)
def test_compressed_as_the_recorded_options_answer(ids: list[int], expected: str) -> None:
    assert compressed(ids) == expected


def test_chunked_keeps_each_set_within_the_cap() -> None:
    assert chunked(range(1, 251), 200) == ["1-200", "201-250"]
    assert chunked([5, 1, 3], 2) == ["1,3", "5"]
    assert chunked([], 200) == []
    with pytest.raises(ValueError):  # noqa: PT011
        chunked([1], 0)
