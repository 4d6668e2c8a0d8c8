"""The fake gateways' own protocol surface: auth, error shapes, checkout page, deliveries."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import razorpay
import stripe

from cloud.payments.fake_gateway import FakeGatewayConfig, RunningFakeGateways


def rzp(fakes: RunningFakeGateways) -> httpx.Client:
    auth = (fakes.config.razorpay_key_id, fakes.config.razorpay_key_secret)
    return httpx.Client(base_url=fakes.razorpay_base_url, auth=auth)


def stp(fakes: RunningFakeGateways) -> httpx.Client:
    headers = {"Authorization": f"Bearer {fakes.config.stripe_secret_key}"}
    return httpx.Client(base_url=fakes.stripe_base_url, headers=headers)


@pytest.mark.parametrize("auth", [None, ("rzp_test_x", "nope"), "Basic !!!notbase64", "Bearer token"])
def test_razorpay_refuses_bad_auth_with_its_error_shape(
    fake_gateways: RunningFakeGateways, auth: Any
) -> None:
    headers = {"Authorization": auth} if isinstance(auth, str) else {}
    response = httpx.post(
        f"{fake_gateways.razorpay_base_url}/v1/orders",
        json={"amount": 1000, "currency": "INR"},
        auth=auth if isinstance(auth, tuple) else None,
        headers=headers,
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "BAD_REQUEST_ERROR"
    assert response.json()["error"]["description"] == "Authentication failed"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"currency": "INR"}, "amount"),
        ({"amount": "1000", "currency": "INR"}, "amount"),
        ({"amount": 50, "currency": "INR"}, "amount"),
        ({"amount": 1000, "currency": "inr"}, "currency"),
        ({"amount": 1000, "currency": "INR", "receipt": "x" * 41}, "receipt"),
        ({"amount": 1000, "currency": "INR", "notes": [1]}, "notes"),
    ],
)
def test_razorpay_bad_order_params_get_400(fake_gateways: RunningFakeGateways, body: Any, field: str) -> None:
    with rzp(fake_gateways) as client:
        response = client.post("/v1/orders", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
    assert response.json()["error"]["reason"] == "input_validation_failed"


@pytest.mark.parametrize("content", [b"{not json", b"[1]"])
def test_razorpay_non_object_bodies_get_400(fake_gateways: RunningFakeGateways, content: bytes) -> None:
    with rzp(fake_gateways) as client:
        response = client.post("/v1/orders", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400


def test_the_official_razorpay_sdk_talks_to_the_fake(fake_gateways: RunningFakeGateways) -> None:
    config = fake_gateways.config
    auth = (config.razorpay_key_id, config.razorpay_key_secret)
    client = razorpay.Client(auth=auth, base_url=fake_gateways.razorpay_base_url)
    order = client.order.create({"amount": 25000, "currency": "INR", "receipt": "sdk-1"})
    assert order["status"] == "created"
    checkout = httpx.post(f"{fake_gateways.base_url}/_fake/razorpay/orders/{order['id']}/pay").json()
    assert client.utility.verify_payment_signature(checkout)
    assert client.payment.fetch(checkout["razorpay_payment_id"])["status"] == "captured"
    assert client.order.fetch(order["id"])["status"] == "paid"


def test_fake_pay_rejects_unknown_paid_and_malformed(fake_gateways: RunningFakeGateways) -> None:
    base = f"{fake_gateways.base_url}/_fake"
    assert httpx.post(f"{base}/razorpay/orders/order_nope/pay").status_code == 404
    assert httpx.post(f"{base}/stripe/payment_intents/pi_nope/pay").status_code == 404
    with rzp(fake_gateways) as client:
        order = client.post("/v1/orders", json={"amount": 1000, "currency": "INR"}).json()
    bad = httpx.post(f"{base}/razorpay/orders/{order['id']}/pay", content=b"[", headers={"X": "y"})
    assert bad.status_code == 400
    assert (
        httpx.post(f"{base}/razorpay/orders/{order['id']}/pay", json={"amount_minor": -1}).status_code == 400
    )
    assert httpx.post(f"{base}/razorpay/orders/{order['id']}/pay").status_code == 200
    assert httpx.post(f"{base}/razorpay/orders/{order['id']}/pay").status_code == 400  # already paid


def test_stripe_auth_and_param_errors(fake_gateways: RunningFakeGateways) -> None:
    url = f"{fake_gateways.stripe_base_url}/v1/payment_intents"
    missing = httpx.post(url, data={"amount": "100", "currency": "inr"})
    assert missing.status_code == 401 and missing.json()["error"]["type"] == "invalid_request_error"
    wrong = httpx.post(url, data={"amount": "100"}, headers={"Authorization": "Bearer sk_test_wrongwrong"})
    assert wrong.status_code == 401 and "Invalid API Key" in wrong.json()["error"]["message"]
    basic = httpx.post(
        url, data={"amount": "100", "currency": "inr"}, auth=(fake_gateways.config.stripe_secret_key, "")
    )
    assert basic.status_code == 200  # Stripe also takes the key as the basic-auth user
    with stp(fake_gateways) as client:
        no_amount = client.post("/v1/payment_intents", data={"currency": "inr"})
        assert no_amount.status_code == 400
        assert no_amount.json()["error"] == {
            "message": "Missing required param: amount.",
            "type": "invalid_request_error",
            "code": "parameter_missing",
            "param": "amount",
        }
        assert (
            client.post("/v1/payment_intents", data={"amount": "1.5", "currency": "inr"}).status_code == 400
        )
        assert (
            client.post("/v1/payment_intents", data={"amount": "100", "currency": "INR!"}).status_code == 400
        )
        assert client.post("/v1/refunds", data={}).json()["error"]["code"] == "parameter_missing"
        intent = client.post("/v1/payment_intents", data={"amount": "100", "currency": "inr"}).json()
        httpx.post(f"{fake_gateways.base_url}/_fake/stripe/payment_intents/{intent['id']}/pay")
        bad_reason = client.post("/v1/refunds", data={"payment_intent": intent["id"], "reason": "because"})
        assert bad_reason.status_code == 400 and bad_reason.json()["error"]["param"] == "reason"
        full = client.post("/v1/refunds", data={"payment_intent": intent["id"]})
        assert full.status_code == 200 and full.json()["amount"] == 100
        again = client.post("/v1/refunds", data={"payment_intent": intent["id"]})
        assert again.json()["error"]["code"] == "charge_already_refunded"


def test_checkout_page_pays_and_redirects_with_razorpay_checkout_fields(
    fake_gateways: RunningFakeGateways,
) -> None:
    with rzp(fake_gateways) as client:
        order = client.post("/v1/orders", json={"amount": 12345, "currency": "INR"}).json()
    page_url = f"{fake_gateways.base_url}/_fake/checkout/razorpay/{order['id']}"
    page = httpx.get(page_url, params={"return_url": "http://student.example/booking/7?x=1"})
    assert page.status_code == 200 and "123.45 INR" in page.text and 'id="pay"' in page.text
    submitted = httpx.post(
        page_url, data={"action": "pay", "return_url": "http://student.example/booking/7?x=1"}
    )
    assert submitted.status_code == 303
    location = urlsplit(submitted.headers["location"])
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert location.path == "/booking/7" and query["x"] == "1" and query["status"] == "paid"
    sdk = razorpay.Client(
        auth=(fake_gateways.config.razorpay_key_id, fake_gateways.config.razorpay_key_secret)
    )
    assert sdk.utility.verify_payment_signature(
        {k: query[k] for k in ("razorpay_order_id", "razorpay_payment_id", "razorpay_signature")}
    )


def test_checkout_page_failure_and_unknown_orders(fake_gateways: RunningFakeGateways) -> None:
    with stp(fake_gateways) as client:
        intent = client.post("/v1/payment_intents", data={"amount": "500", "currency": "usd"}).json()
    page_url = f"{fake_gateways.base_url}/_fake/checkout/stripe/{intent['id']}"
    failed = httpx.post(page_url, data={"action": "fail", "return_url": "https://student.example/done"})
    assert failed.status_code == 303 and "status=failed" in failed.headers["location"]
    paid = httpx.post(page_url, data={"action": "pay", "return_url": "javascript:alert(1)"})
    assert paid.status_code == 200 and paid.json()["status"] == "succeeded"  # no redirect to unsafe URLs
    assert httpx.get(f"{fake_gateways.base_url}/_fake/checkout/stripe/pi_nope").status_code == 404
    assert httpx.get(f"{fake_gateways.base_url}/_fake/checkout/paypal/x").status_code == 404
    assert httpx.post(f"{fake_gateways.base_url}/_fake/checkout/paypal/x", data={}).status_code == 404


def test_deliveries_endpoint_and_demo_json(fake_gateways: RunningFakeGateways, receiver: Any) -> None:
    deliveries = httpx.get(f"{fake_gateways.base_url}/_fake/deliveries").json()
    assert deliveries and {"provider", "event_id", "event_type", "status_codes", "delivered"} <= set(
        deliveries[0]
    )
    assert all(d["url"].startswith(receiver.base_url + "/hooks/") for d in deliveries)
    demo = fake_gateways.demo_json()
    assert demo["razorpay"]["webhook_secret"] == fake_gateways.config.razorpay_webhook_secret
    assert demo["stripe"]["webhook_secrets"] == list(fake_gateways.config.stripe_webhook_secrets)
    assert demo["razorpay"]["webhook_url"] == receiver.base_url + "/hooks/razorpay"


def test_config_target_and_fresh_secrets() -> None:
    a, b = FakeGatewayConfig(), FakeGatewayConfig()
    assert a.razorpay_webhook_secret != b.razorpay_webhook_secret
    assert a.stripe_webhook_secrets[0].startswith("whsec_")
    targeted = a.with_target("http://cloud:8000/api/v1/payments/webhooks/")
    assert targeted.razorpay_webhook_url == "http://cloud:8000/api/v1/payments/webhooks/razorpay"
    assert targeted.stripe_webhook_url == "http://cloud:8000/api/v1/payments/webhooks/stripe"
    for secret in (
        a.razorpay_key_secret,
        a.razorpay_webhook_secret,
        a.stripe_secret_key,
        *a.stripe_webhook_secrets,
    ):
        assert secret not in repr(a)


def test_the_official_stripe_sdk_talks_to_the_fake(fake_gateways: RunningFakeGateways) -> None:
    base: Any = {"api": fake_gateways.stripe_base_url}
    client = stripe.StripeClient(
        fake_gateways.config.stripe_secret_key, base_addresses=base, max_network_retries=0
    )
    params: Any = {"amount": 1000, "currency": "inr", "metadata": {"booking_id": "b1"}}
    intent = client.v1.payment_intents.create(params=params, options={"idempotency_key": "sdk-key-000001"})
    replay = client.v1.payment_intents.create(params=params, options={"idempotency_key": "sdk-key-000001"})
    assert intent.id == replay.id and intent.status == "requires_payment_method"
    httpx.post(f"{fake_gateways.base_url}/_fake/stripe/payment_intents/{intent.id}/pay")
    assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"
    refund = client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 300})
    assert (refund.amount, refund.status) == (300, "succeeded")
    with pytest.raises(stripe.InvalidRequestError) as invalid:
        missing_amount: Any = {"currency": "inr"}
        client.v1.payment_intents.create(params=missing_amount)
    assert (invalid.value.code, invalid.value.param) == ("parameter_missing", "amount")
    bad_client = stripe.StripeClient("sk_test_wrongkey", base_addresses=base, max_network_retries=0)
    with pytest.raises(stripe.AuthenticationError):
        bad_client.v1.payment_intents.create(params=params)
