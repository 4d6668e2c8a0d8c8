"""Razorpay webhook and checkout signatures, checked against the razorpay SDK's own Utility."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import razorpay
from hypothesis import given, settings
from hypothesis import strategies as st
from razorpay.errors import SignatureVerificationError

from cloud.payments.gateways import CheckoutRejected, RazorpayConfig, RazorpayGateway, WebhookRejected
from cloud.payments.gateways.razorpay import sign_checkout, sign_webhook
from cloud.payments.schemas import CheckoutProof, WebhookEventType

SECRET = "rzp_webhook_secret_1"
KEY_ID, KEY_SECRET = "rzp_test_key", "rzp_key_secret_1"
NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
SDK = razorpay.Client(auth=(KEY_ID, KEY_SECRET)).utility


def gateway(*secrets: str) -> RazorpayGateway:
    return RazorpayGateway(RazorpayConfig(KEY_ID, KEY_SECRET, webhook_secrets=secrets or (SECRET,)))


def payment_entity(**overrides: object) -> dict[str, object]:
    entity: dict[str, object] = {
        "id": "pay_AbC123",
        "entity": "payment",
        "amount": 50000,
        "currency": "INR",
        "status": "captured",
        "order_id": "order_XyZ789",
        "amount_refunded": 0,
    }
    entity.update(overrides)
    return entity


def event_body(event: str, payload: dict[str, object], created_at: dt.datetime = NOW) -> bytes:
    document = {
        "entity": "event",
        "account_id": "acc_1",
        "event": event,
        "contains": list(payload),
        "payload": {name: {"entity": entity} for name, entity in payload.items()},
        "created_at": int(created_at.timestamp()),
    }
    return json.dumps(document, indent=1).encode()


def sdk_headers(body: bytes, secret: str = SECRET, event_id: str = "evt_1") -> dict[str, str]:
    """Sign with the same HMAC the SDK verifies, then prove the SDK accepts it."""
    signature = sign_webhook(body, secret)
    assert SDK.verify_webhook_signature(body.decode(), signature, secret)
    return {"X-Razorpay-Signature": signature, "x-razorpay-event-id": event_id}


def test_captured_payment_is_normalised() -> None:
    body = event_body("payment.captured", {"payment": payment_entity()})
    event = gateway().parse_webhook(body, sdk_headers(body), NOW)
    assert event.provider == "razorpay"
    assert event.event_id == "evt_1"
    assert event.type is WebhookEventType.PAYMENT_SUCCEEDED
    assert (event.order_ref, event.payment_id) == ("order_XyZ789", "pay_AbC123")
    assert (event.amount_minor, event.currency) == (50000, "INR")
    assert event.occurred_at == NOW
    assert event.raw["event"] == "payment.captured"


def test_order_paid_and_failed_and_refund_events() -> None:
    order = {"id": "order_XyZ789", "entity": "order", "amount": 50000, "status": "paid"}
    paid = event_body("order.paid", {"payment": payment_entity(), "order": order})
    assert gateway().parse_webhook(paid, sdk_headers(paid), NOW).type is WebhookEventType.PAYMENT_SUCCEEDED

    failed_entity = payment_entity(status="failed", error_description="Card declined")
    failed = event_body("payment.failed", {"payment": failed_entity})
    event = gateway().parse_webhook(failed, sdk_headers(failed), NOW)
    assert (event.type, event.failure_reason) == (WebhookEventType.PAYMENT_FAILED, "Card declined")

    refund = {
        "id": "rfnd_1",
        "entity": "refund",
        "amount": 20000,
        "currency": "INR",
        "payment_id": "pay_AbC123",
    }
    refunded = event_body(
        "refund.processed", {"refund": refund, "payment": payment_entity(amount_refunded=30000)}
    )
    event = gateway().parse_webhook(refunded, sdk_headers(refunded), NOW)
    assert event.type is WebhookEventType.REFUND_PROCESSED
    assert (event.refund_id, event.refund_amount_minor, event.amount_refunded_minor) == (
        "rfnd_1",
        20000,
        30000,
    )
    assert (event.order_ref, event.payment_id, event.amount_minor) == ("order_XyZ789", "pay_AbC123", 50000)


def test_forged_signature_is_rejected_by_both_sdk_and_us() -> None:
    body = event_body("payment.captured", {"payment": payment_entity()})
    forged = sign_webhook(body, "attacker-secret")
    with pytest.raises(SignatureVerificationError):
        SDK.verify_webhook_signature(body.decode(), forged, SECRET)
    with pytest.raises(WebhookRejected, match="forged"):
        gateway().parse_webhook(body, {"X-Razorpay-Signature": forged}, NOW)


def test_body_changed_after_signing_is_rejected() -> None:
    body = event_body("payment.captured", {"payment": payment_entity()})
    headers = sdk_headers(body)
    reserialised = json.dumps(json.loads(body)).encode()  # same JSON, different bytes
    with pytest.raises(WebhookRejected, match="forged"):
        gateway().parse_webhook(reserialised, headers, NOW)
    tampered = body.replace(b"50000", b"50001")
    with pytest.raises(WebhookRejected, match="forged"):
        gateway().parse_webhook(tampered, headers, NOW)


def test_missing_signature_and_unconfigured_secret_are_rejected() -> None:
    body = event_body("payment.captured", {"payment": payment_entity()})
    with pytest.raises(WebhookRejected, match="forged"):
        gateway().parse_webhook(body, {"X-Razorpay-Signature": "\u00e9" * 64}, NOW)
    with pytest.raises(WebhookRejected, match="missing"):
        gateway().parse_webhook(body, {}, NOW)
    unconfigured = RazorpayGateway(RazorpayConfig(KEY_ID, KEY_SECRET))
    with pytest.raises(WebhookRejected, match="no razorpay webhook secret"):
        unconfigured.parse_webhook(body, sdk_headers(body), NOW)


def test_any_configured_secret_verifies_during_rotation() -> None:
    body = event_body("payment.captured", {"payment": payment_entity()})
    rotating = gateway("old_secret_1", SECRET)
    assert rotating.parse_webhook(body, sdk_headers(body, "old_secret_1"), NOW).payment_id == "pay_AbC123"
    assert rotating.parse_webhook(body, sdk_headers(body, SECRET), NOW).payment_id == "pay_AbC123"


def test_header_names_are_case_insensitive() -> None:
    body = event_body("payment.captured", {"payment": payment_entity()})
    headers = {k.upper(): v for k, v in sdk_headers(body, event_id="evt_CASE").items()}
    assert gateway().parse_webhook(body, headers, NOW).event_id == "evt_CASE"


def test_unknown_event_type_is_ignored_not_rejected() -> None:
    body = event_body("subscription.charged", {"subscription": {"id": "sub_1"}})
    event = gateway().parse_webhook(body, sdk_headers(body), NOW)
    assert event.type is WebhookEventType.IGNORED
    assert event.provider_type == "subscription.charged"
    assert event.order_ref is None and event.amount_minor is None


def test_event_without_id_header_gets_a_stable_body_hash_id() -> None:
    body = event_body("payment.captured", {"payment": payment_entity()})
    headers = {"X-Razorpay-Signature": sign_webhook(body, SECRET)}
    first = gateway().parse_webhook(body, headers, NOW)
    again = gateway().parse_webhook(body, headers, NOW)
    assert first.event_id.startswith("sha256:") and first.event_id == again.event_id


def test_stale_and_future_events_are_rejected() -> None:
    old = event_body("payment.captured", {"payment": payment_entity()}, NOW - dt.timedelta(days=4))
    with pytest.raises(WebhookRejected, match="stale"):
        gateway().parse_webhook(old, sdk_headers(old), NOW)
    future = event_body("payment.captured", {"payment": payment_entity()}, NOW + dt.timedelta(minutes=10))
    with pytest.raises(WebhookRejected, match="future"):
        gateway().parse_webhook(future, sdk_headers(future), NOW)
    # Razorpay retries for 24 h: a day-old delivery is still accepted.
    retried = event_body("payment.captured", {"payment": payment_entity()}, NOW - dt.timedelta(hours=24))
    assert gateway().parse_webhook(retried, sdk_headers(retried), NOW).payment_id == "pay_AbC123"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe\x00",
        b"[1, 2]",
        b'{"event": "payment.captured"}',
        b'{"event": 5, "payload": {}, "created_at": 1795000000}',
        b'{"event": "payment.captured", "payload": {}, "created_at": "yesterday"}',
        b'{"event": "payment.captured", "payload": {}, "created_at": 1795000000}',
        b'{"event": "payment.captured", "payload": {"payment": {"entity": {"id": "pay_1", "amount": "500",'
        b' "currency": "INR"}}}, "created_at": 1795000000}',
        b'{"event": "refund.processed", "payload": {"refund": {"entity": {"id": "rfnd_1"}}},'
        b' "created_at": 1795000000}',
        b'{"event": "payment.captured", "payload": {"payment": {"entity": {"id": "pay_1", "amount": -5,'
        b' "currency": "INR"}}}, "created_at": 1795000000}',
        b'{"event": "payment.captured", "payload": {"payment": {"entity": {"id": "pay_1", "amount": 5,'
        b' "currency": "rupees"}}}, "created_at": 1795000000}',
    ],
)
def test_malformed_but_correctly_signed_bodies_are_rejected(body: bytes) -> None:
    now = dt.datetime.fromtimestamp(1795000000, dt.UTC)
    headers = {"X-Razorpay-Signature": sign_webhook(body, SECRET)}
    with pytest.raises(WebhookRejected, match="malformed"):
        gateway().parse_webhook(body, headers, now)


def test_naive_now_is_a_programming_error() -> None:
    body = event_body("payment.captured", {"payment": payment_entity()})
    with pytest.raises(ValueError, match="timezone-aware"):
        gateway().parse_webhook(body, sdk_headers(body), dt.datetime(2026, 11, 24, 12, 0))


@settings(max_examples=60, deadline=None)
@given(body=st.text(min_size=0, max_size=200), secret=st.text(min_size=1, max_size=40), flip=st.booleans())
def test_we_accept_exactly_what_the_sdk_accepts(body: str, secret: str, flip: bool) -> None:
    """Random bodies and secrets: the SDK's verdict on a signature equals ours."""
    signature = sign_webhook(body.encode(), secret)
    if flip:
        signature = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    try:
        sdk_ok = bool(SDK.verify_webhook_signature(body, signature, secret))
    except SignatureVerificationError:
        sdk_ok = False
    config = RazorpayConfig(KEY_ID, KEY_SECRET, webhook_secrets=(secret,))
    try:
        RazorpayGateway(config)._authenticate(body.encode(), signature)
        ours_ok = True
    except WebhookRejected:
        ours_ok = False
    assert ours_ok == sdk_ok == (not flip)


def test_checkout_signature_agrees_with_sdk() -> None:
    signature = sign_checkout("order_XyZ789", "pay_AbC123", KEY_SECRET)
    assert SDK.verify_payment_signature(
        {
            "razorpay_order_id": "order_XyZ789",
            "razorpay_payment_id": "pay_AbC123",
            "razorpay_signature": signature,
        }
    )


async def test_forged_checkout_proof_is_rejected_before_any_network_call() -> None:
    rz = RazorpayGateway(RazorpayConfig(KEY_ID, KEY_SECRET, base_url="http://127.0.0.1:9"))
    forged = CheckoutProof(
        order_ref="order_XyZ789",
        payment_id="pay_AbC123",
        signature=sign_checkout("order_XyZ789", "pay_AbC123", "x"),
    )
    with pytest.raises(CheckoutRejected, match="does not match"):
        await rz.verify_checkout(forged)
    with pytest.raises(CheckoutRejected, match="needs"):
        await rz.verify_checkout(CheckoutProof(order_ref="order_XyZ789"))
    await rz.aclose()
