"""Bookings (one seat, one half-open time range) and pass revocations for the edge."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Date, DateTime, Identity, Text
from sqlalchemy.dialects.postgresql import JSONB, TSTZRANGE, UUID, Range
from sqlalchemy.orm import Mapped, mapped_column

from cloud.catalog.models import CatalogBase
from cloud.models_common import created_at, updated_at, uuid_pk


class BookingStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    CONFIRMED = "confirmed"
    CHECKED_IN = "checked_in"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


ACTIVE_STATUSES = (BookingStatus.PENDING_PAYMENT, BookingStatus.CONFIRMED, BookingStatus.CHECKED_IN)


class Booking(CatalogBase):
    __tablename__ = "bookings"

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    library_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    seat_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    plan_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    kind: Mapped[str] = mapped_column(Text)
    subscription_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    series_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    status: Mapped[str] = mapped_column(Text)
    during: Mapped[Range[dt.datetime]] = mapped_column(TSTZRANGE)
    price_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(Text)
    hold_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    checked_in_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    cancel_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    reminder_queued_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    pass_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()

    @property
    def start(self) -> dt.datetime:
        assert self.during.lower is not None
        return self.during.lower

    @property
    def end(self) -> dt.datetime:
        assert self.during.upper is not None
        return self.during.upper


class Revocation(CatalogBase):
    """Written by the `bookings_revoke_pass` trigger; the edge pulls them by increasing id."""

    __tablename__ = "revocations"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    library_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    booking_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    pass_id: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    revoked_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


def half_open(start: dt.datetime, end: dt.datetime) -> Range[dt.datetime]:
    return Range(start, end, bounds="[)")


class WaitlistStatus(StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"
    BOOKED = "booked"
    LAPSED = "lapsed"
    CANCELLED = "cancelled"


class WaitlistEntry(CatalogBase):
    """A student queued for a day pass on a full day; promotion offers them a held booking."""

    __tablename__ = "waitlist"

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    library_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    plan_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    day: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(Text, default=WaitlistStatus.WAITING.value)
    booking_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class SubscriptionStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    ACTIVE = "active"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class Subscription(CatalogBase):
    """A seat for one shift every day of a month; each day is its own booking row (kind
    'subscription'), so the exclusion constraint lets a morning and an evening member share a seat."""

    __tablename__ = "subscriptions"

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    library_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    seat_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    plan_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(Text)
    price_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(Text)
    paused_from: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    paused_until: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class BookingSeries(CatalogBase):
    """One recurring or multi-date request; each occurrence is a `Booking` with this `series_id`."""

    __tablename__ = "booking_series"

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    library_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    plan_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    recurrence: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    created_at: Mapped[dt.datetime] = created_at()


class CalendarFeed(CatalogBase):
    """A user's secret calendar feed id; rotating it replaces the id (old URLs stop working)."""

    __tablename__ = "calendar_feeds"

    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    feed_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), default=uuid.uuid4)
    rotated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
