"""Fake Razorpay: Orders, Payments, Refunds (basic auth), checkout signatures and signed webhooks."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cloud.payments.fake.common import (
    FakeGatewayConfig,
    IdempotencyConflict,
    IdempotencyMemory,
    WebhookSender,
    fingerprint,
    new_id,
    unix_now,
)
from cloud.payments.gateways.razorpay import (
    EVENT_ID_HEADER,
    REFUND_IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    sign_checkout,
    sign_webhook,
)

MIN_AMOUNT = 100  # Razorpay's minimum order: 1.00 of the currency


def error(status: int, description: str, field: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {
        "code": "BAD_REQUEST_ERROR",
        "description": description,
        "source": "business" if status == 400 else "NA",
        "step": "payment_initiation" if status == 400 else "NA",
        "reason": "input_validation_failed" if status == 400 else "NA",
        "metadata": {},
    }
    if field:
        body["field"] = field
    return JSONResponse({"error": body}, status_code=status)


class FakeRazorpay:
    def __init__(self, config: FakeGatewayConfig, sender: WebhookSender) -> None:
        self.config = config
        self.sender = sender
        self.orders: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.idempotency = IdempotencyMemory()

    def routes(self) -> list[Route]:
        return [
            Route("/razorpay/v1/orders", self.create_order, methods=["POST"]),
            Route("/razorpay/v1/orders", self.list_orders, methods=["GET"]),
            Route("/razorpay/v1/orders/{order_id}", self.get_order, methods=["GET"]),
            Route("/razorpay/v1/payments/{payment_id}", self.get_payment, methods=["GET"]),
            Route("/razorpay/v1/payments/{payment_id}/refund", self.create_refund, methods=["POST"]),
            Route("/_fake/razorpay/orders/{order_id}/pay", self.fake_pay, methods=["POST"]),
            Route("/_fake/razorpay/orders/{order_id}/fail", self.fake_fail, methods=["POST"]),
        ]

    def _authorized(self, request: Request) -> bool:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(
            user.encode(), self.config.razorpay_key_id.encode()
        ) and hmac.compare_digest(password.encode(), self.config.razorpay_key_secret.encode())

    async def _json(self, request: Request) -> dict[str, Any] | JSONResponse:
        if not self._authorized(request):
            return error(401, "Authentication failed")
        raw = await request.body()
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            return error(400, "The request body is not valid JSON")
        return body if isinstance(body, dict) else error(400, "The request body must be a JSON object")

    async def create_order(self, request: Request) -> JSONResponse:
        body = await self._json(request)
        if isinstance(body, JSONResponse):
            return body
        problem = _order_problem(body)
        if problem:
            return error(400, *problem)
        order = {
            "id": new_id("order_"),
            "entity": "order",
            "amount": body["amount"],
            "amount_paid": 0,
            "amount_due": body["amount"],
            "currency": body["currency"],
            "receipt": body.get("receipt"),
            "offer_id": None,
            "status": "created",
            "attempts": 0,
            "notes": body.get("notes") or {},
            "created_at": unix_now(),
        }
        self.orders[order["id"]] = order
        return JSONResponse(order)

    async def list_orders(self, request: Request) -> JSONResponse:
        if not self._authorized(request):
            return error(401, "Authentication failed")
        receipt = request.query_params.get("receipt")
        items = [o for o in self.orders.values() if receipt is None or o["receipt"] == receipt]
        return JSONResponse({"entity": "collection", "count": len(items), "items": items})

    async def get_order(self, request: Request) -> JSONResponse:
        if not self._authorized(request):
            return error(401, "Authentication failed")
        order = self.orders.get(request.path_params["order_id"])
        return JSONResponse(order) if order else error(400, "The id provided does not exist")

    async def get_payment(self, request: Request) -> JSONResponse:
        if not self._authorized(request):
            return error(401, "Authentication failed")
        payment = self.payments.get(request.path_params["payment_id"])
        return JSONResponse(payment) if payment else error(400, "The id provided does not exist")

    async def create_refund(self, request: Request) -> JSONResponse:
        body = await self._json(request)
        if isinstance(body, JSONResponse):
            return body
        payment_id = request.path_params["payment_id"]
        key = request.headers.get(REFUND_IDEMPOTENCY_HEADER)
        if key is None:
            return self._refund(payment_id, body)
        try:
            seen = self.idempotency.lookup(key, fingerprint([payment_id, body]))
        except IdempotencyConflict:
            return error(400, "Different request with the same idempotency key has already been processed.")
        if seen:
            return JSONResponse(seen[1], status_code=seen[0])
        response = self._refund(payment_id, body)
        self.idempotency.remember(key, fingerprint([payment_id, body]), response.status_code, _body(response))
        return response

    def _refund(self, payment_id: str, body: dict[str, Any]) -> JSONResponse:
        payment = self.payments.get(payment_id)
        if payment is None:
            return error(400, "The id provided does not exist")
        if payment["status"] not in ("captured", "refunded"):
            return error(400, "Only captured payments can be refunded")
        remaining = payment["amount"] - payment["amount_refunded"]
        amount = body.get("amount", remaining)
        if not _positive_int(amount):
            return error(400, "The amount must be an integer.", "amount")
        if amount > remaining:
            return error(400, "The refund amount provided is greater than amount captured", "amount")
        refund = {
            "id": new_id("rfnd_"),
            "entity": "refund",
            "amount": amount,
            "currency": payment["currency"],
            "payment_id": payment_id,
            "notes": body.get("notes") or {},
            "receipt": body.get("receipt"),
            "acquirer_data": {"arn": None},
            "created_at": unix_now(),
            "batch_id": None,
            "status": "processed",
            "speed_processed": "normal",
            "speed_requested": body.get("speed", "normal"),
        }
        self.refunds[refund["id"]] = refund
        payment["amount_refunded"] += amount
        payment["refund_status"] = "full" if payment["amount_refunded"] == payment["amount"] else "partial"
        if payment["amount_refunded"] == payment["amount"]:
            payment["status"] = "refunded"
        self.emit("refund.processed", {"refund": refund, "payment": payment})
        return JSONResponse(refund)

    async def fake_pay(self, request: Request) -> JSONResponse:
        return self.pay(request.path_params["order_id"], await request.body())

    async def fake_fail(self, request: Request) -> JSONResponse:
        return self.fail(request.path_params["order_id"], await request.body())

    def pay(self, ref: str, raw: bytes) -> JSONResponse:
        """Simulates the student completing Checkout; returns what Checkout hands the page."""
        order, options = self._fake_target(ref, raw)
        if isinstance(order, JSONResponse):
            return order
        amount = options.get("amount_minor", order["amount"])
        if not _positive_int(amount):
            return error(400, "amount_minor must be a positive integer", "amount_minor")
        payment = self._new_payment(order, amount, options.get("method", "upi"), "captured")
        order.update(status="paid", amount_paid=amount, amount_due=0, attempts=order["attempts"] + 1)
        self.emit("payment.captured", {"payment": payment})
        self.emit("order.paid", {"payment": payment, "order": order})
        return JSONResponse(self.checkout_response(order["id"], payment["id"]))

    def fail(self, ref: str, raw: bytes) -> JSONResponse:
        order, options = self._fake_target(ref, raw)
        if isinstance(order, JSONResponse):
            return order
        payment = self._new_payment(order, order["amount"], options.get("method", "card"), "failed")
        payment.update(
            error_code="BAD_REQUEST_ERROR",
            error_description=options.get("reason", "Payment failed because the card was declined"),
            error_reason="payment_failed",
        )
        order["attempts"] += 1
        self.emit("payment.failed", {"payment": payment})
        return JSONResponse(
            {"error": {"code": "BAD_REQUEST_ERROR", "metadata": {"payment_id": payment["id"]}}}
        )

    def _fake_target(self, ref: str, raw: bytes) -> tuple[dict[str, Any] | JSONResponse, dict[str, Any]]:
        order = self.orders.get(ref)
        if order is None:
            return error(404, "No such order"), {}
        if order["status"] == "paid":
            return error(400, "Order is already paid"), {}
        try:
            options = json.loads(raw) if raw else {}
        except ValueError:
            options = None
        if not isinstance(options, dict):
            return error(400, "Body must be a JSON object"), {}
        return order, options

    def _new_payment(self, order: dict[str, Any], amount: int, method: str, status: str) -> dict[str, Any]:
        payment = {
            "id": new_id("pay_"),
            "entity": "payment",
            "amount": amount,
            "currency": order["currency"],
            "status": status,
            "order_id": order["id"],
            "invoice_id": None,
            "international": False,
            "method": method,
            "amount_refunded": 0,
            "refund_status": None,
            "captured": status == "captured",
            "description": order.get("receipt"),
            "email": "student@example.com",
            "contact": "+919000000000",
            "notes": order["notes"],
            "fee": amount * 2 // 100,
            "tax": amount * 2 // 100 * 18 // 100,
            "error_code": None,
            "error_description": None,
            "error_reason": None,
            "created_at": unix_now(),
        }
        self.payments[payment["id"]] = payment
        return payment

    def checkout_response(self, order_id: str, payment_id: str) -> dict[str, str]:
        return {
            "razorpay_order_id": order_id,
            "razorpay_payment_id": payment_id,
            "razorpay_signature": sign_checkout(order_id, payment_id, self.config.razorpay_key_secret),
        }

    def emit(self, event: str, entities: dict[str, dict[str, Any]]) -> str:
        """Send a webhook `event` carrying copies of `entities`; returns its event id."""
        event_id = new_id("evt_")
        document = {
            "entity": "event",
            "account_id": "acc_FakeStudySpot01",
            "event": event,
            "contains": list(entities),
            "payload": {name: {"entity": dict(entity)} for name, entity in entities.items()},
            "created_at": unix_now(),
        }
        body = json.dumps(document).encode()
        secret = self.config.razorpay_webhook_secret

        def sign(raw: bytes) -> dict[str, str]:
            return {SIGNATURE_HEADER: sign_webhook(raw, secret), EVENT_ID_HEADER: event_id}

        self.sender.send("razorpay", self.config.razorpay_webhook_url, event_id, event, body, sign)
        return event_id


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _body(response: JSONResponse) -> dict[str, Any]:
    loaded = json.loads(bytes(response.body))
    return loaded if isinstance(loaded, dict) else {}


def _order_problem(body: dict[str, Any]) -> tuple[str, str] | None:
    amount, currency, receipt = body.get("amount"), body.get("currency"), body.get("receipt")
    if amount is None:
        return "The amount field is required.", "amount"
    if not isinstance(amount, int) or isinstance(amount, bool):
        return "The amount must be an integer.", "amount"
    if amount < MIN_AMOUNT:
        return "Order amount less than minimum amount allowed", "amount"
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isupper():
        return "The currency is invalid.", "currency"
    if receipt is not None and (not isinstance(receipt, str) or len(receipt) > 40):
        return "The receipt may not be greater than 40 characters.", "receipt"
    notes = body.get("notes", {})
    if not isinstance(notes, dict) or len(notes) > 15:
        return "Number of fields in notes should be less than or equal to 15", "notes"
    return None
