"""Tables of migration 0700_billing."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

from sqlalchemy import BigInteger, Date, DateTime, Integer, Text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cloud.models_common import created_at, updated_at, uuid_pk


class BillingBase(DeclarativeBase):
    """Tables of migration 0700_billing."""


class DueStatus(StrEnum):
    UPCOMING = "upcoming"  # created ahead of the period, not due yet
    DUE = "due"  # the period starts today
    OVERDUE = "overdue"  # unpaid after the start, within the grace period
    SUSPENDED = "suspended"  # unpaid after the grace period: the seat is released
    PAID = "paid"
    CANCELLED = "cancelled"  # paid after suspension but the seat could not be given back: refunded


OPEN_DUE_STATUSES = (DueStatus.UPCOMING, DueStatus.DUE, DueStatus.OVERDUE, DueStatus.SUSPENDED)


class SubscriptionDue(BillingBase):
    __tablename__ = "subscription_dues"

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    library_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    subscription_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(Text)
    due_on: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(Text)
    payment_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    paid_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    suspended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_notice: Mapped[str] = mapped_column(Text, default="")  # the last reminder kind queued
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class TenantBilling(BillingBase):
    __tablename__ = "tenant_billing"

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    legal_name: Mapped[str] = mapped_column(Text)
    gstin: Mapped[str] = mapped_column(Text)
    state_code: Mapped[str] = mapped_column(Text)
    address: Mapped[str] = mapped_column(Text, default="")
    sac_code: Mapped[str] = mapped_column(Text)
    gst_rate_bp: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = updated_at()


class CreditNote(BillingBase):
    __tablename__ = "credit_notes"

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    payment_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    refund_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    number: Mapped[str] = mapped_column(Text)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
