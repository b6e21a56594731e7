"""Identifiers: random ones for things people create, derived ones for things the relay detects.

An event's id derives from what changed, so the same change detected twice (after a crash, say) keeps its id
and receivers can drop the duplicate: ``created`` events from (account, event, resource id); other events
also from the state after the change. A delivery's id derives from its event and subscription, so writing it
twice is harmless.

Every id is a prefix, ``_``, then letters, digits, ``_`` or ``-`` (random and derived ids use 26 lower-case
Crockford base32 characters; tests and the sandbox make readable ones such as ``sub_acme``). An id from outside
is checked against that alphabet before it names a Redis key, so ``sub_x:health`` or ``sha256:…`` can never
reach another key (see :func:`is_id`).
"""

import hashlib
import json
import re
import secrets

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case: no i, l, o, u


# What each kind of id starts with, by what it identifies.
SUBSCRIPTION_PREFIX = "sub"
DELIVERY_PREFIX = "dlv"
EVENT_PREFIX = "evt"
API_KEY_PREFIX = "key"
RECOVERY_PREFIX = "rec"
MAX_ID_TAIL = 64  # characters after the prefix


def id_pattern(prefix: str) -> str:
    """The regular expression (anchored, in the dialect of both Python and JSON Schema) of ``prefix``'s ids."""
    return rf"^{prefix}_[0-9A-Za-z_-]{{1,{MAX_ID_TAIL}}}$"


_COMPILED: dict[str, re.Pattern[str]] = {}


def is_id(value: str, prefix: str) -> bool:
    """Whether ``value`` has the shape of an id starting with ``prefix``: nothing in it can name another key."""
    compiled = _COMPILED.get(prefix)
    if compiled is None:
        compiled = _COMPILED[prefix] = re.compile(id_pattern(prefix).removeprefix("^").removesuffix("$"))
    return compiled.fullmatch(value) is not None


_PAIRS = [high + low for high in _ALPHABET for low in _ALPHABET]  # 10 bits at a time: half the big-int divisions


def _base32(data: bytes, length: int) -> str:
    """The low ``5 * length`` bits of ``data`` (a big-endian number) as ``length`` digits, most significant first."""
    number = int.from_bytes(data, "big")
    chunks = []
    if length % 2:
        number, index = divmod(number, 32)
        chunks.append(_ALPHABET[index])
    for _ in range(length // 2):
        number, index = divmod(number, 1024)
        chunks.append(_PAIRS[index])
    return "".join(reversed(chunks))


def random_id(prefix: str) -> str:
    """``{prefix}_`` + 26 random base32 characters (130 bits), e.g. ``sub_8f3k…``."""
    return f"{prefix}_{_base32(secrets.token_bytes(17), 26)}"


def _digest_id(prefix: str, *parts: str) -> str:
    material = "\x1f".join(parts).encode()
    return f"{prefix}_{_base32(hashlib.sha256(material).digest(), 26)}"


def event_id(account: str, event_type: str, resource_id: int | str, state_after: object = None) -> str:
    """The id of an event: the same inputs always give the same id.

    ``state_after`` is ``None`` when the event's name and resource say it all (``created``, a goods-out note
    reaching a stage, which happens once); for other events it is the resource's state after the change (any
    JSON value), so that two different changes to one resource get two ids.
    """
    parts = [account, event_type, str(resource_id)]
    if state_after is not None:
        parts.append(json.dumps(state_after, sort_keys=True, separators=(",", ":"), default=str))
    return _digest_id(EVENT_PREFIX, *parts)


def delivery_id(event_id_: str, subscription_id: str) -> str:
    """The id of the delivery of one event to one subscription."""
    return _digest_id(DELIVERY_PREFIX, event_id_, subscription_id)
