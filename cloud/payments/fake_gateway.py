"""Local fake Razorpay + Stripe on one port, for the demo and the tests.

Layout of the one Starlette app:
  /razorpay/v1/...                      Razorpay API  (adapter base URL: <base>/razorpay)
  /stripe/v1/...                        Stripe API    (adapter base URL: <base>/stripe)
  POST /_fake/razorpay/orders/{id}/pay|fail          simulate Checkout (JSON body optional:
  POST /_fake/stripe/payment_intents/{id}/pay|fail    {"amount_minor": int, "method": str, "reason": str})
  GET  /_fake/checkout/{provider}/{ref}?return_url=  a page with Pay / Fail buttons for the demo student
  GET  /_fake/deliveries                              webhooks sent so far, with their HTTP statuses
Webhooks go to `<webhook_target_url>/razorpay` and `<webhook_target_url>/stripe`, signed as the
provider signs them, retried with backoff on non-2xx.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from cloud.payments.fake.common import FakeGatewayConfig, WebhookDelivery, WebhookSender
from cloud.payments.fake.razorpay import FakeRazorpay
from cloud.payments.fake.stripe import FakeStripe
from cloud.payments.gateways.razorpay import RazorpayConfig
from cloud.payments.gateways.stripe import StripeConfig

__all__ = [
    "FakeGatewayConfig",
    "FakeGateways",
    "RunningFakeGateways",
    "WebhookDelivery",
    "create_fake_gateway_app",
    "serve_in_thread",
    "start_fake_gateways",
]


class FakeGateways:
    """State and routes of both fakes; `app` is the ASGI application."""

    def __init__(self, config: FakeGatewayConfig) -> None:
        self.config = config
        self.sender = WebhookSender(config)
        self.razorpay = FakeRazorpay(config, self.sender)
        self.stripe = FakeStripe(config, self.sender)
        routes = [
            *self.razorpay.routes(),
            *self.stripe.routes(),
            Route("/_fake/checkout/{provider}/{ref}", self.checkout_page, methods=["GET"]),
            Route("/_fake/checkout/{provider}/{ref}", self.checkout_submit, methods=["POST"]),
            Route("/_fake/deliveries", self.list_deliveries, methods=["GET"]),
            Route("/_fake/health", self.health, methods=["GET"]),
        ]
        self.app = Starlette(routes=routes, lifespan=self._lifespan)

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        await self.sender.start()
        try:
            yield
        finally:
            await self.sender.stop()

    def deliveries(self) -> list[WebhookDelivery]:
        return self.sender.deliveries()

    async def health(self, _request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def list_deliveries(self, _request: Request) -> JSONResponse:
        return JSONResponse([_delivery_json(d) for d in self.deliveries()])

    async def checkout_page(self, request: Request) -> Response:
        provider, ref = request.path_params["provider"], request.path_params["ref"]
        target = self._payable(provider, ref)
        if target is None:
            return HTMLResponse("<h1>Unknown order</h1>", status_code=404)
        amount, currency = target
        return_url = request.query_params.get("return_url", "")
        return HTMLResponse(_checkout_html(provider, ref, amount, currency, return_url))

    async def checkout_submit(self, request: Request) -> Response:
        provider, ref = request.path_params["provider"], request.path_params["ref"]
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        fake = self.razorpay if provider == "razorpay" else self.stripe if provider == "stripe" else None
        if fake is None:
            return HTMLResponse("<h1>Unknown provider</h1>", status_code=404)
        result = fake.pay(ref, b"") if form.get("action") == "pay" else fake.fail(ref, b"")
        return_url = form.get("return_url", "")
        if not _safe_return_url(return_url):
            return result
        outcome = _checkout_outcome(provider, result)
        separator = "&" if urlsplit(return_url).query else "?"
        return RedirectResponse(return_url + separator + urlencode(outcome), status_code=303)

    def _payable(self, provider: str, ref: str) -> tuple[int, str] | None:
        if provider == "razorpay" and ref in self.razorpay.orders:
            order = self.razorpay.orders[ref]
            return order["amount"], order["currency"]
        if provider == "stripe" and ref in self.stripe.intents:
            intent = self.stripe.intents[ref]
            return intent["amount"], intent["currency"].upper()
        return None


def _delivery_json(delivery: WebhookDelivery) -> dict[str, Any]:
    return {
        "provider": delivery.provider,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "url": delivery.url,
        "status_codes": list(delivery.status_codes),
        "delivered": delivery.delivered,
        "finished": delivery.finished,
    }


def _safe_return_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _checkout_outcome(provider: str, result: Response) -> dict[str, str]:
    body = json.loads(bytes(result.body)) if result.body else {}
    if result.status_code >= 400 or "error" in body:
        return {"provider": provider, "status": "failed"}
    if provider == "razorpay":
        return {"provider": provider, "status": "paid", **body}
    return {
        "provider": provider,
        "status": "paid",
        "payment_intent": body["payment_intent"],
        "redirect_status": "succeeded",
    }


def _checkout_html(provider: str, ref: str, amount_minor: int, currency: str, return_url: str) -> str:
    esc = html.escape
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Fake {esc(provider)} checkout</title></head>
<body style="font-family: sans-serif; max-width: 28rem; margin: 3rem auto">
<h1>Fake {esc(provider.capitalize())} checkout</h1>
<p>Order <code>{esc(ref)}</code>: <strong id="amount">{amount_minor / 100:.2f} {esc(currency)}</strong></p>
<form method="post">
  <input type="hidden" name="return_url" value="{esc(return_url)}">
  <button name="action" value="pay" id="pay">Pay</button>
  <button name="action" value="fail" id="fail">Fail payment</button>
</form>
</body></html>"""


