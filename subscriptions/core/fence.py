"""Fencing: a write applies only while its writer still holds the lease it was given."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Fence:
    """A lock the writer must still hold for a commit to apply: the key and the token it wrote there."""

    key: str
    token: str
