"""Payment rows (one per gateway order), refunds, webhook dedupe keys, invoice counters."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

from sqlalchemy import BigInteger, DateTime, Text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cloud.models_common import created_at, updated_at, uuid_pk


class PaymentsBase(DeclarativeBase):
    """Tables of migration 0300_payments."""


class PaymentStatus(StrEnum):
    CREATED = "created"  # order made at the gateway, nothing paid yet
    CAPTURED = "captured"
    FAILED = "failed"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    FLAGGED = "flagged"  # paid an amount/currency that does not match the order: a human looks


class Payment(PaymentsBase):
    __tablename__ = "payments"

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    booking_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    provider: Mapped[str] = mapped_column(Text)
    order_ref: Mapped[str] = mapped_column(Text)
    provider_payment_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    captured_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    flag_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    idempotency_key: Mapped[str] = mapped_column(Text)
    invoice_number: Mapped[str | None] = mapped_column(Text, nullable=True)
    captured_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # desk sales (migration 0800): method online|cash|upi; a kiosk receipt is unique per edge device
    method: Mapped[str] = mapped_column(Text, default="online")
    receipt_number: Mapped[str | None] = mapped_column(Text, nullable=True)
    recorded_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    edge_device_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    upi_ref: Mapped[str | None] = mapped_column(Text, nullable=True)
    customer_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    customer_phone: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()
    # migration 0700_billing: the subscription due a renewal order pays (booking_id is then a day row)
    due_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True, default=None)


class PaymentRefund(PaymentsBase):
    __tablename__ = "payment_refunds"

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    payment_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    provider_refund_id: Mapped[str] = mapped_column(Text)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = created_at()


class WebhookEventRecord(PaymentsBase):
    __tablename__ = "payment_webhook_events"

    provider: Mapped[str] = mapped_column(Text, primary_key=True)
    event_id: Mapped[str] = mapped_column(Text, primary_key=True)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    event_type: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[dt.datetime] = created_at()


class InvoiceCounter(PaymentsBase):
    __tablename__ = "invoice_counters"

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    last_number: Mapped[int] = mapped_column(BigInteger, default=0)
