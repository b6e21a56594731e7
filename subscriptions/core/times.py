"""Time as the store keeps it: Unix milliseconds."""

from datetime import datetime


def ms(value: datetime) -> int:
    """Unix milliseconds of an aware datetime: the score of every due set and index."""
    return int(value.timestamp() * 1000)
