"""Standard Webhooks signatures (https://www.standardwebhooks.com), without I/O and without a clock.

A secret is ``whsec_`` + base64 of random bytes; the HMAC-SHA256 key is the decoded part. The signed content
is ``{webhook-id}.{webhook-timestamp}.{body}``; the header value is ``v1,`` + base64 of the digest, several
space-separated while a rotated secret is still valid.
"""

import base64
import binascii
import functools
import hashlib
import hmac
import secrets

from subscriptions.core.errors import InvalidInput

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
SECRET_BYTES = 32
DEFAULT_TOLERANCE_S = 300


class SignatureError(InvalidInput):
    """A webhook whose signature header is missing, malformed, stale or does not match."""


def new_secret() -> str:
    """A fresh ``whsec_`` secret of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


@functools.lru_cache(maxsize=4096)  # decoded once per secret, not once per attempt
def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret (the prefix is optional, as in the reference libraries)."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as error:
        raise InvalidInput("a webhook secret is 'whsec_' followed by base64") from error


def sign(key: bytes, msg_id: str, timestamp_s: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of ``body`` for the message id and timestamp."""
    content = f"{msg_id}.{timestamp_s}.".encode() + body
    return "v1," + base64.b64encode(hmac.digest(key, content, hashlib.sha256)).decode()


def signature_header(keys: list[bytes], msg_id: str, timestamp_s: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one signature per key, space-separated, newest key first."""
    return " ".join(sign(key, msg_id, timestamp_s, body) for key in keys)


def verify(
    key: bytes,
    msg_id: str,
    timestamp_s: int,
    signature: str,
    body: bytes,
    *,
    now_s: int,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> None:
    """Raise :class:`SignatureError` unless one ``v1`` signature in ``signature`` matches and the timestamp is
    within ``tolerance_s`` of ``now_s``. Unknown versions are ignored, as the specification asks."""
    if abs(now_s - timestamp_s) > tolerance_s:
        raise SignatureError(f"webhook-timestamp {timestamp_s} is more than {tolerance_s} s from now ({now_s})")
    expected = sign(key, msg_id, timestamp_s, body)
    for candidate in signature.split():
        version, _, _ = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(candidate, expected):
            return
    raise SignatureError("no signature in webhook-signature matches")
