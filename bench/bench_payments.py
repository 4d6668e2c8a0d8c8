"""Payments: webhook verification throughput, order -> pay -> signed webhook round trip against the
fake gateways over real HTTP, and GST invoice PDF rendering.

The booking -> paid -> pass figure of issue 7 needs the booking flow; until it exists the round trip
stops at "authentic webhook parsed by the receiver", which is the payment half of that path.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time
import uuid

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.harness import BenchResult, measure, summarize
from cloud.payments.fake_gateway import FakeGatewayConfig, serve_in_thread, start_fake_gateways
from cloud.payments.gateways import RazorpayConfig, RazorpayGateway, StripeConfig, StripeGateway
from cloud.payments.gateways.razorpay import sign_webhook as sign_razorpay
from cloud.payments.gateways.stripe import sign_webhook as sign_stripe
from cloud.payments.invoice_pdf import render_invoice_pdf
from cloud.payments.schemas import InvoiceData, InvoiceLine, InvoiceParty

ROUND_TRIPS = 40


def _rate(figure: str, median: float, p99: float, goal: str) -> BenchResult:
    return BenchResult(figure, 1 / median, 1 / p99, "webhooks/s", goal)


def _webhook_results() -> list[BenchResult]:
    now = dt.datetime.now(dt.UTC)
    payment = {"id": "pay_1", "amount": 50000, "currency": "INR", "order_id": "order_1", "status": "captured"}
    rz_body = json.dumps(
        {
            "event": "payment.captured",
            "payload": {"payment": {"entity": payment}},
            "created_at": int(now.timestamp()),
        }
    ).encode()
    rz = RazorpayGateway(RazorpayConfig("k", "s", webhook_secrets=("whsec",)))
    rz_headers = {"X-Razorpay-Signature": sign_razorpay(rz_body, "whsec"), "x-razorpay-event-id": "evt_1"}
    intent = {
        "id": "pi_1",
        "amount": 50000,
        "amount_received": 50000,
        "currency": "inr",
        "status": "succeeded",
    }
    st_body = json.dumps(
        {
            "id": "evt_1",
            "type": "payment_intent.succeeded",
            "created": int(now.timestamp()),
            "data": {"object": intent},
        }
    ).encode()
    st = StripeGateway(StripeConfig("sk", webhook_secrets=("whsec_a", "whsec_b")))
    st_headers = {"Stripe-Signature": sign_stripe(st_body, ("whsec_b",), int(now.timestamp()))}
    rz_median, rz_p99 = measure(lambda: rz.parse_webhook(rz_body, rz_headers, now), 3000)
    st_median, st_p99 = measure(lambda: st.parse_webhook(st_body, st_headers, now), 3000)
    return [
        _rate("razorpay webhook verify+parse (1 core)", rz_median, rz_p99, ">= 2,000/s"),
        _rate("stripe webhook verify+parse, 2 secrets (1 core)", st_median, st_p99, ">= 2,000/s"),
    ]


class _Receiver:
    """Records when each order's authentic success webhook arrives."""

    def __init__(self, gateways: dict[str, RazorpayGateway | StripeGateway]) -> None:
        self.gateways = gateways
        self.arrived: dict[str, float] = {}
        self.lock = threading.Lock()

    async def handle(self, request: Request) -> JSONResponse:
        provider = request.path_params["provider"]
        event = self.gateways[provider].parse_webhook(
            await request.body(), request.headers, dt.datetime.now(dt.UTC)
        )
        if event.order_ref:
            with self.lock:
                self.arrived.setdefault(event.order_ref, time.perf_counter())
        return JSONResponse({"ok": True})

    def wait(self, ref: str, timeout_s: float = 10.0) -> float:
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            with self.lock:
                if ref in self.arrived:
                    return self.arrived[ref]
            time.sleep(0.0005)
        raise TimeoutError(ref)


async def _round_trips(
    gateway: RazorpayGateway | StripeGateway, pay_path: str, receiver: _Receiver
) -> list[float]:
    samples: list[float] = []
    async with httpx.AsyncClient() as client:
        for _ in range(ROUND_TRIPS):
            start = time.perf_counter()
            order = await gateway.create_order(
                50000, "INR", f"bench-{uuid.uuid4().hex[:20]}", {}, uuid.uuid4().hex
            )
            response = await client.post(pay_path.format(ref=order.order_ref))
            response.raise_for_status()
            arrived = await asyncio.to_thread(receiver.wait, order.order_ref)
            samples.append(arrived - start)
    return samples


def _round_trip_results() -> list[BenchResult]:
    config = FakeGatewayConfig(webhook_retry_delay_s=0.05)
    parsers: dict[str, RazorpayGateway | StripeGateway] = {
        "razorpay": RazorpayGateway(
            RazorpayConfig("k", "s", webhook_secrets=(config.razorpay_webhook_secret,))
        ),
        "stripe": StripeGateway(StripeConfig("sk", webhook_secrets=config.stripe_webhook_secrets)),
    }
    receiver = _Receiver(parsers)
    app = Starlette(routes=[Route("/hooks/{provider}", receiver.handle, methods=["POST"])])
    server, thread, receiver_url = serve_in_thread(app)
    fakes = start_fake_gateways(webhook_target_url=f"{receiver_url}/hooks", config=config)
    try:
        rz = RazorpayGateway(fakes.razorpay_config())
        st = StripeGateway(fakes.stripe_config())
        rz_samples = asyncio.run(
            _round_trips(rz, f"{fakes.base_url}/_fake/razorpay/orders/{{ref}}/pay", receiver)
        )
        st_samples = asyncio.run(
            _round_trips(st, f"{fakes.base_url}/_fake/stripe/payment_intents/{{ref}}/pay", receiver)
        )
    finally:
        fakes.stop()
        server.should_exit = True
        thread.join(10)
    results = []
    for name, samples in (("razorpay", rz_samples), ("stripe", st_samples)):
        median, p99 = summarize(samples)
        figure = f"{name}: order -> pay -> authentic webhook received (fake gateway, HTTP)"
        results.append(BenchResult(figure, median * 1e3, p99 * 1e3, "ms", "p99 <= 1000 ms"))
    return results


def _invoice_results() -> list[BenchResult]:
    supplier = InvoiceParty(
        name="Quiet Corner Library", gstin="29AAGCB7383J1Z4", state_code="29", state_name="Karnataka"
    )
    invoice = InvoiceData(
        number="QC/2026/0001",
        issued_at=dt.datetime.now(dt.UTC),
        supplier=supplier,
        customer=InvoiceParty(name="Asha Rao", state_code="27", state_name="Maharashtra"),
        lines=tuple(InvoiceLine(description=f"Seat {i}", unit_price_minor=150000) for i in range(5)),
    )
    median, p99 = measure(lambda: render_invoice_pdf(invoice), 30, warmup=2)
    return [
        BenchResult("GST invoice PDF, 5 lines (DejaVu embedded)", median * 1e3, p99 * 1e3, "ms", "<= 500 ms")
    ]


def run() -> list[BenchResult]:
    return [*_webhook_results(), *_round_trip_results(), *_invoice_results()]


if __name__ == "__main__":
    for result in run():
        print(result)
