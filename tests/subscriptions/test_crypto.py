"""Tokens encrypted at rest: round trips, key rotation, wrong and missing keys, tokens stored before a key."""

import pytest
from cryptography.fernet import Fernet

from subscriptions.crypto import (
    ENCRYPTED_PREFIX,
    InvalidKey,
    TokenCipher,
    TokenKeyError,
    generate_key,
    is_encrypted,
    seal,
    unseal,
)
from subscriptions.errors import RelayError

TOKEN = "4f1c2a3b-aaaa-bbbb-cccc-0123456789ab"
OLD, NEW, OTHER = generate_key(), generate_key(), generate_key()


def test_round_trip() -> None:
    cipher = TokenCipher([NEW])
    stored = cipher.encrypt(TOKEN)
    assert cipher.decrypt(stored) == TOKEN
    assert unseal(seal(TOKEN, cipher), cipher) == TOKEN


def test_ciphertext_hides_the_token_and_differs_every_time() -> None:
    cipher = TokenCipher([NEW])
    first, second = cipher.encrypt(TOKEN), cipher.encrypt(TOKEN)
    assert first.startswith(ENCRYPTED_PREFIX)
    assert is_encrypted(first)
    assert TOKEN not in first
    assert first != TOKEN
    assert first != second  # a fresh IV each time: equal tokens do not look equal at rest


def test_rotation_first_key_encrypts_every_key_decrypts() -> None:
    before = TokenCipher([OLD]).encrypt(TOKEN)
    rotating = TokenCipher.from_setting(f"{NEW}, {OLD}")
    assert rotating.decrypt(before) == TOKEN
    assert not rotating.is_current(before)
    after = rotating.encrypt(TOKEN)
    assert rotating.is_current(after)
    assert TokenCipher([NEW]).decrypt(after) == TOKEN  # so the old key can go once every token is re-encrypted
    with pytest.raises(TokenKeyError):
        TokenCipher([OLD]).decrypt(after)


def test_a_wrong_key_says_which_setting_to_fix() -> None:
    stored = TokenCipher([NEW]).encrypt(TOKEN)
    with pytest.raises(TokenKeyError, match="RELAY_ENCRYPTION_KEY cannot decrypt the token of 'acme'") as caught:
        TokenCipher([OTHER]).decrypt(stored, "the token of 'acme'")
    assert isinstance(caught.value, RelayError)
    assert TOKEN not in str(caught.value)
    assert stored not in str(caught.value)


def test_no_key_for_an_encrypted_token_says_to_set_one() -> None:
    stored = TokenCipher([NEW]).encrypt(TOKEN)
    with pytest.raises(TokenKeyError, match="encrypted but RELAY_ENCRYPTION_KEY is not set"):
        unseal(stored, None)


def test_a_tampered_token_is_refused() -> None:
    stored = TokenCipher([NEW]).encrypt(TOKEN)
    tampered = stored[:-6] + ("A" if stored[-6] != "A" else "B") + stored[-5:]
    with pytest.raises(TokenKeyError):
        TokenCipher([NEW]).decrypt(tampered)


@pytest.mark.parametrize("cipher", [None, TokenCipher([NEW])])
def test_tokens_stored_before_a_key_was_set_stay_readable(cipher: TokenCipher | None) -> None:
    assert not is_encrypted(TOKEN)
    assert unseal(TOKEN, cipher) == TOKEN
    if cipher is not None:
        assert not cipher.is_current(TOKEN)  # so the next save encrypts it


def test_without_a_key_tokens_are_stored_as_they_are() -> None:
    assert seal(TOKEN, None) == TOKEN


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("not-a-key", "the key is not a Fernet key"),
        (Fernet.generate_key().decode()[:-4], "the key is not a Fernet key"),
        (f"{NEW},nope", "key 2 of 2 is not a Fernet key"),
        (" , ", "expected at least one Fernet key"),
    ],
)
def test_malformed_keys_say_how_to_make_one(setting: str, message: str) -> None:
    with pytest.raises(InvalidKey, match=message) as caught:
        TokenCipher.from_setting(setting)
    assert "Fernet.generate_key()" in str(caught.value)
    assert isinstance(caught.value, ValueError)  # what pydantic turns into a settings error


def test_generated_keys_work_and_differ() -> None:
    key = generate_key()
    assert key != generate_key()
    cipher = TokenCipher.from_setting(f" {key} ")  # spaces around a key, as in a hand-edited .env, are fine
    assert cipher.decrypt(cipher.encrypt(TOKEN)) == TOKEN
