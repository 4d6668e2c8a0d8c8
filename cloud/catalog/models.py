"""Catalog tables: libraries (with the columns migration 0100 adds), zones, seats, plans.

These classes use their own declarative base so they can map `libraries` and `seats` with the
extra columns without touching `cloud.tenancy.models` (which maps the 0001 columns only).
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, Integer, Numeric, Text, Time
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cloud.models_common import created_at, updated_at, uuid_pk


class CatalogBase(DeclarativeBase):
    """Base of the catalog and booking tables (schema lives in migration 0100)."""


class LibraryRecord(CatalogBase):
    __tablename__ = "libraries"

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    name: Mapped[str] = mapped_column(Text)
    address: Mapped[str] = mapped_column(Text, default="")
    latitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    longitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    timezone: Mapped[str] = mapped_column(Text)
    capacity: Mapped[int] = mapped_column(Integer, default=0)
    amenities: Mapped[list[Any]] = mapped_column(JSONB, default=list)
    status: Mapped[str] = mapped_column(Text, default="active")
    description: Mapped[str] = mapped_column(Text, default="")
    opening_hours: Mapped[dict[str, Any]] = mapped_column(JSONB)
    closures: Mapped[list[Any]] = mapped_column(JSONB, default=list)
    photos: Mapped[list[Any]] = mapped_column(JSONB, default=list)
    rating: Mapped[Decimal | None] = mapped_column(Numeric(2, 1), nullable=True)
    rating_count: Mapped[int] = mapped_column(Integer, default=0)
    booking_window_days: Mapped[int] = mapped_column(Integer, default=30)
    min_duration_minutes: Mapped[int] = mapped_column(Integer, default=60)
    max_duration_minutes: Mapped[int] = mapped_column(Integer, default=720)
    max_active_bookings: Mapped[int] = mapped_column(Integer, default=3)
    cancel_cutoff_minutes: Mapped[int] = mapped_column(Integer, default=60)
    checkin_open_minutes: Mapped[int] = mapped_column(Integer, default=15)
    no_show_grace_minutes: Mapped[int] = mapped_column(Integer, default=15)
    no_show_limit: Mapped[int] = mapped_column(Integer, default=3)
    no_show_window_days: Mapped[int] = mapped_column(Integer, default=30)
    no_show_block_days: Mapped[int] = mapped_column(Integer, default=7)
    hold_minutes: Mapped[int] = mapped_column(Integer, default=10)
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class Zone(CatalogBase):
    __tablename__ = "zones"

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    library_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class SeatRecord(CatalogBase):
    __tablename__ = "seats"

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    library_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    label: Mapped[str] = mapped_column(Text)
    zone: Mapped[str] = mapped_column(Text, default="")
    zone_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    seat_type: Mapped[str] = mapped_column(Text, default="open_desk")
    status: Mapped[str] = mapped_column(Text, default="active")
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class Plan(CatalogBase):
    __tablename__ = "plans"

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    library_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    price_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(Text)
    shift_start: Mapped[dt.time | None] = mapped_column(Time, nullable=True)
    shift_end: Mapped[dt.time | None] = mapped_column(Time, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()