def create_fake_gateway_app(config: FakeGatewayConfig | None = None) -> FakeGateways:
    return FakeGateways(config or FakeGatewayConfig())


@dataclass
class RunningFakeGateways:
    """Fake gateways served by uvicorn in a background thread; `stop()` shuts them down."""

    fakes: FakeGateways
    base_url: str
    _server: uvicorn.Server
    _thread: threading.Thread

    @property
    def config(self) -> FakeGatewayConfig:
        return self.fakes.config

    @property
    def razorpay_base_url(self) -> str:
        return f"{self.base_url}/razorpay"

    @property
    def stripe_base_url(self) -> str:
        return f"{self.base_url}/stripe"

    def razorpay_config(self) -> RazorpayConfig:
        """Adapter settings that talk to this fake."""
        c = self.config
        return RazorpayConfig(
            key_id=c.razorpay_key_id,
            key_secret=c.razorpay_key_secret,
            webhook_secrets=(c.razorpay_webhook_secret,),
            base_url=self.razorpay_base_url,
        )

    def stripe_config(self) -> StripeConfig:
        c = self.config
        return StripeConfig(
            secret_key=c.stripe_secret_key,
            webhook_secrets=c.stripe_webhook_secrets,
            base_url=self.stripe_base_url,
        )

    def demo_json(self) -> dict[str, Any]:
        """What the demo writes under `payments` in demo.json."""
        c = self.config
        return {
            "fake_gateway_url": self.base_url,
            "razorpay": {
                "base_url": self.razorpay_base_url,
                "key_id": c.razorpay_key_id,
                "key_secret": c.razorpay_key_secret,
                "webhook_secret": c.razorpay_webhook_secret,
                "webhook_url": c.razorpay_webhook_url,
            },
            "stripe": {
                "base_url": self.stripe_base_url,
                "secret_key": c.stripe_secret_key,
                "webhook_secrets": list(c.stripe_webhook_secrets),
                "webhook_url": c.stripe_webhook_url,
            },
        }

    def deliveries(self) -> list[WebhookDelivery]:
        return self.fakes.deliveries()

    def environment(self) -> dict[str, str]:
        """Environment variables (`PaymentSettings`) that point the cloud at these fakes."""
        c = self.config
        return {
            "RAZORPAY_KEY_ID": c.razorpay_key_id,
            "RAZORPAY_KEY_SECRET": c.razorpay_key_secret,
            "RAZORPAY_WEBHOOK_SECRETS": c.razorpay_webhook_secret,
            "RAZORPAY_BASE_URL": self.razorpay_base_url,
            "STRIPE_SECRET_KEY": c.stripe_secret_key,
            "STRIPE_WEBHOOK_SECRETS": ",".join(c.stripe_webhook_secrets),
            "STRIPE_BASE_URL": self.stripe_base_url,
        }

    def wait_for_deliveries(self, count: int, timeout_s: float = 10.0) -> list[WebhookDelivery]:
        """Block until at least `count` deliveries have finished (delivered or given up)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            finished = [d for d in self.deliveries() if d.finished]
            if len(finished) >= count:
                return finished
            time.sleep(0.01)
        raise TimeoutError(f"fewer than {count} webhook deliveries finished within {timeout_s}s")

    def stop(self, timeout_s: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout_s)


def serve_in_thread(
    app: Any, host: str = "127.0.0.1", port: int = 0, startup_timeout_s: float = 10.0
) -> tuple[uvicorn.Server, threading.Thread, str]:
    """Serve an ASGI app with uvicorn in a daemon thread; returns (server, thread, base URL) once ready."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(
        target=lambda: asyncio.run(server.serve(sockets=[sock])), name="asgi-server", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"server on {host}:{bound_port} did not start")
        time.sleep(0.01)
    url_host = f"[{host}]" if ":" in host else host
    return server, thread, f"http://{url_host}:{bound_port}"


def start_fake_gateways(
    host: str = "127.0.0.1",
    port: int = 0,
    webhook_target_url: str | None = None,
    config: FakeGatewayConfig | None = None,
    startup_timeout_s: float = 10.0,
) -> RunningFakeGateways:
    """Serve both fakes on `host:port` (0 = any free port) in a daemon thread and return once ready.

    Webhooks go to `<webhook_target_url>/razorpay` and `/stripe` (e.g. the cloud's
    `http://host:8000/api/v1/payments/webhooks`), unless `config` names URLs itself.
    """
    fakes = create_fake_gateway_app((config or FakeGatewayConfig()).with_target(webhook_target_url))
    server, thread, base_url = serve_in_thread(fakes.app, host, port, startup_timeout_s)
    return RunningFakeGateways(fakes, base_url, server, thread)


def main() -> None:
    """`python -m cloud.payments.fake_gateway [port] [webhook_target_url]`: serve until Ctrl-C."""
    import sys

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    target = sys.argv[2] if len(sys.argv) > 2 else None
    running = start_fake_gateways("127.0.0.1", port, target)
    print(running.base_url, flush=True)
    try:
        running._thread.join()
    except KeyboardInterrupt:
        running.stop()


if __name__ == "__main__":
    main()
