"""Brightpearl tokens and webhook signing secrets encrypted at rest: Fernet (AES-128-CBC with HMAC-SHA256) under
the keys of ``RELAY_ENCRYPTION_KEY``.

The setting holds one or more Fernet keys, comma-separated. The first encrypts; every one of them decrypts.
To rotate, put a new key first and keep the old one after it (``NEW,OLD``); once every process runs with
both, each process re-encrypts the stored tokens and secrets under the new key when it starts
(``Store.reseal_account_tokens``, ``Store.reseal_subscription_secrets`` in :mod:`subscriptions.store.records`), after
which the old key can go.

A stored value is either ``enc:v1:`` followed by a Fernet token, or, written before a key was set, the plain
value itself: still readable, and encrypted when a process with a key starts or the next time it is saved.

Decrypting costs tens of microseconds, and the delivery loop opens the subscriptions of every batch it claims,
so a cipher remembers what it decrypted (a bounded map from stored text to plain text). Fernet encrypts with a
fresh IV each time, so a value that changes is stored as a new text and never meets an old entry: the memo
cannot go stale. Nothing here does I/O.
"""

from collections import OrderedDict
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken

from subscriptions.core.errors import RelayError

ENCRYPTED_PREFIX = "enc:v1:"
SETTING = "RELAY_ENCRYPTION_KEY"
GENERATE_KEY_COMMAND = "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
MEMO_ENTRIES = 10_000  # decrypted values kept (about 4 MB): both secrets of 5,000 subscriptions


class InvalidKey(RelayError, ValueError):
    """A key in ``RELAY_ENCRYPTION_KEY`` is not a Fernet key (32 url-safe base64-encoded bytes)."""


class TokenKeyError(RelayError):
    """A stored token or signing secret is encrypted and the configured keys cannot decrypt it: the key is
    missing or wrong."""


def generate_key() -> str:
    """A new random Fernet key, as ``RELAY_ENCRYPTION_KEY`` takes it."""
    return Fernet.generate_key().decode()


def is_encrypted(stored: str) -> bool:
    return stored.startswith(ENCRYPTED_PREFIX)


class TokenCipher:
    """Encrypts tokens and secrets with the first of its keys and decrypts them with any of them, remembering
    the last ``memo_entries`` values it decrypted."""

    def __init__(self, keys: Sequence[str], *, memo_entries: int = MEMO_ENTRIES) -> None:
        if not keys:
            raise InvalidKey(f"expected at least one Fernet key; generate one with {GENERATE_KEY_COMMAND}")
        fernets = []
        for number, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.strip().encode()))
            except ValueError:
                which = f"key {number} of {len(keys)}" if len(keys) > 1 else "the key"
                raise InvalidKey(
                    f"{which} is not a Fernet key (32 url-safe base64-encoded bytes); generate one with "
                    f"{GENERATE_KEY_COMMAND}"
                ) from None
        self._fernets = fernets
        self._memo: OrderedDict[str, tuple[str, bool]] = OrderedDict()  # stored -> (plain, under the first key)
        self._memo_entries = memo_entries

    @classmethod
    def from_setting(cls, value: str) -> "TokenCipher":
        """A cipher from the setting's text: Fernet keys, comma-separated, the one that encrypts first."""
        return cls([part for part in value.split(",") if part.strip()])

    def encrypt(self, token: str) -> str:
        """The stored form of ``token``: the prefix and a Fernet token (different every time)."""
        return ENCRYPTED_PREFIX + self._fernets[0].encrypt(token.encode()).decode()

    def decrypt(self, stored: str, what: str = "a stored token") -> str:
        """The token a stored value holds; a plain (never encrypted) value is the token itself.

        ``what`` names the token in the error, e.g. ``"the Brightpearl token of account 'acme'"``.
        """
        if not is_encrypted(stored):
            return stored
        opened = self._open(stored)
        if opened is None:
            raise TokenKeyError(
                f"{SETTING} cannot decrypt {what}: none of its keys is the one it was encrypted with; "
                f"set {SETTING} to that key (while rotating: the new key, a comma, then the old one)"
            )
        return opened[0]

    def is_current(self, stored: str) -> bool:
        """Whether ``stored`` is encrypted with the first key (so re-encrypting it would change nothing)."""
        if not is_encrypted(stored):
            return False
        opened = self._open(stored)
        return opened is not None and opened[1]

    def _open(self, stored: str) -> tuple[str, bool] | None:
        """The plain text of an encrypted value and whether the first key encrypted it; None if no key can."""
        memo = self._memo
        if (known := memo.get(stored)) is not None:
            memo.move_to_end(stored)
            return known
        token = stored.removeprefix(ENCRYPTED_PREFIX).encode()
        for number, fernet in enumerate(self._fernets):  # the first key first: after a rotation, the usual one
            try:
                plain = fernet.decrypt(token).decode()
            except InvalidToken:
                continue
            memo[stored] = opened = (plain, number == 0)
            if len(memo) > self._memo_entries:
                memo.popitem(last=False)
            return opened
        return None  # never remembered: a value no key opens costs its full price each time, and is rare


def seal(token: str, cipher: TokenCipher | None) -> str:
    """The stored form of ``token``: encrypted with ``cipher``, or plain when there is no key."""
    return cipher.encrypt(token) if cipher is not None else token


def unseal(stored: str, cipher: TokenCipher | None, what: str = "a stored token") -> str:
    """The token in a stored value; :class:`TokenKeyError` when it is encrypted and cannot be decrypted."""
    if cipher is not None:
        return cipher.decrypt(stored, what)
    if is_encrypted(stored):
        raise TokenKeyError(
            f"{what} is encrypted but {SETTING} is not set; set {SETTING} to the key it was encrypted with"
        )
    return stored
