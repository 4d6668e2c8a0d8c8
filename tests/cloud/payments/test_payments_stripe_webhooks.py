"""Stripe-Signature verification, checked against stripe-python's WebhookSignature / construct_event."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
import stripe
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.payments.gateways import StripeConfig, StripeGateway, WebhookRejected
from cloud.payments.gateways.stripe import parse_signature_header, sign_webhook
from cloud.payments.schemas import WebhookEventType

SECRET = "whsec_test_secret_1"
OLD_SECRET = "whsec_test_secret_0"


def gateway(*secrets: str) -> StripeGateway:
    return StripeGateway(StripeConfig(secret_key="sk_test_x", webhook_secrets=secrets or (SECRET,)))


def intent(**overrides: object) -> dict[str, object]:
    obj: dict[str, object] = {
        "id": "pi_123",
        "object": "payment_intent",
        "amount": 50000,
        "amount_received": 50000,
        "currency": "inr",
        "status": "succeeded",
        "last_payment_error": None,
    }
    obj.update(overrides)
    return obj


def event_body(event_type: str, obj: dict[str, object], event_id: str = "evt_1") -> bytes:
    document = {
        "id": event_id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "data": {"object": obj},
        "type": event_type,
    }
    return json.dumps(document, indent=2).encode()


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def sdk_header(body: bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    return str(stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=timestamp))


def test_sdk_signed_webhook_is_accepted_and_normalised() -> None:
    body = event_body("payment_intent.succeeded", intent())
    event = gateway().parse_webhook(body, {"Stripe-Signature": sdk_header(body)}, now())
    assert (event.provider, event.event_id, event.type) == (
        "stripe",
        "evt_1",
        WebhookEventType.PAYMENT_SUCCEEDED,
    )
    assert (event.order_ref, event.payment_id) == ("pi_123", "pi_123")
    assert (event.amount_minor, event.currency) == (50000, "INR")


def test_our_signature_is_accepted_by_stripe_construct_event() -> None:
    body = event_body("payment_intent.succeeded", intent())
    header = sign_webhook(body, (SECRET,), int(time.time()))
    constructed = stripe.Webhook.construct_event(body, header, SECRET)
    assert constructed["id"] == "evt_1" and constructed["type"] == "payment_intent.succeeded"


def test_rotation_several_v1_signatures() -> None:
    body = event_body("payment_intent.succeeded", intent())
    header = sign_webhook(body, (OLD_SECRET, SECRET), int(time.time()))
    assert header.count("v1=") == 2
    # Both the SDK and we accept it whichever single secret the receiver holds...
    for secret in (OLD_SECRET, SECRET):
        assert stripe.WebhookSignature.verify_header(body, header, secret, tolerance=300)
        assert gateway(secret).parse_webhook(body, {"Stripe-Signature": header}, now()).event_id == "evt_1"
    # ...and a receiver holding both secrets accepts a header signed by either one.
    for secret in (OLD_SECRET, SECRET):
        assert gateway(OLD_SECRET, SECRET).parse_webhook(
            body, {"Stripe-Signature": sdk_header(body, secret)}, now()
        )


def test_forged_signature_rejected_by_both() -> None:
    body = event_body("payment_intent.succeeded", intent())
    header = sdk_header(body, "whsec_attacker")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(body, header, SECRET, tolerance=300)
    with pytest.raises(WebhookRejected, match="forged"):
        gateway().parse_webhook(body, {"Stripe-Signature": header}, now())


def test_tampered_body_and_reused_signature_with_other_timestamp_rejected() -> None:
    body = event_body("payment_intent.succeeded", intent())
    header = sdk_header(body)
    with pytest.raises(WebhookRejected, match="forged"):
        gateway().parse_webhook(body.replace(b"50000", b"5"), {"Stripe-Signature": header}, now())
    signature = header.split("v1=")[1]
    moved = f"t={int(time.time()) - 1},v1={signature}"
    with pytest.raises(WebhookRejected, match="forged"):
        gateway().parse_webhook(body, {"Stripe-Signature": moved}, now())


def test_stale_timestamp_rejected_by_both() -> None:
    body = event_body("payment_intent.succeeded", intent())
    header = sdk_header(body, timestamp=int(time.time()) - 301)
    with pytest.raises(stripe.SignatureVerificationError, match="tolerance"):
        stripe.WebhookSignature.verify_header(body, header, SECRET, tolerance=300)
    with pytest.raises(WebhookRejected, match="stale"):
        gateway().parse_webhook(body, {"Stripe-Signature": header}, now())


def test_far_future_timestamp_rejected_by_us_although_the_sdk_accepts_it() -> None:
    body = event_body("payment_intent.succeeded", intent())
    header = sdk_header(body, timestamp=int(time.time()) + 3600)
    assert stripe.WebhookSignature.verify_header(body, header, SECRET, tolerance=300)  # the SDK's gap
    with pytest.raises(WebhookRejected, match="future"):
        gateway().parse_webhook(body, {"Stripe-Signature": header}, now())


def test_tolerance_edges_are_inclusive() -> None:
    body = event_body("payment_intent.succeeded", intent())
    fixed_now = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
    t = int(fixed_now.timestamp())
    for offset in (-300, 0, 300):
        header = sign_webhook(body, (SECRET,), t + offset)
        assert gateway().parse_webhook(body, {"Stripe-Signature": header}, fixed_now).event_id == "evt_1"
    for offset in (-301, 301):
        header = sign_webhook(body, (SECRET,), t + offset)
        with pytest.raises(WebhookRejected):
            gateway().parse_webhook(body, {"Stripe-Signature": header}, fixed_now)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        "v1=abc",
        "t=,v1=abc",
        "t=abc,v1=abc",
        "t=1,t=2,v1=abc",
        "t=1795000000",
        "t=1795000000,v0=abc",
        "t=99999999999999999999,v1=abc",
        "t=1795000000,v1=\u00e9\u00e9",
        "t=\u0661\u0662,v1=abc",  # Arabic-Indic digits are digits to int(), not to us
    ],
)
def test_malformed_signature_headers_are_rejected(header: str) -> None:
    body = event_body("payment_intent.succeeded", intent())
    with pytest.raises(WebhookRejected):
        gateway().parse_webhook(body, {"Stripe-Signature": header}, now())


def test_signature_header_parsing_keeps_every_v1() -> None:
    assert parse_signature_header("t=12,v1=aa,v0=zz,v1=bb") == (12, ["aa", "bb"])


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"id": "evt_1", "type": "payment_intent.succeeded", "created": 1}',
        b'{"id": "evt_1", "type": "payment_intent.succeeded", "created": 1, "data": {"object": 5}}',
        b'{"id": "evt_1", "type": "payment_intent.succeeded", "created": 1, "data": {"object": {"id": "pi_1",'
        b' "amount": "500", "currency": "inr"}}}',
        b'{"id": "evt_1", "type": "charge.refunded", "created": 1, "data": {"object": {"id": "ch_1",'
        b' "amount": 500, "currency": "inr"}}}',
        b'{"id": 7, "type": "payment_intent.succeeded", "created": 1, "data": {}}',
    ],
)
def test_malformed_but_correctly_signed_bodies_are_rejected(body: bytes) -> None:
    header = sign_webhook(body, (SECRET,), int(time.time()))
    with pytest.raises(WebhookRejected, match="malformed"):
        gateway().parse_webhook(body, {"Stripe-Signature": header}, now())


def test_unknown_event_type_is_ignored() -> None:
    body = event_body("customer.created", {"id": "cus_1", "object": "customer"})
    event = gateway().parse_webhook(body, {"Stripe-Signature": sdk_header(body)}, now())
    assert event.type is WebhookEventType.IGNORED and event.provider_type == "customer.created"


def test_payment_failed_and_charge_refunded() -> None:
    failed = intent(
        status="requires_payment_method",
        amount_received=0,
        last_payment_error={"code": "card_declined", "message": "Your card was declined."},
    )
    body = event_body("payment_intent.payment_failed", failed)
    event = gateway().parse_webhook(body, {"Stripe-Signature": sdk_header(body)}, now())
    assert (event.type, event.amount_minor) == (WebhookEventType.PAYMENT_FAILED, 50000)
    assert event.failure_reason == "Your card was declined."

    charge = {
        "id": "ch_1",
        "object": "charge",
        "amount": 50000,
        "amount_refunded": 30000,
        "currency": "inr",
        "payment_intent": "pi_123",
        "refunds": {
            "object": "list",
            "data": [{"id": "re_2", "amount": 10000}, {"id": "re_1", "amount": 20000}],
        },
    }
    body = event_body("charge.refunded", charge)
    event = gateway().parse_webhook(body, {"Stripe-Signature": sdk_header(body)}, now())
    assert event.type is WebhookEventType.REFUND_PROCESSED
    assert (event.order_ref, event.payment_id, event.amount_minor) == ("pi_123", "pi_123", 50000)
    assert (event.amount_refunded_minor, event.refund_id, event.refund_amount_minor) == (30000, "re_2", 10000)


@settings(max_examples=60, deadline=None)
@given(
    payload=st.text(max_size=200),
    secret=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FFF), min_size=1, max_size=30),
    timestamp=st.integers(min_value=0, max_value=4_000_000_000),
    flip=st.booleans(),
)
def test_signature_verdict_matches_the_sdk_on_random_inputs(
    payload: str, secret: str, timestamp: int, flip: bool
) -> None:
    """Signature check only (timestamps are covered above): the SDK's verdict equals ours."""
    header = str(stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=timestamp))
    if flip:
        header = header[:-1] + ("0" if header[-1] != "0" else "1")
    try:
        sdk_ok = bool(stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=None))
    except stripe.SignatureVerificationError:
        sdk_ok = False
    try:
        ours_ok = gateway(secret)._authenticate(payload.encode(), header) == timestamp
    except WebhookRejected:
        ours_ok = False
    assert ours_ok == sdk_ok == (not flip)
