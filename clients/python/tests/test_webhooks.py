"""Webhook verification (Standard Webhooks), against the spec's example and our own vectors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from chatbot_client import WebhookVerificationError, sign_webhook, verify_webhook

# The example of the Standard Webhooks reference libraries' tests
# (standard-webhooks/standard-webhooks, libraries/*/tests: "test_sign_function").
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = '{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(KEY).decode()
NOW = 1_760_000_000
BODY = json.dumps({"type": "message.created", "data": {"message_id": 123}}).encode()


def headers(body=BODY, *, msg_id="evt_1", timestamp=NOW, secret=SECRET):
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_webhook(secret, msg_id, timestamp, body),
    }


def test_the_spec_example_signs_as_the_spec_says():
    assert sign_webhook(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_the_spec_example_verifies():
    spec_headers = {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": SPEC_SIGNATURE,
    }
    assert verify_webhook(SPEC_SECRET, spec_headers, SPEC_BODY, now=SPEC_TIMESTAMP) == {
        "test": 2432232314
    }
    # The secret without its prefix, and as raw key bytes, is the same key.
    assert verify_webhook(
        SPEC_SECRET.removeprefix("whsec_"), spec_headers, SPEC_BODY, now=SPEC_TIMESTAMP
    )
    raw_key = base64.b64decode(SPEC_SECRET.removeprefix("whsec_"))
    assert verify_webhook(raw_key, spec_headers, SPEC_BODY.encode(), now=SPEC_TIMESTAMP)


def test_the_signature_is_hmac_sha256_of_id_timestamp_and_body():
    digest = hmac.new(KEY, b"evt_1.%d." % NOW + BODY, hashlib.sha256).digest()
    assert headers()["webhook-signature"] == "v1," + base64.b64encode(digest).decode()


def test_a_valid_delivery_returns_its_event():
    assert verify_webhook(SECRET, headers(), BODY, now=NOW)["data"] == {"message_id": 123}


def test_header_names_are_case_insensitive():
    upper = {name.title(): value for name, value in headers().items()}
    assert verify_webhook(SECRET, upper, BODY, now=NOW)


def test_a_tampered_body_is_refused():
    with pytest.raises(WebhookVerificationError, match="No signature"):
        verify_webhook(SECRET, headers(), BODY.replace(b"123", b"124"), now=NOW)


def test_a_reserialised_body_is_refused():
    reserialised = json.dumps(json.loads(BODY), indent=1)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(SECRET, headers(), reserialised, now=NOW)


def test_another_secret_is_refused():
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()
    with pytest.raises(WebhookVerificationError):
        verify_webhook(other, headers(), BODY, now=NOW)


def test_a_changed_id_or_timestamp_is_refused():
    changed = {**headers(), "webhook-id": "evt_2"}
    with pytest.raises(WebhookVerificationError):
        verify_webhook(SECRET, changed, BODY, now=NOW)
    later = {**headers(), "webhook-timestamp": str(NOW + 1)}
    with pytest.raises(WebhookVerificationError):
        verify_webhook(SECRET, later, BODY, now=NOW)


@pytest.mark.parametrize("offset", [-301, 301])
def test_timestamps_more_than_five_minutes_off_are_refused(offset):
    with pytest.raises(WebhookVerificationError, match="too old or too new"):
        verify_webhook(SECRET, headers(timestamp=NOW + offset), BODY, now=NOW)


@pytest.mark.parametrize("offset", [-300, 300])
def test_timestamps_within_five_minutes_are_accepted(offset):
    assert verify_webhook(SECRET, headers(timestamp=NOW + offset), BODY, now=NOW)


def test_the_current_time_is_the_default():
    import time

    now = int(time.time())
    assert verify_webhook(SECRET, headers(timestamp=now), BODY)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(SECRET, headers(timestamp=now - 3600), BODY)


def test_one_matching_signature_among_several_is_enough():
    valid = headers()["webhook-signature"]
    many = " ".join(
        [
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
            "v2," + valid.split(",", 1)[1],  # another scheme: not ours to check
            "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM",
            "v1,not base64!",
            valid,
        ]
    )
    assert verify_webhook(SECRET, {**headers(), "webhook-signature": many}, BODY, now=NOW)


def test_a_valid_signature_under_another_scheme_is_not_accepted():
    valid = headers()["webhook-signature"]
    other = {**headers(), "webhook-signature": "v2," + valid.split(",", 1)[1]}
    with pytest.raises(WebhookVerificationError):
        verify_webhook(SECRET, other, BODY, now=NOW)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_refused(missing):
    incomplete = {name: value for name, value in headers().items() if name != missing}
    with pytest.raises(WebhookVerificationError, match=missing):
        verify_webhook(SECRET, incomplete, BODY, now=NOW)


def test_a_timestamp_that_is_not_a_number_is_refused():
    with pytest.raises(WebhookVerificationError, match="not a number"):
        verify_webhook(SECRET, {**headers(), "webhook-timestamp": "hello"}, BODY, now=NOW)


def test_a_body_that_is_not_a_json_object_is_refused():
    for body in (b"[1, 2]", b"not json"):
        with pytest.raises(WebhookVerificationError, match="JSON"):
            verify_webhook(SECRET, headers(body), body, now=NOW)


def test_a_malformed_secret_is_a_programming_error():
    with pytest.raises(ValueError, match="base64"):
        verify_webhook("whsec_???", headers(), BODY, now=NOW)
    with pytest.raises(ValueError, match="empty"):
        verify_webhook("whsec_", headers(), BODY, now=NOW)
