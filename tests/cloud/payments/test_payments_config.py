"""Gateways built from environment settings talk to the fakes."""

from __future__ import annotations

import httpx
import pytest

from cloud.payments.config import PaymentSettings, build_gateways
from cloud.payments.fake_gateway import RunningFakeGateways
from cloud.payments.schemas import CheckoutProof, CheckoutStatus


def test_no_keys_no_gateways() -> None:
    unset = PaymentSettings(razorpay_key_id=None, razorpay_key_secret=None, stripe_secret_key=None)
    assert build_gateways(unset) == {}


async def test_settings_from_the_fakes_environment(
    fake_gateways: RunningFakeGateways, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in fake_gateways.environment().items():
        monkeypatch.setenv(name, value)
    settings = PaymentSettings()
    shown = repr(settings) + str(settings.model_dump())
    assert fake_gateways.config.razorpay_key_secret not in shown
    assert fake_gateways.config.stripe_secret_key not in shown
    gateways = build_gateways(settings)
    assert set(gateways) == {"razorpay", "stripe"}
    stripe_gateway = gateways["stripe"]
    intent = await stripe_gateway.create_order(1500, "INR", "cfg-1", {}, "cfg-key-0000001")
    async with httpx.AsyncClient() as client:
        await client.post(f"{fake_gateways.base_url}/_fake/stripe/payment_intents/{intent.order_ref}/pay")
    verified = await stripe_gateway.verify_checkout(CheckoutProof(order_ref=intent.order_ref))
    assert verified.status is CheckoutStatus.PAID
    order = await gateways["razorpay"].create_order(1500, "INR", "cfg-2", {}, "cfg-key-0000002")
    assert order.provider == "razorpay"
    for gateway in gateways.values():
        await gateway.aclose()
