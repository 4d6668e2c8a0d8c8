"""Razorpay adapter: Orders API, checkout signature, webhooks, refunds.

Webhook authenticity is HMAC-SHA256 of the RAW body with the webhook secret (never re-serialised
JSON). Razorpay signs no timestamp, so replays are stopped by deduping `x-razorpay-event-id` and by
refusing events whose signed `created_at` is older than `max_event_age` (keep dedupe rows longer).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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

PROVIDER: Provider = "razorpay"
DEFAULT_BASE_URL = "https://api.razorpay.com"
SIGNATURE_HEADER = "X-Razorpay-Signature"
EVENT_ID_HEADER = "x-razorpay-event-id"
REFUND_IDEMPOTENCY_HEADER = "X-Refund-Idempotency"
MAX_RECEIPT_LENGTH = 40
IDEMPOTENCY_NOTE = "idempotency_key"
_ID = re.compile(r"^[A-Za-z0-9_]{1,64}$")

_EVENT_TYPES = {
    "payment.captured": WebhookEventType.PAYMENT_SUCCEEDED,
    "order.paid": WebhookEventType.PAYMENT_SUCCEEDED,
    "payment.failed": WebhookEventType.PAYMENT_FAILED,
    "refund.processed": WebhookEventType.REFUND_PROCESSED,
}
_CHECKOUT_STATUS = {
    "captured": CheckoutStatus.PAID,
    "authorized": CheckoutStatus.PENDING,
    "created": CheckoutStatus.PENDING,
    "failed": CheckoutStatus.FAILED,
    "refunded": CheckoutStatus.PAID,
}


@dataclass(frozen=True)
class RazorpayConfig:
    key_id: str
    key_secret: str = field(repr=False)
    webhook_secrets: tuple[str, ...] = field(repr=False, default=())
    base_url: str = DEFAULT_BASE_URL
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_event_age: dt.timedelta = dt.timedelta(days=3)
    max_clock_skew: dt.timedelta = dt.timedelta(seconds=300)


class _Entity(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Payment(_Entity):
    id: StrictStr
    amount: StrictInt
    currency: StrictStr
    order_id: StrictStr | None = None
    status: StrictStr | None = None
    amount_refunded: StrictInt = 0
    error_description: StrictStr | None = None


class _Refund(_Entity):
    id: StrictStr
    amount: StrictInt
    currency: StrictStr
    payment_id: StrictStr


class _Envelope(_Entity):
    event: StrictStr
    payload: dict[str, Any]
    created_at: StrictInt


def sign_checkout(order_id: str, payment_id: str, key_secret: str) -> str:
    """What Razorpay Checkout returns as `razorpay_signature`."""
    return _hex_hmac(key_secret, f"{order_id}|{payment_id}".encode())


def sign_webhook(raw_body: bytes, webhook_secret: str) -> str:
    """The `X-Razorpay-Signature` value for a body."""
    return _hex_hmac(webhook_secret, raw_body)


def _hex_hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _same(expected_hex: str, given: str) -> bool:
    return hmac.compare_digest(expected_hex.encode(), given.strip().encode("utf-8", "replace"))


class RazorpayGateway:
    provider: Provider = PROVIDER

    def __init__(self, config: RazorpayConfig, client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self._http = LazyHttpClient(client, config.timeout_s)
        self._auth = httpx.BasicAuth(config.key_id, config.key_secret)

    async def aclose(self) -> None:
        await self._http.aclose()

    def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Request:
        return self._http.get().build_request(
            method, self.config.base_url.rstrip("/") + path, json=json_body, params=params, headers=headers
        )

    async def _send(self, request: httpx.Request) -> dict[str, Any]:
        return await send(self._http.get(), PROVIDER, request, self._auth)

    async def create_order(
        self, amount_minor: int, currency: str, receipt: str, notes: Mapping[str, str], idempotency_key: str
    ) -> GatewayOrder:
        currency = check_money(amount_minor, currency)
        key = check_idempotency_key(idempotency_key)
        if not receipt or len(receipt) > MAX_RECEIPT_LENGTH:
            raise InvalidPaymentRequest(f"receipt must be 1-{MAX_RECEIPT_LENGTH} characters")
        # Razorpay orders take no idempotency header: the key rides in the notes, and after a lost
        # response we look the order up by receipt instead of creating a second one.
        body = {
            "amount": amount_minor,
            "currency": currency,
            "receipt": receipt,
            "notes": {**dict(notes), IDEMPOTENCY_NOTE: key},
        }
        try:
            order = await self._send(self._request("POST", "/v1/orders", json_body=body))
        except GatewayUnavailable:
            existing = await self._find_order(receipt, key)
            if existing is None:
                raise
            order = existing
        return _order_from(order)

    async def _find_order(self, receipt: str, key: str) -> dict[str, Any] | None:
        request = self._request("GET", "/v1/orders", params={"receipt": receipt})
        listing = await self._send(request)
        for item in listing.get("items") or []:
            if isinstance(item, dict) and (item.get("notes") or {}).get(IDEMPOTENCY_NOTE) == key:
                return item
        return None

    async def fetch_order(self, order_id: str) -> GatewayOrder:
        _check_id(order_id)
        return _order_from(await self._send(self._request("GET", f"/v1/orders/{order_id}")))

    async def verify_checkout(self, proof: CheckoutProof) -> CheckoutVerification:
        if not proof.payment_id or not proof.signature:
            raise CheckoutRejected("razorpay checkout needs razorpay_payment_id and razorpay_signature")
        expected = sign_checkout(proof.order_ref, proof.payment_id, self.config.key_secret)
        if not _same(expected, proof.signature):
            raise CheckoutRejected("razorpay checkout signature does not match")
        _check_id(proof.payment_id)
        raw = await self._send(self._request("GET", f"/v1/payments/{proof.payment_id}"))
        try:
            payment = _Payment.model_validate(raw)
        except ValidationError as exc:
            raise GatewayUnavailable(PROVIDER, f"unexpected payment response: {exc}") from exc
        if payment.order_id != proof.order_ref:
            raise CheckoutRejected("payment belongs to another order")
        return CheckoutVerification(
            provider=PROVIDER,
            order_ref=proof.order_ref,
            payment_id=payment.id,
            status=_CHECKOUT_STATUS.get(payment.status or "", CheckoutStatus.PENDING),
            amount_minor=payment.amount,
            currency=payment.currency,
        )

    async def refund(
        self, payment_id: str, amount_minor: int, reason: str, idempotency_key: str
    ) -> GatewayRefund:
        check_amount(amount_minor)
        _check_id(payment_id)
        headers = {REFUND_IDEMPOTENCY_HEADER: check_idempotency_key(idempotency_key)}
        body = {"amount": amount_minor, "speed": "normal", "notes": {"reason": reason[:256]}}
        request = self._request("POST", f"/v1/payments/{payment_id}/refund", json_body=body, headers=headers)
        raw = await self._send(request)
        try:
            refund = _Refund.model_validate(raw)
        except ValidationError as exc:
            raise GatewayUnavailable(PROVIDER, f"unexpected refund response: {exc}") from exc
        return GatewayRefund(
            provider=PROVIDER,
            refund_id=refund.id,
            payment_id=refund.payment_id,
            amount_minor=refund.amount,
            currency=refund.currency,
            status=str(raw.get("status", "pending")),
            raw=raw,
        )

    def parse_webhook(self, raw_body: bytes, headers: Mapping[str, str], now: dt.datetime) -> WebhookEvent:
        require_aware(now)
        self._authenticate(raw_body, header(headers, SIGNATURE_HEADER))
        envelope, document = _parse_envelope(raw_body)
        created = utc_from_timestamp(envelope.created_at)
        if created is None:
            raise WebhookRejected("malformed: created_at is not a unix timestamp")
        if created < now - self.config.max_event_age:
            raise WebhookRejected(f"stale: event created at {created.isoformat()}")
        if created > now + self.config.max_clock_skew:
            raise WebhookRejected(f"future: event created at {created.isoformat()}")
        event_id = header(headers, EVENT_ID_HEADER) or "sha256:" + hashlib.sha256(raw_body).hexdigest()
        return _normalise(envelope, event_id, created, document)

    def _authenticate(self, raw_body: bytes, signature: str | None) -> None:
        if not self.config.webhook_secrets:
            raise WebhookRejected("no razorpay webhook secret configured")
        if not signature:
            raise WebhookRejected(f"missing {SIGNATURE_HEADER}")
        if not any(_same(sign_webhook(raw_body, s), signature) for s in self.config.webhook_secrets):
            raise WebhookRejected("forged: signature does not match")


def _check_id(value: str) -> None:
    if not _ID.fullmatch(value):
        raise InvalidPaymentRequest(f"not a razorpay id: {value!r}")


def _order_from(raw: dict[str, Any]) -> GatewayOrder:
    try:
        return GatewayOrder(
            provider=PROVIDER,
            order_ref=raw["id"],
            amount_minor=raw["amount"],
            currency=raw["currency"],
            status=raw["status"],
            receipt=raw.get("receipt"),
            created_at=utc_from_timestamp(raw.get("created_at")) or dt.datetime.now(dt.UTC),
            raw=raw,
        )
    except (KeyError, ValidationError) as exc:
        raise GatewayUnavailable(PROVIDER, f"unexpected order response: {exc}") from exc


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


def _entity(payload: dict[str, Any], name: str) -> dict[str, Any] | None:
    wrapper = payload.get(name)
    entity = wrapper.get("entity") if isinstance(wrapper, dict) else None
    return entity if isinstance(entity, dict) else None


def _normalise(
    envelope: _Envelope, event_id: str, created: dt.datetime, document: dict[str, Any]
) -> WebhookEvent:
    kind = _EVENT_TYPES.get(envelope.event, WebhookEventType.IGNORED)
    common: dict[str, Any] = {
        "provider": PROVIDER,
        "event_id": event_id,
        "type": kind,
        "provider_type": envelope.event,
        "occurred_at": created,
        "raw": document,
    }
    if kind is WebhookEventType.IGNORED:
        return WebhookEvent(**common)
    try:
        return _known_event(envelope, kind, common)
    except ValidationError as exc:
        raise WebhookRejected(f"malformed {envelope.event}: {_first_error(exc)}") from exc


def _known_event(envelope: _Envelope, kind: WebhookEventType, common: dict[str, Any]) -> WebhookEvent:
    payment_raw = _entity(envelope.payload, "payment")
    if kind is WebhookEventType.REFUND_PROCESSED:
        refund = _Refund.model_validate(_entity(envelope.payload, "refund"))
        payment = _Payment.model_validate(payment_raw) if payment_raw is not None else None
        return WebhookEvent(
            **common,
            order_ref=payment.order_id if payment else None,
            payment_id=refund.payment_id,
            amount_minor=payment.amount if payment else None,
            currency=refund.currency,
            amount_refunded_minor=payment.amount_refunded if payment else None,
            refund_id=refund.id,
            refund_amount_minor=refund.amount,
        )
    payment = _Payment.model_validate(payment_raw)
    order_raw = _entity(envelope.payload, "order")
    order_ref = payment.order_id or (order_raw or {}).get("id")
    return WebhookEvent(
        **common,
        order_ref=order_ref,
        payment_id=payment.id,
        amount_minor=payment.amount,
        currency=payment.currency,
        failure_reason=payment.error_description if kind is WebhookEventType.PAYMENT_FAILED else None,
    )


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error["loc"]) or "body"
    return f"{location}: {error['msg']}"
