"""Payment value types shared by the gateway adapters, the fake gateways and (later) the booking flow.

Money is always an integer amount in the currency's minor unit plus an ISO 4217 code; times are
timezone-aware UTC. These are plain pydantic models: no database, no framework.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

Provider = Literal["razorpay", "stripe"]

_CURRENCY_PATTERN = re.compile(r"^[A-Z]{3}$")


def _normalize_currency(value: str) -> str:
    upper = value.upper() if value.isascii() else ""
    if not _CURRENCY_PATTERN.fullmatch(upper):
        raise ValueError(f"currency must be a 3-letter ISO 4217 code, got {value!r}")
    return upper


def _require_aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return value.astimezone(dt.UTC)


CurrencyCode = Annotated[str, AfterValidator(_normalize_currency)]
AwareDatetime = Annotated[dt.datetime, AfterValidator(_require_aware)]
MinorAmount = Annotated[int, Field(ge=0, strict=True)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GatewayOrder(_Frozen):
    """An order (Razorpay) or PaymentIntent (Stripe) the client pays against."""

    provider: Provider
    order_ref: str = Field(description="Razorpay `order_...` id or Stripe `pi_...` id.")
    amount_minor: MinorAmount
    currency: CurrencyCode
    status: str = Field(description="Provider status word, e.g. `created`, `requires_payment_method`.")
    receipt: str | None = None
    client_secret: str | None = Field(
        default=None, description="Stripe only: what the browser passes to Stripe.js to confirm the intent."
    )
    created_at: AwareDatetime
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)


class CheckoutProof(_Frozen):
    """What the client hands back after checkout; only a hint, the webhook is the source of truth.

    Razorpay: `order_ref`=razorpay_order_id, `payment_id`=razorpay_payment_id,
    `signature`=razorpay_signature. Stripe: `order_ref`=the PaymentIntent id, nothing else.
    """

    order_ref: str = Field(min_length=1, max_length=100)
    payment_id: str | None = Field(default=None, max_length=100)
    signature: str | None = Field(default=None, max_length=200)


class CheckoutStatus(StrEnum):
    PAID = "paid"
    PENDING = "pending"
    FAILED = "failed"


class CheckoutVerification(_Frozen):
    """The provider's view of a checkout the client claims to have completed."""

    provider: Provider
    order_ref: str
    payment_id: str
    status: CheckoutStatus
    amount_minor: MinorAmount
    currency: CurrencyCode


class GatewayRefund(_Frozen):
    provider: Provider
    refund_id: str
    payment_id: str
    amount_minor: MinorAmount
    currency: CurrencyCode
    status: str = Field(description="Provider status: Razorpay `processed`/`pending`, Stripe `succeeded`/...")
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)


class WebhookEventType(StrEnum):
    """Provider events normalised to what the payment flow acts on."""

    PAYMENT_SUCCEEDED = "payment_succeeded"  # razorpay payment.captured / order.paid; stripe pi.succeeded
    PAYMENT_FAILED = "payment_failed"  # razorpay payment.failed; stripe payment_intent.payment_failed
    REFUND_PROCESSED = "refund_processed"  # razorpay refund.processed; stripe charge.refunded
    IGNORED = "ignored"  # authentic but of no interest: acknowledge with 2xx, apply nothing


class WebhookEvent(_Frozen):
    """An authentic webhook, normalised. Dedupe on (`provider`, `event_id`).

    For refunds, `amount_minor` is the payment's amount and `amount_refunded_minor` the total refunded
    on that payment so far (cumulative, so applying events in any order converges).
    """

    provider: Provider
    event_id: str
    type: WebhookEventType
    provider_type: str = Field(description="The provider's event name, e.g. `payment.captured`.")
    order_ref: str | None = None
    payment_id: str | None = None
    amount_minor: MinorAmount | None = None
    currency: CurrencyCode | None = None
    amount_refunded_minor: MinorAmount | None = None
    refund_id: str | None = None
    refund_amount_minor: MinorAmount | None = Field(default=None, description="This refund's own amount.")
    failure_reason: str | None = None
    occurred_at: AwareDatetime | None = None
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)


