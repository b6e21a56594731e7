import re
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from subscriptions.core.errors import InvalidInput
from subscriptions.core.events import EVENT_TYPES, matches_any, pattern_matches, validate_patterns


@pytest.mark.parametrize(
    ("pattern", "event", "matches"),
    [
        ("order.created", "order.created", True),
        ("order.created", "order.created.x", False),
        ("order.*", "order.created", True),
        ("order.*", "order.modified.order-status", True),  # '*' crosses dots
        ("order.*", "orders.created", False),
        ("*", "goods-out-note.modified.shipped", True),
        ("*.created", "contact.created", True),
        ("goods-out-note.modified.*", "goods-out-note.modified.packed", True),
        ("goods-out-note.modified.*", "goods-out-note.created", False),
        ("order.modified", "order.modified.order-status", False),  # exact names are exact
        ("product.*modified", "product.modified", True),
        ("order.**created", "order.created", True),  # a run of stars is one star
        ("o*r*d*e*r*.*", "order.created", True),
        ("*ed*ed", "order.created", False),  # the same text twice needs two places
        ("*ed*ed", "order.modified.order-status", False),
        ("*d*d*d*", "order.modified.order-status", True),
        ("order.created*", "order.created", True),  # a star may match nothing
        ("ab*ba", "aba", False),  # the first and last parts may not overlap
    ],
)
def test_pattern_matches(pattern: str, event: str, matches: bool) -> None:
    assert pattern_matches(pattern, event) is matches


_NAMES = st.text(alphabet="ab.*", max_size=8)


@given(pattern=_NAMES, name=st.text(alphabet="ab.", max_size=10))
def test_matching_agrees_with_the_glob_definition(pattern: str, name: str) -> None:
    """On short inputs, where backtracking is harmless, the linear matcher agrees with a regular expression in
    which each star is ``.*``."""
    regex = "".join(".*" if part == "*" else re.escape(part) for part in re.split(r"(\*)", pattern))
    assert pattern_matches(pattern, name) is (re.fullmatch(regex, name, re.DOTALL) is not None)


def test_patterns_that_froze_the_relay_are_answered_at_once() -> None:
    """145 stars then ``a`` hung registration, and 12 stars before ``order.created`` froze the whole process at
    the next order for minutes (each star a ``.*`` that backtracks). Run where a hang cannot take the suite
    with it: a regular expression in C cannot be interrupted by a signal, which is why SIGTERM was ignored."""
    code = (
        "from subscriptions.core.errors import InvalidInput\n"
        "from subscriptions.core.events import EVENT_TYPES, pattern_matches, validate_patterns\n"
        "for pattern in ['*' * 145 + 'a', '*' * 12 + 'order.created', '*a' * 90 + '*']:\n"
        "    try:\n"
        "        validate_patterns([pattern])\n"
        "    except InvalidInput:\n"
        "        pass\n"
        "    for name in EVENT_TYPES:\n"
        "        pattern_matches(pattern, name)\n"
        "        pattern_matches(pattern, name + '.' + 'x' * 60 + '!')\n"
        "print('done')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20, check=False)
    assert result.stdout.strip() == "done", result.stderr


def test_runs_of_stars_are_stored_as_one() -> None:
    assert validate_patterns(["*" * 12 + "order.created", "order.**"]) == ["*order.created", "order.*"]


def test_at_most_twenty_patterns_of_two_hundred_characters() -> None:
    with pytest.raises(InvalidInput, match="at most 20"):
        validate_patterns([f"*{'x' * i}*" for i in range(21)])
    assert validate_patterns(["order.created", "order.*"] * 11) == ["order.created", "order.*"]  # 2, once each
    with pytest.raises(InvalidInput, match="longer than 200"):
        validate_patterns(["order." + "c" * 195 + "*"])


def test_matches_any() -> None:
    assert matches_any(["contact.*", "order.created"], "order.created")
    assert not matches_any(["contact.*"], "order.created")


def test_validate_patterns_keeps_order_and_drops_duplicates() -> None:
    assert validate_patterns(["order.*", "order.created", "order.*"]) == ["order.*", "order.created"]


@pytest.mark.parametrize("pattern", ["order.deleted", "orders.*", "", "ORDER.created", "order created", "x*"])
def test_patterns_matching_no_event_are_refused(pattern: str) -> None:
    with pytest.raises(InvalidInput, match="matches no event"):
        validate_patterns([pattern])


def test_at_least_one_pattern() -> None:
    with pytest.raises(InvalidInput, match="at least one"):
        validate_patterns([])


def test_the_contract_table() -> None:
    assert set(EVENT_TYPES) == {
        "order.created",
        "order.modified.order-status",
        "order.modified",
        "product.modified.on-hand-modified",
        "goods-out-note.created",
        "goods-out-note.modified.printed",
        "goods-out-note.modified.picked",
        "goods-out-note.modified.packed",
        "goods-out-note.modified.shipped",
        "goods-out-note.modified.un-printed",
        "goods-out-note.modified.un-picked",
        "goods-out-note.modified.un-packed",
        "goods-out-note.modified",
        "goods-out-note.destroyed",
        "product.created",
        "product.modified",
        "contact.created",
        "contact.modified",
        "ping",
    }
