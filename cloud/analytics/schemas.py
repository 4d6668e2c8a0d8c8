"""Response bodies of the analytics routes (CONTRACTS.md "analytics")."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

from pydantic import BaseModel, Field


class RevenueGroup(StrEnum):
    MONTH = "month"
    DAY = "day"
    LIBRARY = "library"
    PLAN = "plan"
    METHOD = "method"


class ReportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


class OccupancyCell(BaseModel):
    weekday: int  # Monday = 0
    hour: int
    avg_occupied: float
    occupancy_ratio: float


class OccupancyOut(BaseModel):
    library_id: uuid.UUID
    timezone: str
    seats: int
    days: int
    cells: list[OccupancyCell]


class SummaryOut(BaseModel):
    library_id: uuid.UUID
    days: int
    bookings: int
    no_shows: int
    no_show_rate: float
    checkins_today: int
    occupied_seat_hours: float
    energy_kwh: float
    kwh_per_occupied_seat_hour: float | None


class ForecastHour(BaseModel):
    start: dt.datetime
    expected_occupied: float
    expected_ratio: float


class ForecastOut(BaseModel):
    library_id: uuid.UUID
    timezone: str
    generated_at: dt.datetime
    model: str
    holdout_days: int
    holdout_mae: float
    holdout_mape: float | None
    hours: list[ForecastHour]


class BestTimeSlot(BaseModel):
    start: dt.datetime
    end: dt.datetime
    expected_ratio: float


class BestTimeOut(BaseModel):
    library_id: uuid.UUID
    timezone: str
    date: dt.date
    suggestions: list[BestTimeSlot]
    hint: str


class RevenueRow(BaseModel):
    key: str
    label: str
    currency: str
    payments: int
    gross_minor: int
    refunds_minor: int
    net_minor: int


class RevenueOut(BaseModel):
    group_by: RevenueGroup
    from_: dt.date = Field(serialization_alias="from")
    to: dt.date
    rows: list[RevenueRow]


class TenantRevenue(BaseModel):
    tenant_id: uuid.UUID
    tenant_name: str
    currency: str
    net_minor: int


class OverviewOut(BaseModel):
    tenants: int
    libraries: int
    edges: int
    edges_online: int
    revenue_by_tenant: list[TenantRevenue]


class FleetDeviceOut(BaseModel):
    device_id: uuid.UUID
    tenant_id: uuid.UUID
    library_id: uuid.UUID
    name: str
    online: bool
    last_seen_at: dt.datetime | None
    agent_version: str | None
    queue_depth: int | None
    dead_letters: int | None
    clock_skew_s: float | None
    skew_flagged: bool
    revoked: bool
