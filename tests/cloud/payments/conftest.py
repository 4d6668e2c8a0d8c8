"""Fixtures for the payments tests: the fake gateways and a webhook receiver, both over real HTTP.

The receiver stands where the cloud's webhook routes will be: it authenticates every delivery with
the real adapters' `parse_webhook` and answers 400 on rejection, 200 otherwise (or 500 on demand,
to exercise the fakes' retries).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cloud.payments.fake_gateway import (
    FakeGatewayConfig,
    RunningFakeGateways,
    serve_in_thread,
    start_fake_gateways,
)
from cloud.payments.gateways import (
    PaymentGateway,
    RazorpayConfig,
    RazorpayGateway,
    StripeConfig,
    StripeGateway,
    WebhookRejected,
)
from cloud.payments.schemas import WebhookEvent


@dataclass
class ReceivedWebhook:
    provider: str
    body: bytes
    headers: dict[str, str]
    event: WebhookEvent | None
    rejection: str | None


@dataclass
class WebhookReceiver:
    gateways: dict[str, PaymentGateway]
    base_url: str = ""
    received: list[ReceivedWebhook] = field(default_factory=list)
    fail_next: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle(self, request: Request) -> JSONResponse:
        provider = request.path_params["provider"]
        body = await request.body()
        headers = dict(request.headers)
        with self.lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return JSONResponse({"error": "try again"}, status_code=500)
        try:
            event = self.gateways[provider].parse_webhook(body, request.headers, dt.datetime.now(dt.UTC))
        except WebhookRejected as exc:
            with self.lock:
                self.received.append(ReceivedWebhook(provider, body, headers, None, exc.reason))
            return JSONResponse({"error": exc.reason}, status_code=400)
        with self.lock:
            self.received.append(ReceivedWebhook(provider, body, headers, event, None))
        return JSONResponse({"ok": True})

    def events_for(self, ref: str) -> list[WebhookEvent]:
        with self.lock:
            return [r.event for r in self.received if r.event is not None and r.event.order_ref == ref]

    def wait_for(self, ref: str, count: int, timeout_s: float = 10.0) -> list[WebhookEvent]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            events = self.events_for(ref)
            if len(events) >= count:
                return events
            time.sleep(0.01)
        raise TimeoutError(f"{count} webhook(s) for {ref} not received")

    def received_for(self, event_id: str) -> ReceivedWebhook:
        with self.lock:
            return next(r for r in self.received if r.event is not None and r.event.event_id == event_id)


@pytest.fixture(scope="module")
def fake_config() -> FakeGatewayConfig:
    # Two Stripe secrets: every fake webhook carries two v1 signatures, as during a rotation.
    return FakeGatewayConfig(stripe_webhook_secrets=("whsec_old_secret_0001", "whsec_new_secret_0002"))


@pytest.fixture(scope="module")
def receiver(fake_config: FakeGatewayConfig) -> Iterator[WebhookReceiver]:
    parsers: dict[str, PaymentGateway] = {
        "razorpay": RazorpayGateway(
            RazorpayConfig(
                key_id="unused", key_secret="unused", webhook_secrets=(fake_config.razorpay_webhook_secret,)
            )
        ),
        # The receiver knows only the NEW secret: one of the two v1 signatures must match.
        "stripe": StripeGateway(
            StripeConfig(secret_key="unused", webhook_secrets=("whsec_new_secret_0002",))
        ),
    }
    state = WebhookReceiver(parsers)
    app = Starlette(routes=[Route("/hooks/{provider}", state.handle, methods=["POST"])])
    server, thread, base_url = serve_in_thread(app)
    state.base_url = base_url
    yield state
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def fake_gateways(fake_config: FakeGatewayConfig, receiver: WebhookReceiver) -> Iterator[RunningFakeGateways]:
    running = start_fake_gateways("127.0.0.1", 0, f"{receiver.base_url}/hooks", fake_config)
    yield running
    running.stop()


@pytest.fixture
async def razorpay(fake_gateways: RunningFakeGateways) -> AsyncIterator[RazorpayGateway]:
    gateway = RazorpayGateway(fake_gateways.razorpay_config())
    yield gateway
    await gateway.aclose()


@pytest.fixture
async def stripe_gateway(fake_gateways: RunningFakeGateways) -> AsyncIterator[StripeGateway]:
    gateway = StripeGateway(fake_gateways.stripe_config())
    yield gateway
    await gateway.aclose()
