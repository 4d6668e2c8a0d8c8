"""Fake Stripe: PaymentIntents and Refunds (form-encoded, Bearer key, Idempotency-Key), signed webhooks."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

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
from cloud.payments.gateways.stripe import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, sign_webhook

API_VERSION = "2024-06-20"
REFUND_REASONS = {"duplicate", "fraudulent", "requested_by_customer"}
_NESTED = re.compile(r"^([a-z_]+)\[([^\]]+)\]$")


def error(
    status: int,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    kind: str = "invalid_request_error",
) -> JSONResponse:
    body: dict[str, Any] = {"message": message, "type": kind}
    if code:
        body["code"] = code
    if param:
        body["param"] = param
    return JSONResponse({"error": body}, status_code=status)


def parse_form(raw: bytes) -> dict[str, Any]:
    """Stripe's form encoding: `a=1&metadata[k]=v` -> {"a": "1", "metadata": {"k": "v"}}."""
    form: dict[str, Any] = {}
    for key, value in parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True):
        nested = _NESTED.fullmatch(key)
        if nested:
            form.setdefault(nested.group(1), {})[nested.group(2)] = value
        else:
            form[key] = value
    return form


class FakeStripe:
    def __init__(self, config: FakeGatewayConfig, sender: WebhookSender) -> None:
        self.config = config
        self.sender = sender
        self.intents: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.idempotency = IdempotencyMemory()

    def routes(self) -> list[Route]:
        return [
            Route("/stripe/v1/payment_intents", self.create_intent, methods=["POST"]),
            Route("/stripe/v1/payment_intents/{intent_id}", self.get_intent, methods=["GET"]),
            Route("/stripe/v1/refunds", self.create_refund, methods=["POST"]),
            Route("/_fake/stripe/payment_intents/{intent_id}/pay", self.fake_pay, methods=["POST"]),
            Route("/_fake/stripe/payment_intents/{intent_id}/fail", self.fake_fail, methods=["POST"]),
        ]

    def _auth_problem(self, request: Request) -> JSONResponse | None:
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":  # Stripe also takes the key as the basic-auth user name
            try:
                credential = base64.b64decode(credential, validate=True).decode().partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                credential = ""
        elif scheme.lower() != "bearer":
            return error(401, "You did not provide an API key. Provide it in the Authorization header.")
        if hmac.compare_digest(credential.encode(), self.config.stripe_secret_key.encode()):
            return None
        return error(401, f"Invalid API Key provided: {credential[:8]}****{credential[-4:]}")

    async def _idempotent(
        self, request: Request, handler: Callable[[dict[str, Any]], JSONResponse]
    ) -> JSONResponse:
        problem = self._auth_problem(request)
        if problem:
            return problem
        form = parse_form(await request.body())
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is None:
            return handler(form)
        print_ = fingerprint([request.url.path, form])
        try:
            seen = self.idempotency.lookup(key, print_)
        except IdempotencyConflict:
            return error(
                400,
                "Keys for idempotent requests can only be used with the same parameters they were first "
                "used with. Try using a key other than '" + key + "' if you meant to execute a different "
                "request.",
                kind="idempotency_error",
            )
        if seen:
            return JSONResponse(seen[1], status_code=seen[0], headers={"Idempotent-Replayed": "true"})
        response = handler(form)
        if response.status_code < 500:
            self.idempotency.remember(key, print_, response.status_code, json.loads(bytes(response.body)))
        return response

    async def create_intent(self, request: Request) -> JSONResponse:
        return await self._idempotent(request, self._create_intent)

    async def create_refund(self, request: Request) -> JSONResponse:
        return await self._idempotent(request, self._create_refund)

    def _create_intent(self, form: dict[str, Any]) -> JSONResponse:
        amount = _amount(form.get("amount"))
        if "amount" not in form:
            return error(400, "Missing required param: amount.", code="parameter_missing", param="amount")
        if amount is None or amount < 1:
            return error(
                400,
                "Invalid integer: " + str(form["amount"]),
                code="parameter_invalid_integer",
                param="amount",
            )
        currency = form.get("currency")
        if not isinstance(currency, str) or not re.fullmatch(r"[a-z]{3}", currency):
            return error(
                400,
                f"Invalid currency: {currency}.",
                code="parameter_invalid_empty" if not currency else "invalid_currency",
                param="currency",
            )
        intent_id = new_id("pi_", 24)
        intent: dict[str, Any] = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "currency": currency,
            "status": "requires_payment_method",
            "client_secret": f"{intent_id}_secret_{new_id('', 25)}",
            "created": unix_now(),
            "description": form.get("description"),
            "metadata": form.get("metadata") if isinstance(form.get("metadata"), dict) else {},
            "latest_charge": None,
            "last_payment_error": None,
            "livemode": False,
        }
        self.intents[intent_id] = intent
        return JSONResponse(intent)

    async def get_intent(self, request: Request) -> JSONResponse:
        problem = self._auth_problem(request)
        if problem:
            return problem
        intent = self.intents.get(request.path_params["intent_id"])
        if intent is None:
            return error(
                404,
                "No such payment_intent: '" + request.path_params["intent_id"] + "'",
                code="resource_missing",
                param="intent",
            )
        return JSONResponse(intent)

    def _create_refund(self, form: dict[str, Any]) -> JSONResponse:
        charge = self._charge_for(form)
        if isinstance(charge, JSONResponse):
            return charge
        remaining = charge["amount"] - charge["amount_refunded"]
        if remaining == 0:
            return error(
                400, f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"
            )
        amount = _amount(form.get("amount", str(remaining)))
        if amount is None or amount < 1:
            return error(400, "Invalid integer: " + str(form.get("amount")), param="amount")
        if amount > remaining:
            return error(
                400,
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})",
                code="amount_too_large",
                param="amount",
            )
        reason = form.get("reason")
        if reason is not None and reason not in REFUND_REASONS:
            return error(
                400,
                "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer",
                param="reason",
            )
        refund = {
            "id": new_id("re_", 24),
            "object": "refund",
            "amount": amount,
            "charge": charge["id"],
            "currency": charge["currency"],
            "payment_intent": charge["payment_intent"],
            "reason": reason,
            "metadata": form.get("metadata") if isinstance(form.get("metadata"), dict) else {},
            "status": "succeeded",
            "created": unix_now(),
        }
        self.refunds[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        charge["refunds"]["data"].insert(0, refund)
        charge["refunds"]["total_count"] += 1
        self.emit("charge.refunded", charge)
        return JSONResponse(refund)

    def _charge_for(self, form: dict[str, Any]) -> dict[str, Any] | JSONResponse:
        if "charge" in form:
            charge = self.charges.get(form["charge"])
            if charge is None:
                return error(
                    404, f"No such charge: '{form['charge']}'", code="resource_missing", param="charge"
                )
            return charge
        intent_id = form.get("payment_intent")
        if not intent_id:
            return error(
                400,
                "One of the following params should be provided for this request: payment_intent or charge.",
                code="parameter_missing",
            )
        intent = self.intents.get(intent_id)
        if intent is None:
            return error(
                404, f"No such payment_intent: '{intent_id}'", code="resource_missing", param="payment_intent"
            )
        if intent["latest_charge"] is None or intent["status"] != "succeeded":
            return error(400, "This PaymentIntent does not have a successful charge to refund.")
        return self.charges[intent["latest_charge"]]

    async def fake_pay(self, request: Request) -> JSONResponse:
        return self.pay(request.path_params["intent_id"], await request.body())

    async def fake_fail(self, request: Request) -> JSONResponse:
        return self.fail(request.path_params["intent_id"], await request.body())

    def pay(self, ref: str, raw: bytes) -> JSONResponse:
        intent, options = self._fake_target(ref, raw)
        if isinstance(intent, JSONResponse):
            return intent
        amount = options.get("amount_minor", intent["amount"])
        if not isinstance(amount, int) or isinstance(amount, bool) or amount < 1:
            return error(400, "amount_minor must be a positive integer", param="amount_minor")
        charge = self._new_charge(intent, amount)
        intent.update(
            status="succeeded", amount_received=amount, latest_charge=charge["id"], last_payment_error=None
        )
        self.emit("payment_intent.succeeded", intent)
        return JSONResponse({"payment_intent": intent["id"], "status": "succeeded"})

    def fail(self, ref: str, raw: bytes) -> JSONResponse:
        intent, options = self._fake_target(ref, raw)
        if isinstance(intent, JSONResponse):
            return intent
        message = options.get("reason", "Your card was declined.")
        intent.update(
            status="requires_payment_method",
            last_payment_error={
                "code": "card_declined",
                "decline_code": "generic_decline",
                "message": message,
                "type": "card_error",
            },
        )
        self.emit("payment_intent.payment_failed", intent)
        return JSONResponse({"payment_intent": intent["id"], "status": intent["status"], "error": message})

    def _fake_target(self, ref: str, raw: bytes) -> tuple[dict[str, Any] | JSONResponse, dict[str, Any]]:
        intent = self.intents.get(ref)
        if intent is None:
            return error(404, "No such payment_intent", code="resource_missing"), {}
        if intent["status"] == "succeeded":
            return error(
                400, "This PaymentIntent has already succeeded.", code="payment_intent_unexpected_state"
            ), {}
        try:
            options = json.loads(raw) if raw else {}
        except ValueError:
            options = None
        if not isinstance(options, dict):
            return error(400, "Body must be a JSON object"), {}
        return intent, options

    def _new_charge(self, intent: dict[str, Any], amount: int) -> dict[str, Any]:
        charge = {
            "id": new_id("ch_", 24),
            "object": "charge",
            "amount": amount,
            "amount_captured": amount,
            "amount_refunded": 0,
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "paid": True,
            "captured": True,
            "refunded": False,
            "status": "succeeded",
            "metadata": intent["metadata"],
            "refunds": {"object": "list", "data": [], "has_more": False, "total_count": 0},
            "created": unix_now(),
        }
        self.charges[charge["id"]] = charge
        return charge

    def emit(self, event_type: str, obj: dict[str, Any]) -> str:
        """Send a webhook of `event_type` about (a snapshot of) `obj`; returns its event id."""
        event_id = new_id("evt_", 24)
        document = {
            "id": event_id,
            "object": "event",
            "api_version": API_VERSION,
            "created": unix_now(),
            "data": {"object": json.loads(json.dumps(obj))},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }
        body = json.dumps(document).encode()
        secrets = self.config.stripe_webhook_secrets

        def sign(raw: bytes) -> dict[str, str]:
            return {SIGNATURE_HEADER: sign_webhook(raw, secrets, unix_now())}

        self.sender.send("stripe", self.config.stripe_webhook_url, event_id, event_type, body, sign)
        return event_id


def _amount(value: Any) -> int | None:
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,12}", value):
        return int(value)
    return None
