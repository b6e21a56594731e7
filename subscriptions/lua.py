"""Lua scripts queued in a pipeline or transaction."""

from collections.abc import Sequence

from redis.asyncio.client import Pipeline
from redis.typing import EncodableT


def queue_eval(pipe: Pipeline, script: str, keys: Sequence[str], args: Sequence[EncodableT]) -> None:
    """Queue ``script`` by its text (EVAL). Redis compiles it once and keeps it by its hash, so this costs no
    more than EVALSHA; unlike redis-py's registered scripts in a pipeline, it needs no SCRIPT EXISTS round
    trip before every batch, and cannot meet NOSCRIPT half-way through a transaction after Redis restarted."""
    pipe.eval(script, len(keys), *keys, *args)  # type: ignore[arg-type]  # redis-py types the args as str alone
