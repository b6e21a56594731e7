"""Lua scripts: each kept in a ``.lua`` file beside the module that runs it, every key it touches declared in
``KEYS``, and its arguments passed as one JSON document (``ARGV[1]``, read with ``cjson.decode``) rather than
packed by position.

A script runs by its SHA (EVALSHA), falling back to its text once when Redis does not know it yet (a new or
restarted server). In a pipeline or transaction it is queued by its text (EVAL): Redis compiles it once and keeps
it by its hash, so this costs no more than EVALSHA, needs no SCRIPT EXISTS round trip before every batch, and
cannot meet NOSCRIPT half-way through a transaction after Redis restarted.
"""

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError


class Script:
    """One Lua script, read from its file once."""

    def __init__(self, path: Path) -> None:
        self.name = path.name
        self.text = path.read_text(encoding="utf-8")
        self.sha = hashlib.sha1(self.text.encode(), usedforsecurity=False).hexdigest()

    @classmethod
    def beside(cls, module_file: str, name: str) -> "Script":
        """The script ``name`` (e.g. ``"claim.lua"``) in the directory of the module whose ``__file__`` is given."""
        return cls(Path(module_file).with_name(name))

    async def run(self, redis: "Redis", keys: Sequence[str], args: Any, blobs: Sequence[str] = ()) -> Any:
        """Run the script with ``keys`` and ``args`` (encoded as one JSON argument) and answer what it returns.

        ``blobs`` (stored texts, such as records' JSON) follow as ``ARGV[2]`` onwards, as they are: the JSON
        argument names each by its position, so that they are neither escaped again nor decoded by the script.
        """
        payload = encode(args)
        try:
            return await redis.evalsha(self.sha, len(keys), *keys, payload, *blobs)  # type: ignore[misc]
        except NoScriptError:
            return await redis.eval(self.text, len(keys), *keys, payload, *blobs)  # type: ignore[misc]

    def queue(self, pipe: Pipeline, keys: Sequence[str], args: Any, blobs: Sequence[str] = ()) -> None:
        """Queue the script in ``pipe`` (EVAL by its text); its answer is among the pipeline's results."""
        pipe.eval(self.text, len(keys), *keys, encode(args), *blobs)


def encode(args: Any) -> str:
    """The one JSON argument of a script: compact, so that large batches cost as little to send as they can."""
    return json.dumps(args, separators=(",", ":"))