# --- GST invoices -------------------------------------------------------------------------------

_GSTIN_PATTERN = re.compile(r"^[0-9]{2}[A-Z]{5}[0-9]{4}[A-Z][1-9A-Z]Z[0-9A-Z]$")
_GSTIN_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def gstin_check_character(first_14: str) -> str:
    """The 15th character of a GSTIN: a base-36 Luhn-style checksum of the first 14."""
    total = 0
    for position, char in enumerate(first_14):
        product = _GSTIN_ALPHABET.index(char) * (2 if position % 2 else 1)
        total += product // 36 + product % 36
    return _GSTIN_ALPHABET[(36 - total % 36) % 36]


def _validate_gstin(value: str | None) -> str | None:
    if value is None:
        return None
    gstin = value.strip().upper()
    if not _GSTIN_PATTERN.fullmatch(gstin):
        raise ValueError(f"not a GSTIN: {value!r}")
    if gstin_check_character(gstin[:14]) != gstin[14]:
        raise ValueError(f"GSTIN check character is wrong: {value!r}")
    return gstin


def _validate_zone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


Gstin = Annotated[str | None, AfterValidator(_validate_gstin)]
StateCode = Annotated[str, Field(pattern=r"^[0-9]{2}$")]


class InvoiceParty(_Frozen):
    name: str = Field(min_length=1, max_length=200)
    address_lines: tuple[str, ...] = ()
    gstin: Gstin = None
    state_code: StateCode = Field(description="GST state code, e.g. `29` Karnataka, `27` Maharashtra.")
    state_name: str = Field(min_length=1, max_length=60)


class InvoiceLine(_Frozen):
    description: str = Field(min_length=1, max_length=200)
    sac_code: str = Field(default="999799", pattern=r"^9997[0-9]{2}$")
    quantity: int = Field(default=1, ge=1, strict=True)
    unit_price_minor: MinorAmount
    discount_minor: MinorAmount = 0
    gst_rate_bp: int = Field(
        default=1800, ge=0, le=2800, strict=True, description="Basis points: 1800 = 18%."
    )


class InvoiceData(_Frozen):
    """Everything printed on one tax invoice or credit note. Amounts exclude GST."""

    kind: Literal["invoice", "credit_note"] = "invoice"
    number: str = Field(min_length=1, max_length=16, description="GST allows at most 16 characters.")
    issued_at: AwareDatetime
    timezone: Annotated[str, AfterValidator(_validate_zone)] = "Asia/Kolkata"
    supplier: InvoiceParty
    customer: InvoiceParty
    place_of_supply_state_code: StateCode | None = Field(
        default=None, description="Defaults to the customer's state."
    )
    currency: CurrencyCode = "INR"
    lines: tuple[InvoiceLine, ...] = Field(min_length=1, max_length=50)
    original_invoice_number: str | None = Field(default=None, description="Credit notes: invoice reversed.")
    payment_reference: str | None = None
    locale: str = "en_IN"

    @model_validator(mode="after")
    def _check_consistency(self) -> InvoiceData:
        if self.supplier.gstin is None:
            raise ValueError("the supplier (tenant) must have a GSTIN")
        if self.supplier.gstin[:2] != self.supplier.state_code:
            raise ValueError("supplier GSTIN does not belong to the supplier's state")
        if self.kind == "credit_note" and not self.original_invoice_number:
            raise ValueError("a credit note must name the original invoice")
        for line in self.lines:
            if line.discount_minor > line.quantity * line.unit_price_minor:
                raise ValueError(f"discount exceeds the line amount: {line.description!r}")
        return self

    @property
    def place_of_supply(self) -> str:
        return self.place_of_supply_state_code or self.customer.state_code

    @property
    def intra_state(self) -> bool:
        """CGST + SGST when supplier and place of supply share a state, IGST otherwise."""
        return self.supplier.state_code == self.place_of_supply
