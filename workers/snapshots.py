"""Records as the relay last saw them, so that a change can say what each field was before.

A snapshot is the record's JSON, compressed with zlib (as base64 text: the relay's Redis connection speaks text).
Records of one resource share most of their bytes (field names, codes, the shape of a timestamp), so each
resource's snapshots are compressed with a preset dictionary: one record of that resource as Brightpearl answers
it, from the answers recorded against live accounts (``snapshot_dictionaries.json``; strings other than codes and
timestamps blanked). That makes a product's snapshot about a quarter of what zlib alone makes of it (the README
has the figures). A compressed stream names its dictionary by its Adler-32, so snapshots written before, without
one, still read, and a dictionary is never edited: a better one is added beside it.

Writes are queued on the poll's commit transaction, so a snapshot never runs ahead of the events derived from it.
A snapshot may expire (a closed order after a quiet spell), or name a dictionary this version does not have (one
written by a newer relay): a later change to that record then reports ``changes: null``, as for a record that
existed before the account was registered and has not changed since.
"""

import base64
import binascii
import json
import logging
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from subscriptions.store import keyspace
from workers.stream import Write

log = logging.getLogger(__name__)

DICTIONARIES: dict[str, bytes] = {
    resource: text.encode()
    for resource, text in json.loads((Path(__file__).parent / "snapshot_dictionaries.json").read_text()).items()
}
_BY_ID = {zlib.adler32(dictionary): dictionary for dictionary in DICTIONARIES.values()}
_FDICT = 0x20  # a zlib stream's flag: a preset dictionary, named by its Adler-32 in the next four bytes (RFC 1950)


def dictionary_for(resource: str) -> bytes | None:
    """The preset dictionary of a resource's snapshots (``stock.orders`` shares the orders' one); None: plain."""
    return DICTIONARIES.get(resource.rpartition(".")[2])


def pack(record: dict[str, Any], dictionary: bytes | None = None) -> str:
    """Compressed JSON as base64 text, with ``dictionary`` as the preset dictionary when given."""
    text = json.dumps(record, separators=(",", ":")).encode()
    compressor = zlib.compressobj(9, zdict=dictionary) if dictionary else zlib.compressobj(9)
    return base64.b64encode(compressor.compress(text) + compressor.flush()).decode()


def unpack(text: str) -> dict[str, Any]:
    """A snapshot's record, whichever dictionary (or none) it was packed with; ValueError when it names a
    dictionary this version does not have, or is not a snapshot."""
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error as error:
        raise ValueError(f"not a snapshot: {error}") from error
    if len(data) < 6 or not data[1] & _FDICT:
        return cast(dict[str, Any], json.loads(zlib.decompress(data)))
    dictionary = _BY_ID.get(int.from_bytes(data[2:6], "big"))
    if dictionary is None:
        raise ValueError("packed with a dictionary this version of the relay does not have")
    decompressor = zlib.decompressobj(zdict=dictionary)
    return cast(dict[str, Any], json.loads(decompressor.decompress(data) + decompressor.flush()))


class Snapshots:
    """The snapshots of one resource of one account."""

    def __init__(self, redis: "Redis", account: str, resource: str) -> None:
        self.redis = redis
        self.account = account
        self.resource = resource

    def key(self, record_id: int) -> str:
        return keyspace.snapshot(self.account, self.resource, record_id)

    async def load(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The snapshots that exist among ``ids``."""
        if not ids:
            return {}
        raw = cast(list[str | None], await self.redis.mget([self.key(i) for i in ids]))
        found = {}
        for record_id, text in zip(ids, raw, strict=True):
            if text is None:
                continue
            try:
                found[record_id] = unpack(text)
            except (ValueError, zlib.error) as error:  # its change reports changes: null, as for an expired one
                log.warning(
                    "%s: the snapshot of %s %s cannot be read: %s", self.account, self.resource, record_id, error
                )
        return found

    def write(self, record_id: int, record: dict[str, Any], ttl_s: int | None) -> Write:
        text = pack(record, dictionary_for(self.resource))

        def apply(pipe: Pipeline) -> None:
            pipe.set(self.key(record_id), text, ex=ttl_s)

        return apply
