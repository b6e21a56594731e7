"""Tokens and secrets encrypted at rest: round trips, key rotation, wrong and missing keys, values stored before a
key, and the memo of decrypted values."""

from typing import Any

import pytest
from cryptography.fernet import Fernet

from subscriptions.core.crypto import (
    ENCRYPTED_PREFIX,
    InvalidKey,
    TokenCipher,
    TokenKeyError,
    generate_key,
    is_encrypted,
    seal,
    unseal,
)
from subscriptions.core.errors import RelayError

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


class CountingDecryptions:
    """Counts Fernet decryptions (tries with one key), whichever cipher makes them: ``Fernet.decrypt`` and
    ``MultiFernet.decrypt`` both try each key through ``Fernet._decrypt_data``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        decrypt_data = Fernet._decrypt_data

        def counted(fernet: Fernet, *args: Any) -> bytes:
            self.count += 1
            return decrypt_data(fernet, *args)

        monkeypatch.setattr(Fernet, "_decrypt_data", counted)


@pytest.fixture
def decryptions(monkeypatch: pytest.MonkeyPatch) -> CountingDecryptions:
    return CountingDecryptions(monkeypatch)


def test_a_stored_value_read_again_is_not_decrypted_again(decryptions: CountingDecryptions) -> None:
    cipher = TokenCipher([NEW])
    stored = cipher.encrypt(TOKEN)
    assert [cipher.decrypt(stored) for _ in range(100)] == [TOKEN] * 100
    assert cipher.is_current(stored)
    assert decryptions.count == 1


def test_a_value_saved_again_is_a_new_text_and_reads_as_the_new_value(decryptions: CountingDecryptions) -> None:
    cipher = TokenCipher([NEW])
    assert cipher.decrypt(cipher.encrypt("whsec_first")) == "whsec_first"
    assert cipher.decrypt(cipher.encrypt("whsec_second")) == "whsec_second"  # never the remembered first one
    assert cipher.decrypt(cipher.encrypt("whsec_first")) == "whsec_first"
    assert decryptions.count == 3


def test_the_memo_is_bounded_and_keeps_the_values_read_most_recently(decryptions: CountingDecryptions) -> None:
    cipher = TokenCipher([NEW], memo_entries=2)
    a, b, c = (cipher.encrypt(value) for value in "abc")
    for stored in (a, b, a, c):  # c pushes out b, the least recently read
        cipher.decrypt(stored)
    assert decryptions.count == 3
    cipher.decrypt(a)
    cipher.decrypt(c)
    assert decryptions.count == 3
    assert cipher.decrypt(b) == "b"
    assert decryptions.count == 4


def test_a_value_under_an_older_key_is_remembered_as_not_current(decryptions: CountingDecryptions) -> None:
    before = TokenCipher([OLD]).encrypt(TOKEN)
    rotating = TokenCipher([NEW, OLD])
    assert rotating.decrypt(before) == TOKEN
    decrypted = decryptions.count
    assert not rotating.is_current(before)  # answered from the memo: re-encryption is still due
    assert decryptions.count == decrypted


def test_what_one_cipher_remembers_another_cannot_read() -> None:
    stored = TokenCipher([NEW]).encrypt(TOKEN)
    knowing = TokenCipher([NEW])
    assert knowing.decrypt(stored) == TOKEN
    with pytest.raises(TokenKeyError):
        TokenCipher([OTHER]).decrypt(stored)


def test_a_value_no_key_opens_is_refused_every_time(decryptions: CountingDecryptions) -> None:
    stored = TokenCipher([OTHER]).encrypt(TOKEN)
    cipher = TokenCipher([NEW, OLD])
    for _ in range(2):
        with pytest.raises(TokenKeyError):
            cipher.decrypt(stored)
        assert not cipher.is_current(stored)
    assert decryptions.count == 8  # both keys tried, four times: a failure is never remembered as a success
