"""Recorded Brightpearl exchanges (``tests/fixtures/recorded``) as the sandbox tests compare with them: the
parsed body and its message type, and the structure of a JSON value."""

import ast
import json
from dataclasses import dataclass
from typing import Any

from tests import recorded


@dataclass(frozen=True)
class Recording:
    status: int
    message_type: str
    body: Any  # the JSON body, parsed


def load(name: str) -> Recording:
    """The recording ``name``."""
    lines = (recorded.RECORDED / name).read_text().split("\n")
    status = ast.literal_eval(lines[3].removeprefix("STATUS "))["code"]
    headers = json.loads(lines[4].removeprefix("RESP HEADERS: "))
    return Recording(status, headers["Message-Type"][0], json.loads("\n".join(lines[5:])))


def shape(value: Any) -> Any:
    """The structure of a JSON value: keys in order and the types of leaves (a list by its first item)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value[:1]]
    return type(value).__name__
