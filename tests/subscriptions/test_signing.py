import base64
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook

from subscriptions.core.signing import (
    SignatureError,
    new_secret,
    secret_key,
    sign,
    signature_header,
    verify,
)

# the Standard Webhooks specification's reference test vector
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_specification_vector() -> None:
    assert sign(secret_key(SECRET), MSG_ID, TIMESTAMP, BODY) == EXPECTED


def test_vector_verifies_and_a_changed_signature_does_not() -> None:
    verify(secret_key(SECRET), MSG_ID, TIMESTAMP, EXPECTED, BODY, now_s=TIMESTAMP)
    with pytest.raises(SignatureError):
        verify(secret_key(SECRET), MSG_ID, TIMESTAMP, EXPECTED[:-1] + "A", BODY, now_s=TIMESTAMP)


def test_reference_library_accepts_our_signature() -> None:
    headers = {"webhook-id": MSG_ID, "webhook-timestamp": str(TIMESTAMP), "webhook-signature": EXPECTED}
    webhook = Webhook(SECRET)
    # the reference library checks the timestamp against its own clock: sign afresh for "now"
    now = int(time.time())
    headers["webhook-timestamp"] = str(now)
    headers["webhook-signature"] = signature_header([secret_key(SECRET)], MSG_ID, now, BODY)
    assert webhook.verify(BODY, headers) == {"test": 2432232314}


def test_several_signatures_any_matches() -> None:
    old, new = new_secret(), new_secret()
    header = signature_header([secret_key(new), secret_key(old)], "evt_1", 100, b"{}")
    assert len(header.split()) == 2
    verify(secret_key(old), "evt_1", 100, header, b"{}", now_s=100)
    verify(secret_key(new), "evt_1", 100, header, b"{}", now_s=100)
    with pytest.raises(SignatureError):
        verify(secret_key(new_secret()), "evt_1", 100, header, b"{}", now_s=100)


def test_unknown_versions_are_ignored() -> None:
    key = secret_key(SECRET)
    header = "v2,whatever " + sign(key, MSG_ID, TIMESTAMP, BODY)
    verify(key, MSG_ID, TIMESTAMP, header, BODY, now_s=TIMESTAMP)


@pytest.mark.parametrize("skew_s", [-301, 301])
def test_stale_timestamps_are_refused(skew_s: int) -> None:
    key = secret_key(SECRET)
    with pytest.raises(SignatureError, match="more than 300 s"):
        verify(key, MSG_ID, TIMESTAMP, EXPECTED, BODY, now_s=TIMESTAMP + skew_s)


def test_new_secret_shape() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert new_secret() != secret


@given(
    st.text(max_size=2000),
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40),
    st.integers(min_value=0, max_value=2**32),
)
def test_reference_library_agrees_on_any_message(body: str, msg_id: str, timestamp: int) -> None:
    secret = new_secret()
    ours = sign(secret_key(secret), msg_id, timestamp, body.encode())
    assert Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, tz=UTC), body) == ours
