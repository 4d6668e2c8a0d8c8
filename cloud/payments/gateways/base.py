"""The one interface every payment gateway adapter implements, and the errors they raise."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import httpx

from cloud.payments.schemas import (
    CheckoutProof,
    CheckoutVerification,
    GatewayOrder,
    GatewayRefund,
    Provider,
    WebhookEvent,
)

DEFAULT_TIMEOUT_S = 10.0
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class PaymentError(Exception):
    """Base of every error the payments package raises."""


class GatewayError(PaymentError):
    """The provider answered with an error, or could not be reached."""

    def __init__(
        self, provider: Provider, message: str, *, status: int | None = None, code: str | None = None
    ) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.message = message
        self.status = status
        self.code = code


class GatewayAuthError(GatewayError):
    """401/403: our API key is wrong or revoked. Not retryable."""


class GatewayRequestError(GatewayError):
    """4xx other than auth: the request was refused (bad amount, over-refund...). Not retryable as is."""


class GatewayUnavailable(GatewayError):
    """Network failure, timeout or 5xx. Retry with the SAME idempotency key."""


class InvalidPaymentRequest(PaymentError, ValueError):
    """We refused to send the request: bad amount, currency or idempotency key."""


class CheckoutRejected(PaymentError):
    """The client's checkout proof is forged or does not match the provider's records."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WebhookRejected(PaymentError):
    """A webhook that must not be applied: forged, stale, or malformed. Answer 4xx (400)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@runtime_checkable
class PaymentGateway(Protocol):
    """A payment provider as the booking/payment flow sees it. Amounts are integer minor units."""

    provider: Provider

    async def create_order(
        self,
        amount_minor: int,
        currency: str,
        receipt: str,
        notes: Mapping[str, str],
        idempotency_key: str,
    ) -> GatewayOrder:
        """Create the thing the client pays (Razorpay order / Stripe PaymentIntent)."""
        ...

    async def verify_checkout(self, proof: CheckoutProof) -> CheckoutVerification:
        """Check the client's proof of payment against the provider; raises CheckoutRejected."""
        ...

    async def refund(
        self, payment_id: str, amount_minor: int, reason: str, idempotency_key: str
    ) -> GatewayRefund:
        """Refund `amount_minor` (full or partial) of a captured payment."""
        ...

    def parse_webhook(self, raw_body: bytes, headers: Mapping[str, str], now: dt.datetime) -> WebhookEvent:
        """Authenticate and normalise a webhook; raises WebhookRejected. Pure: no I/O."""
        ...

    async def aclose(self) -> None:
        """Release the HTTP client if the adapter created it."""
        ...


class LazyHttpClient:
    """An httpx client made on first use, so parse-only users (webhook routes, tests) never build one."""

    def __init__(self, client: httpx.AsyncClient | None, timeout_s: float) -> None:
        self._client = client
        self._owned = client is None
        self._timeout_s = timeout_s

    def get(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout_s)
        return self._client

    async def aclose(self) -> None:
        if self._owned and self._client is not None:
            await self._client.aclose()
            self._client = None


def check_amount(amount_minor: int, *, minimum: int = 1) -> int:
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise InvalidPaymentRequest(f"amount_minor must be an int, got {type(amount_minor).__name__}")
    if amount_minor < minimum:
        raise InvalidPaymentRequest(f"amount_minor must be at least {minimum}, got {amount_minor}")
    return amount_minor


def check_money(amount_minor: int, currency: str) -> str:
    """Validate an outgoing amount; return the upper-case currency."""
    check_amount(amount_minor)
    upper = currency.upper() if isinstance(currency, str) and currency.isascii() else ""
    if not _CURRENCY.fullmatch(upper):
        raise InvalidPaymentRequest(f"currency must be a 3-letter ISO 4217 code, got {currency!r}")
    return upper


def check_idempotency_key(key: str) -> str:
    """Keys both providers accept: 10-255 chars of letters, digits, '-' and '_'."""
    if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z0-9_-]{10,255}", key):
        raise InvalidPaymentRequest("idempotency_key must be 10-255 characters of [A-Za-z0-9_-]")
    return key


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup over any mapping (Starlette's Headers, a plain dict...)."""
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def utc_from_timestamp(value: Any) -> dt.datetime | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    try:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def require_aware(now: dt.datetime) -> dt.datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("`now` must be timezone-aware")
    return now


async def send(
    client: httpx.AsyncClient, provider: Provider, request: httpx.Request, auth: httpx.Auth
) -> dict[str, Any]:
    """Send a request; return the JSON object or raise the matching GatewayError."""
    try:
        response = await client.send(request, auth=auth)
    except httpx.TransportError as exc:
        raise GatewayUnavailable(provider, f"transport error: {exc!r}") from exc
    body = _json_object(response)
    if response.is_success:
        if body is None:
            raise GatewayUnavailable(provider, "response is not a JSON object", status=response.status_code)
        return body
    message, code = _error_details(body, response)
    if response.status_code in (401, 403):
        raise GatewayAuthError(provider, message, status=response.status_code, code=code)
    if response.status_code >= 500 or response.status_code in (409, 429):
        raise GatewayUnavailable(provider, message, status=response.status_code, code=code)
    raise GatewayRequestError(provider, message, status=response.status_code, code=code)


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _error_details(body: dict[str, Any] | None, response: httpx.Response) -> tuple[str, str | None]:
    error = body.get("error") if body else None
    if isinstance(error, dict):
        message = error.get("description") or error.get("message") or "error"
        code = error.get("code") or error.get("type")
        return str(message), (str(code) if code else None)
    return f"HTTP {response.status_code}", None
