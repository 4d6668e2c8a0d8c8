"""The hourly telemetry roll-up (migration 0600_analytics)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import DateTime, Float, Integer, Text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class AnalyticsBase(DeclarativeBase):
    """Tables of migration 0600_analytics."""


class TelemetryHourly(AnalyticsBase):
    """One library sensor metric over one UTC hour, rolled up from `edge_telemetry` minutes.

    `increase` is the metric's rise over the hour for cumulative counters (the energy meter's kWh):
    the sum of minute-to-minute increases of `last`, a drop (meter reset) counting the new reading.
    """

    __tablename__ = "telemetry_hourly"

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    library_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    sensor: Mapped[str] = mapped_column(Text, primary_key=True)
    metric: Mapped[str] = mapped_column(Text, primary_key=True)
    hour: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    minutes: Mapped[int] = mapped_column(Integer)
    samples: Mapped[int] = mapped_column(Integer)
    total: Mapped[float] = mapped_column(Float)
    minimum: Mapped[float] = mapped_column(Float)
    maximum: Mapped[float] = mapped_column(Float)
    last: Mapped[float] = mapped_column(Float)
    increase: Mapped[float] = mapped_column(Float)
