import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.brightpearl.idset import IdSetError, chunk_id_sets, compress_ids, parse_id_set


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("8", [8]),
        ("1-5", [1, 2, 3, 4, 5]),
        ("1,5,9", [1, 5, 9]),
        ("1-3,7,9-10", [1, 2, 3, 7, 9, 10]),
        ("100-102,1", [100, 101, 102, 1]),  # unordered sets are allowed
        (" 4 , 2-3 ", [4, 2, 3]),
        ("3,3,2-4", [3, 2, 4]),  # duplicates named once
    ],
)
def test_parse_id_set(text: str, ids: list[int]) -> None:
    assert parse_id_set(text) == ids


@pytest.mark.parametrize("text", ["", ",", "1,,2", "a", "5-1", "1-", "-3", "1.5", "1-2-3", "BAD PARAM"])
def test_parse_id_set_refuses(text: str) -> None:
    with pytest.raises(IdSetError):
        parse_id_set(text)


def test_parse_id_set_bounds_expansion() -> None:
    with pytest.raises(IdSetError, match="more than 200"):
        parse_id_set("1-999999999", max_ids=200)
    assert len(parse_id_set("1-200", max_ids=200)) == 200


@pytest.mark.parametrize(
    ("ids", "text"),
    [
        ([], ""),
        ([7], "7"),
        ([1, 2], "1,2"),
        ([1, 2, 3], "1-3"),
        ([5, 3, 1, 2, 4, 7], "1-5,7"),
        ([1, 2, 3, 5, 6, 8, 9, 10], "1-3,5,6,8-10"),
        ([10, 10, 11, 12], "10-12"),
    ],
)
def test_compress_ids(ids: list[int], text: str) -> None:
    assert compress_ids(ids) == text


def test_chunk_id_sets_respects_the_cap() -> None:
    chunks = chunk_id_sets(range(1, 451), 200)
    assert chunks == ["1-200", "201-400", "401-450"]
    assert chunk_id_sets([], 200) == []
    with pytest.raises(ValueError, match="at least 1"):
        chunk_id_sets([1], 0)


@given(st.sets(st.integers(min_value=0, max_value=10_000), max_size=300), st.integers(min_value=1, max_value=250))
def test_chunks_round_trip(ids: set[int], cap: int) -> None:
    chunks = chunk_id_sets(ids, cap)
    parsed = [parse_id_set(chunk) for chunk in chunks]
    assert all(len(p) <= cap for p in parsed)
    assert sorted(i for p in parsed for i in p) == sorted(ids)
