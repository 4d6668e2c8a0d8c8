"""Stripe adapter: PaymentIntents, webhooks (`Stripe-Signature`), refunds.

Every POST carries `Idempotency-Key`. Webhooks: HMAC-SHA256 of `<t>.<raw body>`; any of several `v1`
signatures may match (secret rotation) and any of our configured secrets may be the signer. Unlike
stripe-python, timestamps too far in the FUTURE are refused as well as old ones.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr, ValidationError

from cloud.payments.gateways.base import (
    DEFAULT_TIMEOUT_S,
    CheckoutRejected,
    GatewayUnavailable,
    InvalidPaymentRequest,
    LazyHttpClient,
    WebhookRejected,
    check_amount,
    check_idempotency_key,
    check_money,
    header,
    require_aware,
    send,
    utc_from_timestamp,
)
from cloud.payments.schemas import (
    CheckoutProof,
    CheckoutStatus,
    CheckoutVerification,
    GatewayOrder,
    GatewayRefund,
    Provider,
    WebhookEvent,
    WebhookEventType,
)

PROVIDER: Provider = "stripe"
DEFAULT_BASE_URL = "https://api.stripe.com"
SIGNATURE_HEADER = "Stripe-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_TOLERANCE = dt.timedelta(seconds=300)
_ID = re.compile(r"^[A-Za-z0-9_]{1,255}$")

_EVENT_TYPES = {
    "payment_intent.succeeded": WebhookEventType.PAYMENT_SUCCEEDED,
    "payment_intent.payment_failed": WebhookEventType.PAYMENT_FAILED,
    "charge.refunded": WebhookEventType.REFUND_PROCESSED,
}
_ModelT = TypeVar("_ModelT", bound=BaseModel)
_PENDING_STATES = {"processing", "requires_action", "requires_confirmation", "requires_capture"}


@dataclass(frozen=True)
class StripeConfig:
    secret_key: str = field(repr=False)
    webhook_secrets: tuple[str, ...] = field(repr=False, default=())
    base_url: str = DEFAULT_BASE_URL
    timeout_s: float = DEFAULT_TIMEOUT_S
    tolerance: dt.timedelta = DEFAULT_TOLERANCE


class _BearerAuth(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._value = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._value
        yield request


class _Object(BaseModel):
    model_config = ConfigDict(extra="allow")


class _PaymentIntent(_Object):
    id: StrictStr
    amount: StrictInt
    amount_received: StrictInt = 0
    currency: StrictStr
    status: StrictStr | None = None
    last_payment_error: dict[str, Any] | None = None


class _Charge(_Object):
    id: StrictStr
    amount: StrictInt
    amount_refunded: StrictInt
    currency: StrictStr
    payment_intent: StrictStr | dict[str, Any] | None = None
    refunds: dict[str, Any] | None = None


class _Refund(_Object):
    id: StrictStr
    amount: StrictInt
    currency: StrictStr
    status: StrictStr | None = None
    payment_intent: StrictStr | None = None
    charge: StrictStr | None = None


class _Envelope(_Object):
    id: StrictStr
    type: StrictStr
    created: StrictInt
    data: dict[str, Any]


def sign_webhook(raw_body: bytes, secrets: tuple[str, ...] | list[str], timestamp: int) -> str:
    """A `Stripe-Signature` header: one `v1` per secret, as Stripe sends during rotation."""
    signatures = ",".join(f"v1={_signature(raw_body, s, timestamp)}" for s in secrets)
    return f"t={timestamp},{signatures}"


def _signature(raw_body: bytes, secret: str, timestamp: int) -> str:
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + raw_body, hashlib.sha256).hexdigest()


def parse_signature_header(value: str) -> tuple[int, list[str]]:
    """(`t`, [v1...]) from a Stripe-Signature header; raises WebhookRejected if it is not one."""
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in value.split(","):
        key, sep, val = item.strip().partition("=")
        if not sep:
            raise WebhookRejected("malformed Stripe-Signature header")
        if key == "t":
            timestamps.append(val)
        elif key == "v1":
            signatures.append(val)
    if len(timestamps) != 1 or not re.fullmatch(r"[0-9]{1,12}", timestamps[0]):
        raise WebhookRejected("malformed Stripe-Signature header: needs exactly one numeric t=")
    if not signatures:
        raise WebhookRejected("Stripe-Signature has no v1 signature")
    return int(timestamps[0]), signatures


class StripeGateway:
    provider: Provider = PROVIDER

    def __init__(self, config: StripeConfig, client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self._http = LazyHttpClient(client, config.timeout_s)
        self._auth = _BearerAuth(config.secret_key)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        form: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        headers = {IDEMPOTENCY_HEADER: idempotency_key} if idempotency_key else None
        request = self._http.get().build_request(
            method, self.config.base_url.rstrip("/") + path, data=form, headers=headers
        )
        return await send(self._http.get(), PROVIDER, request, self._auth)

    async def create_order(
        self, amount_minor: int, currency: str, receipt: str, notes: Mapping[str, str], idempotency_key: str
    ) -> GatewayOrder:
        currency = check_money(amount_minor, currency)
        key = check_idempotency_key(idempotency_key)
        form = {
            "amount": str(amount_minor),
            "currency": currency.lower(),
            "description": receipt,
            "automatic_payment_methods[enabled]": "true",
            "metadata[receipt]": receipt,
            **{f"metadata[{k}]": v for k, v in notes.items()},
        }
        raw = await self._call("POST", "/v1/payment_intents", form, key)
        intent = _validated(_PaymentIntent, raw, "payment intent")
        return GatewayOrder(
            provider=PROVIDER,
            order_ref=intent.id,
            amount_minor=intent.amount,
            currency=intent.currency,
            status=intent.status or "unknown",
            receipt=receipt,
            client_secret=raw.get("client_secret"),
            created_at=utc_from_timestamp(raw.get("created")) or dt.datetime.now(dt.UTC),
            raw=raw,
        )

    async def verify_checkout(self, proof: CheckoutProof) -> CheckoutVerification:
        _check_id(proof.order_ref)
        if proof.payment_id and proof.payment_id != proof.order_ref:
            raise CheckoutRejected("stripe checkout: payment id must be the PaymentIntent id")
        raw = await self._call("GET", f"/v1/payment_intents/{proof.order_ref}")
        intent = _validated(_PaymentIntent, raw, "payment intent")
        return CheckoutVerification(
            provider=PROVIDER,
            order_ref=intent.id,
            payment_id=intent.id,
            status=_checkout_status(intent),
            amount_minor=intent.amount_received or intent.amount,
            currency=intent.currency,
        )

    async def refund(
        self, payment_id: str, amount_minor: int, reason: str, idempotency_key: str
    ) -> GatewayRefund:
        check_amount(amount_minor)
        _check_id(payment_id)
        target = "charge" if payment_id.startswith(("ch_", "py_")) else "payment_intent"
        form = {
            target: payment_id,
            "amount": str(amount_minor),
            "reason": "requested_by_customer",
            "metadata[reason]": reason[:500],
        }
        raw = await self._call("POST", "/v1/refunds", form, check_idempotency_key(idempotency_key))
        refund = _validated(_Refund, raw, "refund")
        return GatewayRefund(
            provider=PROVIDER,
            refund_id=refund.id,
            payment_id=refund.payment_intent or refund.charge or payment_id,
            amount_minor=refund.amount,
            currency=refund.currency,
            status=refund.status or "pending",
            raw=raw,
        )

    def parse_webhook(self, raw_body: bytes, headers: Mapping[str, str], now: dt.datetime) -> WebhookEvent:
        require_aware(now)
        timestamp = self._authenticate(raw_body, header(headers, SIGNATURE_HEADER))
        signed_at = utc_from_timestamp(timestamp)
        if signed_at is None or signed_at < now - self.config.tolerance:
            raise WebhookRejected(f"stale: signed at t={timestamp}")
        if signed_at > now + self.config.tolerance:
            raise WebhookRejected(f"future: signed at t={timestamp}")
        return _normalise(_parse_envelope(raw_body))

    def _authenticate(self, raw_body: bytes, signature_header: str | None) -> int:
        if not self.config.webhook_secrets:
            raise WebhookRejected("no stripe webhook secret configured")
        if not signature_header:
            raise WebhookRejected(f"missing {SIGNATURE_HEADER}")
        timestamp, given = parse_signature_header(signature_header)
        expected = [_signature(raw_body, s, timestamp).encode() for s in self.config.webhook_secrets]
        for candidate in given:
            encoded = candidate.encode("utf-8", "replace")
            if any(hmac.compare_digest(e, encoded) for e in expected):
                return timestamp
        raise WebhookRejected("forged: no v1 signature matches")


def _check_id(value: str) -> None:
    if not _ID.fullmatch(value):
        raise InvalidPaymentRequest(f"not a stripe id: {value!r}")


def _validated(model: type[_ModelT], raw: dict[str, Any], what: str) -> _ModelT:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise GatewayUnavailable(PROVIDER, f"unexpected {what} response: {exc}") from exc


def _checkout_status(intent: _PaymentIntent) -> CheckoutStatus:
    if intent.status == "succeeded":
        return CheckoutStatus.PAID
    if intent.status in _PENDING_STATES:
        return CheckoutStatus.PENDING
    if intent.status == "canceled" or intent.last_payment_error:
        return CheckoutStatus.FAILED
    return CheckoutStatus.PENDING


def _parse_envelope(raw_body: bytes) -> tuple[_Envelope, dict[str, Any]]:
    try:
        document = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookRejected(f"malformed: body is not JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise WebhookRejected("malformed: body is not a JSON object")
    try:
        return _Envelope.model_validate(document), document
    except ValidationError as exc:
        raise WebhookRejected(f"malformed: {_first_error(exc)}") from exc


def _normalise(parsed: tuple[_Envelope, dict[str, Any]]) -> WebhookEvent:
    envelope, document = parsed
    kind = _EVENT_TYPES.get(envelope.type, WebhookEventType.IGNORED)
    common: dict[str, Any] = {
        "provider": PROVIDER,
        "event_id": envelope.id,
        "type": kind,
        "provider_type": envelope.type,
        "occurred_at": utc_from_timestamp(envelope.created),
        "raw": document,
    }
    if kind is WebhookEventType.IGNORED:
        return WebhookEvent(**common)
    obj = envelope.data.get("object")
    try:
        if kind is WebhookEventType.REFUND_PROCESSED:
            return _refund_event(_Charge.model_validate(obj), common)
        return _intent_event(_PaymentIntent.model_validate(obj), kind, common)
    except ValidationError as exc:
        raise WebhookRejected(f"malformed {envelope.type}: {_first_error(exc)}") from exc


def _intent_event(intent: _PaymentIntent, kind: WebhookEventType, common: dict[str, Any]) -> WebhookEvent:
    succeeded = kind is WebhookEventType.PAYMENT_SUCCEEDED
    error = intent.last_payment_error or {}
    return WebhookEvent(
        **common,
        order_ref=intent.id,
        payment_id=intent.id,
        amount_minor=intent.amount_received if succeeded else intent.amount,
        currency=intent.currency,
        failure_reason=None if succeeded else str(error.get("message") or error.get("code") or "failed"),
    )


def _refund_event(charge: _Charge, common: dict[str, Any]) -> WebhookEvent:
    intent = charge.payment_intent
    intent_id = intent.get("id") if isinstance(intent, dict) else intent
    refunds = (charge.refunds or {}).get("data") or []
    latest = refunds[0] if refunds and isinstance(refunds[0], dict) else {}
    latest_amount = latest.get("amount")
    return WebhookEvent(
        **common,
        order_ref=intent_id,
        payment_id=intent_id or charge.id,
        amount_minor=charge.amount,
        currency=charge.currency,
        amount_refunded_minor=charge.amount_refunded,
        refund_id=latest.get("id") if isinstance(latest.get("id"), str) else None,
        refund_amount_minor=latest_amount if isinstance(latest_amount, int) else None,
    )


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error["loc"]) or "body"
    return f"{location}: {error['msg']}"
