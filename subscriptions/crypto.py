"""Brightpearl tokens encrypted at rest: Fernet (AES-128-CBC with HMAC-SHA256) under the keys of
``RELAY_ENCRYPTION_KEY``.

The setting holds one or more Fernet keys, comma-separated. The first encrypts; every one of them decrypts.
To rotate, put a new key first and keep the old one after it (``NEW,OLD``); once every process runs with
both, each process re-encrypts the stored tokens under the new key when it starts
(:meth:`subscriptions.store.Store.reseal_account_tokens`), after which the old key can go.

A stored token is either ``enc:v1:`` followed by a Fernet token, or, written before a key was set, the plain
token itself: still readable, and encrypted the next time it is saved. Nothing here does I/O.
"""

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from subscriptions.errors import RelayError

ENCRYPTED_PREFIX = "enc:v1:"
SETTING = "RELAY_ENCRYPTION_KEY"
GENERATE_KEY_COMMAND = "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"


class InvalidKey(RelayError, ValueError):
    """A key in ``RELAY_ENCRYPTION_KEY`` is not a Fernet key (32 url-safe base64-encoded bytes)."""


class TokenKeyError(RelayError):
    """A stored token is encrypted and the configured keys cannot decrypt it: the key is missing or wrong."""


def generate_key() -> str:
    """A new random Fernet key, as ``RELAY_ENCRYPTION_KEY`` takes it."""
    return Fernet.generate_key().decode()


def is_encrypted(stored: str) -> bool:
    return stored.startswith(ENCRYPTED_PREFIX)


class TokenCipher:
    """Encrypts tokens with the first of its keys and decrypts them with any of them."""

    def __init__(self, keys: Sequence[str]) -> None:
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
        self._primary = fernets[0]
        self._all = MultiFernet(fernets)

    @classmethod
    def from_setting(cls, value: str) -> "TokenCipher":
        """A cipher from the setting's text: Fernet keys, comma-separated, the one that encrypts first."""
        return cls([part for part in value.split(",") if part.strip()])

    def encrypt(self, token: str) -> str:
        """The stored form of ``token``: the prefix and a Fernet token (different every time)."""
        return ENCRYPTED_PREFIX + self._primary.encrypt(token.encode()).decode()

    def decrypt(self, stored: str, what: str = "a stored token") -> str:
        """The token a stored value holds; a plain (never encrypted) value is the token itself.

        ``what`` names the token in the error, e.g. ``"the Brightpearl token of account 'acme'"``.
        """
        if not is_encrypted(stored):
            return stored
        try:
            return self._all.decrypt(stored.removeprefix(ENCRYPTED_PREFIX).encode()).decode()
        except InvalidToken:
            raise TokenKeyError(
                f"{SETTING} cannot decrypt {what}: none of its keys is the one it was encrypted with; "
                f"set {SETTING} to that key (while rotating: the new key, a comma, then the old one)"
            ) from None

    def is_current(self, stored: str) -> bool:
        """Whether ``stored`` is encrypted with the first key (so re-encrypting it would change nothing)."""
        if not is_encrypted(stored):
            return False
        try:
            self._primary.decrypt(stored.removeprefix(ENCRYPTED_PREFIX).encode())
        except InvalidToken:
            return False
        return True


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
