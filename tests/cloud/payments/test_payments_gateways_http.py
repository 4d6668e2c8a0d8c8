"""The adapters against the fake gateways over real HTTP, webhooks delivered to a real receiver."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
import razorpay
import stripe

from cloud.payments.fake_gateway import RunningFakeGateways, WebhookDelivery
from cloud.payments.gateways import (
    CheckoutRejected,
    GatewayAuthError,
    GatewayRequestError,
    GatewayUnavailable,
    InvalidPaymentRequest,
    PaymentGateway,
    RazorpayConfig,
    RazorpayGateway,
    StripeConfig,
    StripeGateway,
)
from cloud.payments.schemas import CheckoutProof, CheckoutStatus, WebhookEventType


def key() -> str:
    return f"idem-{uuid.uuid4().hex}"


def pay(fakes: RunningFakeGateways, path: str, **options: object) -> dict[str, str]:
    response = httpx.post(f"{fakes.base_url}/_fake/{path}", json=options or None)
    assert response.status_code == 200, response.text
    result: dict[str, str] = response.json()
    return result


def test_both_adapters_implement_the_interface(
    razorpay: RazorpayGateway, stripe_gateway: StripeGateway
) -> None:
    assert isinstance(razorpay, PaymentGateway) and isinstance(stripe_gateway, PaymentGateway)


async def test_razorpay_order_pay_verify_webhooks_refund(
    razorpay: RazorpayGateway, fake_gateways: RunningFakeGateways, receiver: Any
) -> None:
    order = await razorpay.create_order(45000, "inr", "booking-1", {"booking_id": "b1"}, key())
    assert (order.provider, order.amount_minor, order.currency, order.status) == (
        "razorpay",
        45000,
        "INR",
        "created",
    )
    assert order.order_ref.startswith("order_") and order.raw["notes"]["booking_id"] == "b1"

    checkout = pay(fake_gateways, f"razorpay/orders/{order.order_ref}/pay")
    proof = CheckoutProof(
        order_ref=checkout["razorpay_order_id"],
        payment_id=checkout["razorpay_payment_id"],
        signature=checkout["razorpay_signature"],
    )
    assert proof.payment_id is not None
    verified = await razorpay.verify_checkout(proof)
    assert (verified.status, verified.amount_minor, verified.currency) == (CheckoutStatus.PAID, 45000, "INR")
    assert (await razorpay.fetch_order(order.order_ref)).status == "paid"

    events = receiver.wait_for(order.order_ref, 2)
    assert {e.provider_type for e in events} == {"payment.captured", "order.paid"}
    assert all(
        e.type is WebhookEventType.PAYMENT_SUCCEEDED and e.payment_id == proof.payment_id for e in events
    )
    assert len({e.event_id for e in events}) == 2
    delivered = receiver.received_for(events[0].event_id)
    sdk = razorpay_sdk(fake_gateways).utility
    assert sdk.verify_webhook_signature(
        delivered.body.decode(),
        delivered.headers["x-razorpay-signature"],
        fake_gateways.config.razorpay_webhook_secret,
    )
    assert delivered.headers["x-razorpay-event-id"] == events[0].event_id

    refund = await razorpay.refund(proof.payment_id, 15000, "cancelled 30 h before start", key())
    assert (refund.amount_minor, refund.currency, refund.status) == (15000, "INR", "processed")
    refunded = receiver.wait_for(order.order_ref, 3)[-1]
    assert refunded.type is WebhookEventType.REFUND_PROCESSED
    assert (refunded.refund_id, refunded.refund_amount_minor, refunded.amount_refunded_minor) == (
        refund.refund_id,
        15000,
        15000,
    )
    with pytest.raises(GatewayRequestError, match="greater than amount captured"):
        await razorpay.refund(proof.payment_id, 30001, "too much", key())


def wait_until_finished(fakes: RunningFakeGateways, event_id: str) -> WebhookDelivery:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for delivery in fakes.deliveries():
            if delivery.event_id == event_id and delivery.finished:
                return delivery
        time.sleep(0.01)
    raise TimeoutError(event_id)


def razorpay_sdk(fakes: RunningFakeGateways) -> razorpay.Client:
    return razorpay.Client(auth=(fakes.config.razorpay_key_id, fakes.config.razorpay_key_secret))


async def test_razorpay_checkout_proof_for_another_order_is_rejected(
    razorpay: RazorpayGateway, fake_gateways: RunningFakeGateways
) -> None:
    first = await razorpay.create_order(10000, "INR", "booking-2a", {}, key())
    second = await razorpay.create_order(10000, "INR", "booking-2b", {}, key())
    checkout = pay(fake_gateways, f"razorpay/orders/{first.order_ref}/pay")
    # A valid signature for (second, payment) can only come from someone holding the key secret;
    # the payment lookup still catches the mix-up.
    from cloud.payments.gateways.razorpay import sign_checkout

    secret = fake_gateways.config.razorpay_key_secret
    mixed = CheckoutProof(
        order_ref=second.order_ref,
        payment_id=checkout["razorpay_payment_id"],
        signature=sign_checkout(second.order_ref, checkout["razorpay_payment_id"], secret),
    )
    with pytest.raises(CheckoutRejected, match="another order"):
        await razorpay.verify_checkout(mixed)


async def test_razorpay_failed_payment_webhook(
    razorpay: RazorpayGateway, fake_gateways: RunningFakeGateways, receiver: Any
) -> None:
    order = await razorpay.create_order(20000, "INR", "booking-3", {}, key())
    pay(fake_gateways, f"razorpay/orders/{order.order_ref}/fail", reason="Insufficient funds")
    (event,) = receiver.wait_for(order.order_ref, 1)
    assert (event.type, event.failure_reason, event.amount_minor) == (
        WebhookEventType.PAYMENT_FAILED,
        "Insufficient funds",
        20000,
    )


async def test_razorpay_amount_mismatch_is_visible_in_the_event(
    razorpay: RazorpayGateway, fake_gateways: RunningFakeGateways, receiver: Any
) -> None:
    order = await razorpay.create_order(20000, "INR", "booking-4", {}, key())
    pay(fake_gateways, f"razorpay/orders/{order.order_ref}/pay", amount_minor=100)
    events = receiver.wait_for(order.order_ref, 2)
    assert {e.amount_minor for e in events} == {100}  # the flow compares with the order's 20000


async def test_razorpay_refund_idempotency(
    razorpay: RazorpayGateway, fake_gateways: RunningFakeGateways
) -> None:
    order = await razorpay.create_order(30000, "INR", "booking-5", {}, key())
    payment_id = pay(fake_gateways, f"razorpay/orders/{order.order_ref}/pay")["razorpay_payment_id"]
    refund_key = key()
    first = await razorpay.refund(payment_id, 10000, "staff refund", refund_key)
    again = await razorpay.refund(payment_id, 10000, "staff refund", refund_key)
    assert first.refund_id == again.refund_id
    with pytest.raises(GatewayRequestError, match="same idempotency key"):
        await razorpay.refund(payment_id, 5000, "staff refund", refund_key)
    assert fake_gateways.fakes.razorpay.payments[payment_id]["amount_refunded"] == 10000


async def test_razorpay_lost_create_response_finds_the_order_instead_of_duplicating(
    fake_gateways: RunningFakeGateways,
) -> None:
    class DropsOrderResponses(httpx.AsyncHTTPTransport):
        """POST /v1/orders: with `reach`, the order is created but the response is lost; without, the
        request never leaves."""

        reach = True

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            is_create = request.method == "POST" and request.url.path.endswith("/v1/orders")
            if is_create and not self.reach:
                raise httpx.ConnectError("connection refused", request=request)
            response = await super().handle_async_request(request)
            if is_create:
                await response.aclose()
                raise httpx.ReadTimeout("response lost", request=request)
            return response

    transport = DropsOrderResponses()
    async with httpx.AsyncClient(transport=transport) as client:
        gateway = RazorpayGateway(fake_gateways.razorpay_config(), client=client)
        first_key, second_key = key(), key()
        first = await gateway.create_order(12300, "INR", "booking-lost", {}, first_key)
        second = await gateway.create_order(12300, "INR", "booking-lost", {}, second_key)
        orders = fake_gateways.fakes.razorpay.orders.values()
        by_key = {o["notes"]["idempotency_key"]: o["id"] for o in orders if o["receipt"] == "booking-lost"}
        assert by_key == {first_key: first.order_ref, second_key: second.order_ref}
        transport.reach = False
        with pytest.raises(GatewayUnavailable, match="transport"):
            await gateway.create_order(12300, "INR", "booking-never", {}, key())


async def test_razorpay_bad_credentials_and_bad_params(fake_gateways: RunningFakeGateways) -> None:
    config = fake_gateways.razorpay_config()
    wrong = RazorpayGateway(RazorpayConfig(config.key_id, "wrong-secret", base_url=config.base_url))
    with pytest.raises(GatewayAuthError) as auth_error:
        await wrong.create_order(10000, "INR", "booking-6", {}, key())
    assert auth_error.value.status == 401
    await wrong.aclose()
    right = RazorpayGateway(config)
    with pytest.raises(GatewayRequestError, match="minimum") as too_small:
        await right.create_order(99, "INR", "booking-6", {}, key())
    assert too_small.value.status == 400 and too_small.value.code == "BAD_REQUEST_ERROR"
    for amount, currency, receipt, idem in [
        (0, "INR", "r", key()),
        (True, "INR", "r", key()),
        (10.5, "INR", "r", key()),
        (10000, "RUPEES", "r", key()),
        (10000, "\u0131nr", "r", key()),  # dotless i upper-cases to I
        (10000, "INR", "", key()),
        (10000, "INR", "r" * 41, key()),
        (10000, "INR", "r", "short"),
        (10000, "INR", "r", "has spaces in it"),
    ]:
        with pytest.raises(InvalidPaymentRequest):
            await right.create_order(amount, currency, receipt, {}, idem)  # type: ignore[arg-type]
    with pytest.raises(InvalidPaymentRequest):
        await right.refund("../v1/orders", 100, "path injection", key())
    with pytest.raises(GatewayRequestError, match="does not exist"):
        await right.refund("pay_DoesNotExist", 100, "unknown", key())
    await right.aclose()


async def test_stripe_intent_pay_verify_webhooks_refund(
    stripe_gateway: StripeGateway, fake_gateways: RunningFakeGateways, receiver: Any
) -> None:
    intent = await stripe_gateway.create_order(45000, "INR", "booking-10", {"booking_id": "b10"}, key())
    assert (intent.provider, intent.amount_minor, intent.currency) == ("stripe", 45000, "INR")
    assert intent.status == "requires_payment_method" and intent.client_secret
    assert intent.raw["metadata"] == {"receipt": "booking-10", "booking_id": "b10"}

    pending = await stripe_gateway.verify_checkout(CheckoutProof(order_ref=intent.order_ref))
    assert pending.status is CheckoutStatus.PENDING
    pay(fake_gateways, f"stripe/payment_intents/{intent.order_ref}/pay")
    paid = await stripe_gateway.verify_checkout(CheckoutProof(order_ref=intent.order_ref))
    assert (paid.status, paid.amount_minor, paid.currency) == (CheckoutStatus.PAID, 45000, "INR")

    (event,) = receiver.wait_for(intent.order_ref, 1)
    assert (event.type, event.amount_minor, event.currency) == (
        WebhookEventType.PAYMENT_SUCCEEDED,
        45000,
        "INR",
    )
    delivered = receiver.received_for(event.event_id)
    header = delivered.headers["stripe-signature"]
    assert header.count("v1=") == 2  # the fake is mid-rotation; the receiver knows only the new secret
    for secret in fake_gateways.config.stripe_webhook_secrets:
        constructed = stripe.Webhook.construct_event(delivered.body, header, secret)
        assert constructed["id"] == event.event_id

    refund = await stripe_gateway.refund(intent.order_ref, 20000, "cancelled 10 h before start", key())
    assert (refund.amount_minor, refund.status, refund.payment_id) == (20000, "succeeded", intent.order_ref)
    refunded = receiver.wait_for(intent.order_ref, 2)[-1]
    assert refunded.type is WebhookEventType.REFUND_PROCESSED and refunded.provider_type == "charge.refunded"
    assert (refunded.refund_id, refunded.refund_amount_minor, refunded.amount_refunded_minor) == (
        refund.refund_id,
        20000,
        20000,
    )
    with pytest.raises(GatewayRequestError, match="greater than"):
        await stripe_gateway.refund(intent.order_ref, 25001, "too much", key())


async def test_stripe_idempotency_key_replays_and_conflicts(
    stripe_gateway: StripeGateway, fake_gateways: RunningFakeGateways
) -> None:
    idem = key()
    first = await stripe_gateway.create_order(5000, "INR", "booking-11", {}, idem)
    again = await stripe_gateway.create_order(5000, "INR", "booking-11", {}, idem)
    assert first.order_ref == again.order_ref
    with pytest.raises(GatewayRequestError) as conflict:
        await stripe_gateway.create_order(6000, "INR", "booking-11", {}, idem)
    assert conflict.value.code == "idempotency_error"
    pay(fake_gateways, f"stripe/payment_intents/{first.order_ref}/pay")
    refund_key = key()
    one = await stripe_gateway.refund(first.order_ref, 1000, "staff", refund_key)
    two = await stripe_gateway.refund(first.order_ref, 1000, "staff", refund_key)
    assert one.refund_id == two.refund_id
    charge_id = fake_gateways.fakes.stripe.intents[first.order_ref]["latest_charge"]
    assert fake_gateways.fakes.stripe.charges[charge_id]["amount_refunded"] == 1000


async def test_stripe_failed_payment_and_refund_of_unpaid_intent(
    stripe_gateway: StripeGateway, fake_gateways: RunningFakeGateways, receiver: Any
) -> None:
    intent = await stripe_gateway.create_order(7000, "USD", "booking-12", {}, key())
    pay(fake_gateways, f"stripe/payment_intents/{intent.order_ref}/fail")
    (event,) = receiver.wait_for(intent.order_ref, 1)
    assert (event.type, event.currency, event.failure_reason) == (
        WebhookEventType.PAYMENT_FAILED,
        "USD",
        "Your card was declined.",
    )
    failed = await stripe_gateway.verify_checkout(CheckoutProof(order_ref=intent.order_ref))
    assert failed.status is CheckoutStatus.FAILED
    with pytest.raises(GatewayRequestError, match="successful charge"):
        await stripe_gateway.refund(intent.order_ref, 100, "nothing to refund", key())


async def test_stripe_bad_key_unknown_intent_and_bad_ids(fake_gateways: RunningFakeGateways) -> None:
    wrong = StripeGateway(StripeConfig(secret_key="sk_test_wrong", base_url=fake_gateways.stripe_base_url))
    with pytest.raises(GatewayAuthError, match="Invalid API Key"):
        await wrong.create_order(5000, "INR", "booking-13", {}, key())
    await wrong.aclose()
    right = StripeGateway(fake_gateways.stripe_config())
    with pytest.raises(GatewayRequestError, match="No such payment_intent") as missing:
        await right.verify_checkout(CheckoutProof(order_ref="pi_doesnotexist"))
    assert missing.value.status == 404
    with pytest.raises(InvalidPaymentRequest):
        await right.verify_checkout(CheckoutProof(order_ref="pi_1/../../v1/refunds"))
    with pytest.raises(CheckoutRejected):
        await right.verify_checkout(CheckoutProof(order_ref="pi_1", payment_id="pi_2"))
    await right.aclose()


async def test_unreachable_gateway_is_unavailable() -> None:
    gateway = StripeGateway(StripeConfig(secret_key="sk", base_url="http://127.0.0.1:9", timeout_s=2))
    with pytest.raises(GatewayUnavailable):
        await gateway.create_order(5000, "INR", "booking-14", {}, key())
    await gateway.aclose()


def test_webhooks_are_retried_until_the_receiver_answers_2xx(
    fake_gateways: RunningFakeGateways, receiver: Any
) -> None:
    intent = fake_gateways.fakes.stripe  # create through the API so state is realistic
    created = httpx.post(
        f"{fake_gateways.stripe_base_url}/v1/payment_intents",
        data={"amount": "9900", "currency": "inr"},
        headers={"Authorization": f"Bearer {fake_gateways.config.stripe_secret_key}"},
    ).json()
    with receiver.lock:
        receiver.fail_next = 2
    pay(fake_gateways, f"stripe/payment_intents/{created['id']}/pay")
    (event,) = receiver.wait_for(created["id"], 1)
    delivery = wait_until_finished(fake_gateways, event.event_id)
    assert delivery.status_codes == [500, 500, 200] and delivery.delivered
    assert intent.intents[created["id"]]["status"] == "succeeded"
