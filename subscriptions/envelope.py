"""What a webhook says: an event as a detector or a ping makes it, before it is stored and fanned out."""

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class NewEvent:
    """An event as detected, before it is stored."""

    id: str
    type: str
    account: str
    resource_id: int | str | None
    timestamp: str
    body: str


def event_body(event_type: str, timestamp: str, data: dict[str, Any]) -> str:
    """The JSON text of a webhook: ``{"type", "timestamp", "data"}``, serialised once for every delivery."""
    return json.dumps({"type": event_type, "timestamp": timestamp, "data": data}, separators=(",", ":"))
