"""``diff``: what changed between two states of a record, custom fields one by one. Pure: a table."""

from typing import Any

import pytest

from workers.changes import diff

BASE: dict[str, Any] = {"id": 7, "version": 2, "updatedOn": "2026-11-26T10:00:00Z", "reference": "A"}
CF = "customFields"


@pytest.mark.parametrize(
    ("before", "after", "changes"),
    [
        pytest.param(BASE, BASE | {"version": 3, "updatedOn": "x"}, {}, id="stamps-alone-are-no-change"),
        pytest.param(BASE, BASE | {"reference": "B"}, {"reference": {"before": "A", "after": "B"}}, id="a-field"),
        pytest.param(BASE, BASE | {"closedOn": "t"}, {"closedOn": {"before": None, "after": "t"}}, id="a-new-key"),
        pytest.param(
            BASE | {CF: {"PCF_GIFTWRAP": False, "PCF_NOTE": None}},
            BASE | {CF: {"PCF_GIFTWRAP": True, "PCF_NOTE": None}},
            {"customFields.PCF_GIFTWRAP": {"before": False, "after": True}},
            id="one-custom-field-named-alone",
        ),
        pytest.param(
            BASE | {CF: {"PCF_A": 1}},
            BASE | {CF: {"PCF_B": "x"}, "reference": "B"},
            {
                "customFields.PCF_A": {"before": 1, "after": None},
                "customFields.PCF_B": {"before": None, "after": "x"},
                "reference": {"before": "A", "after": "B"},
            },
            id="each-custom-field-its-own-entry-beside-other-fields",
        ),
        pytest.param(
            BASE | {CF: {"PCF_A": None}}, BASE | {CF: {}}, {}, id="an-unset-field-and-a-null-one-are-the-same"
        ),
        pytest.param(BASE | {CF: {}}, BASE | {CF: {"PCF_NEW": None}}, {}, id="a-field-defined-later-and-still-unset"),
        pytest.param(
            BASE,
            BASE | {CF: {"PCF_GIFTWRAP": True, "PCF_NOTE": "hi"}},
            {},
            id="a-snapshot-from-before-custom-fields-were-read-says-nothing-of-them",
        ),
        pytest.param(
            BASE,
            BASE | {CF: {"PCF_GIFTWRAP": True}, "reference": "B"},
            {"reference": {"before": "A", "after": "B"}},
            id="upgrade-still-reports-other-changes",
        ),
        pytest.param(BASE | {CF: {"PCF_A": 1}}, BASE, {}, id="a-read-without-custom-fields-says-nothing-of-them"),
        pytest.param(
            BASE | {CF: None}, BASE | {CF: {"PCF_A": 1}}, {CF: {"before": None, "after": {"PCF_A": 1}}}, id="odd-shape"
        ),
    ],
)
def test_diff(before: dict[str, Any], after: dict[str, Any], changes: dict[str, Any]) -> None:
    assert diff(before, after) == changes
