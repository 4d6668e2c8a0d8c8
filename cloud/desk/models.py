"""Sync conflicts (migration 0800): a walk-in sold offline met a booking made online for its seat."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

from sqlalchemy import BigInteger, DateTime, Text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cloud.models_common import created_at, updated_at, uuid_pk


class DeskBase(DeclarativeBase):
    """Tables of migration 0800_desk_sales."""


class ConflictOutcome(StrEnum):
    MOVED = "moved"  # the online booking moved to a free seat of the same kind
    CANCELLED = "cancelled"  # no such seat: the online booking was cancelled (and refunded)
    WALKIN_MOVED = "walkin_moved"  # the online holder was already inside: the walk-in moved
    WALKIN_UNSEATED = "walkin_unseated"  # ... and no seat was free: the desk hands the money back


class RefundStatus(StrEnum):
    NONE = "none"
    DUE = "due"  # planned in the push transaction, sent to the gateway after it commits
    SENT = "sent"
    MANUAL = "manual"  # cash taken at the desk: handed back there


class SyncConflict(DeskBase):
    __tablename__ = "sync_conflicts"

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    library_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    edge_device_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    receipt_number: Mapped[str] = mapped_column(Text)
    seat_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    walkin_booking_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    other_booking_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    outcome: Mapped[str] = mapped_column(Text)
    moved_to_seat_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    refund_payment_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    refund_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(Text)
    refund_status: Mapped[str] = mapped_column(Text, default=RefundStatus.NONE.value)
    refund_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()
