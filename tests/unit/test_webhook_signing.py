"""Standard Webhooks signing and verification (gateway/webhooks/signing.py)."""

from __future__ import annotations

import time

import pytest

from gateway.webhooks.signing import InvalidSignature, decode_secret, sign, verify, webhook_id

# The reference vector of the Standard Webhooks libraries: standard-webhooks/
# standard-webhooks, libraries/python/tests/test_webhooks.py, test_sign_function
# (the same values appear in the JavaScript, Go and other libraries' tests).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def headers(msg_id: str, ts: int, signature: str) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


def fresh(body: bytes = VECTOR_BODY, secret: str = VECTOR_SECRET) -> dict[str, str]:
    ts = int(time.time())
    return headers(VECTOR_ID, ts, sign(secret, VECTOR_ID, ts, body))


def test_known_vector() -> None:
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY) == VECTOR_SIGNATURE
    verify(
        VECTOR_SECRET,
        headers(VECTOR_ID, VECTOR_TS, VECTOR_SIGNATURE),
        VECTOR_BODY,
        now=VECTOR_TS + 10,
    )


def test_secret_prefix_is_optional() -> None:
    assert decode_secret(VECTOR_SECRET) == decode_secret(VECTOR_SECRET.removeprefix("whsec_"))
    assert sign(VECTOR_SECRET[6:], VECTOR_ID, VECTOR_TS, VECTOR_BODY) == VECTOR_SIGNATURE


def test_fresh_signature_verifies_with_any_header_case() -> None:
    h = {k.upper(): v for k, v in fresh().items()}
    verify(VECTOR_SECRET, h, VECTOR_BODY)


@pytest.mark.parametrize(
    "tamper",
    ["body", "timestamp", "id", "secret", "signature", "version"],
)
def test_tampering_is_rejected(tamper: str) -> None:
    h = fresh()
    body, secret = VECTOR_BODY, VECTOR_SECRET
    if tamper == "body":
        body = b'{"test": 2432232315}'
    elif tamper == "timestamp":
        h["webhook-timestamp"] = str(int(h["webhook-timestamp"]) - 1)
    elif tamper == "id":
        h["webhook-id"] = "msg_other"
    elif tamper == "secret":
        secret = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="
    elif tamper == "signature":
        h["webhook-signature"] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="
    else:
        h["webhook-signature"] = h["webhook-signature"].replace("v1,", "v2,")
    with pytest.raises(InvalidSignature):
        verify(secret, h, body)


@pytest.mark.parametrize("offset", [-301, 301])
def test_timestamp_outside_tolerance_is_rejected(offset: int) -> None:
    ts = int(time.time()) + offset
    h = headers(VECTOR_ID, ts, sign(VECTOR_SECRET, VECTOR_ID, ts, VECTOR_BODY))
    with pytest.raises(InvalidSignature, match="tolerance"):
        verify(VECTOR_SECRET, h, VECTOR_BODY)
    verify(VECTOR_SECRET, h, VECTOR_BODY, tolerance_s=400)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_rejected(missing: str) -> None:
    h = fresh()
    del h[missing]
    with pytest.raises(InvalidSignature, match="missing"):
        verify(VECTOR_SECRET, h, VECTOR_BODY)


def test_non_integer_timestamp_is_rejected() -> None:
    h = fresh()
    h["webhook-timestamp"] = "hello"
    with pytest.raises(InvalidSignature):
        verify(VECTOR_SECRET, h, VECTOR_BODY)


def test_one_matching_signature_among_several_is_enough() -> None:
    # As in the spec's multi-signature case: rotation sends old and new side by side.
    h = fresh()
    h["webhook-signature"] = " ".join(
        [
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
            "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
            "v1,not-base64!",
            "garbage",
            h["webhook-signature"],
        ]
    )
    verify(VECTOR_SECRET, h, VECTOR_BODY)


def test_only_wrong_signatures_are_rejected() -> None:
    h = fresh()
    h["webhook-signature"] = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v1a,xyz"
    with pytest.raises(InvalidSignature, match="no matching"):
        verify(VECTOR_SECRET, h, VECTOR_BODY)


@pytest.mark.parametrize("bad", ["whsec_", "whsec_not base64!", ""])
def test_bad_secret_is_refused_without_echoing_it(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        decode_secret(bad)
    assert "not base64!" not in str(info.value)


def test_signature_covers_the_body_bytes_exactly() -> None:
    body = '{"survey_id":"S1","payload":{"text":"满意"}}'.encode()
    h = fresh(body)
    verify(VECTOR_SECRET, h, body)
    with pytest.raises(InvalidSignature):
        verify(VECTOR_SECRET, h, body + b" ")


def test_a_webhook_id_has_no_full_stop_and_names_one_event_only() -> None:
    assert webhook_id("S.1:3") == "S%2E1:3" and "." not in webhook_id("a.b.c:1")
    assert webhook_id("S1:3") == "S1:3"  # ids without a full stop are unchanged
    # one-to-one: "%" is encoded too, so no two event ids share a webhook-id
    ids = ["S.1:3", "S%2E1:3", "S%1:3", "S%251:3"]
    assert len({webhook_id(i) for i in ids}) == len(ids)
