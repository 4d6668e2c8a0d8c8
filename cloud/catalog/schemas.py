"""Request and response bodies of the catalog routes."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

HHMM = Annotated[str, Field(pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$", examples=["06:00", "24:00"])]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["INR"])]
Amenity = Annotated[str, Field(min_length=1, max_length=40)]


class SeatType(StrEnum):
    OPEN_DESK = "open_desk"
    AC = "ac"
    CABIN = "cabin"


class PlanKind(StrEnum):
    HOURLY = "hourly"
    DAY_PASS = "day_pass"  # noqa: S105 - a plan kind, not a secret
    MONTHLY = "monthly"


class DayHours(BaseModel):
    """Opening hours of one weekday, local time; `close` may be "24:00" (midnight at the day's end)."""

    model_config = ConfigDict(extra="forbid")

    open: HHMM
    close: HHMM

    @model_validator(mode="after")
    def _ordered(self) -> DayHours:
        if self.close <= self.open:
            raise ValueError("close must be after open (a day cannot wrap past midnight)")
        return self


class OpeningHours(BaseModel):
    """Per weekday; null means closed all day."""

    model_config = ConfigDict(extra="forbid")

    mon: DayHours | None = None
    tue: DayHours | None = None
    wed: DayHours | None = None
    thu: DayHours | None = None
    fri: DayHours | None = None
    sat: DayHours | None = None
    sun: DayHours | None = None


def all_day_hours() -> OpeningHours:
    return OpeningHours(**{day: DayHours(open="00:00", close="24:00") for day in WEEKDAYS})


class Closure(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: dt.date
    reason: str = Field(default="", max_length=200)


class BookingRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    booking_window_days: int = Field(default=30, ge=1, le=365)
    min_duration_minutes: int = Field(default=60, ge=15, le=1440)
    max_duration_minutes: int = Field(default=720, ge=15, le=1440)
    max_active_bookings: int = Field(default=3, ge=1, le=100)
    cancel_cutoff_minutes: int = Field(default=60, ge=0, le=10080)
    checkin_open_minutes: int = Field(default=15, ge=0, le=240)
    no_show_grace_minutes: int = Field(default=15, ge=1, le=240)
    hold_minutes: int = Field(default=10, ge=1, le=1440)
    no_show_limit: int = Field(default=3, ge=1, le=100, description="no-shows within the window that block")
    no_show_window_days: int = Field(default=30, ge=1, le=365)
    no_show_block_days: int = Field(default=7, ge=0, le=365, description="0 disables blocking")

    @model_validator(mode="after")
    def _durations(self) -> BookingRules:
        if self.min_duration_minutes > self.max_duration_minutes:
            raise ValueError("min_duration_minutes must not exceed max_duration_minutes")
        return self


RULE_FIELDS = tuple(BookingRules.model_fields)


def _valid_timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


class LibraryFields(BaseModel):
    """Fields an owner can set; every one optional so the same model serves PATCH."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    address: str | None = Field(default=None, max_length=500)
    description: str | None = Field(default=None, max_length=4000)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    timezone: str | None = Field(default=None, max_length=64)
    amenities: list[Amenity] | None = Field(default=None, max_length=30)
    photos: list[HttpUrl] | None = Field(default=None, max_length=20)
    opening_hours: OpeningHours | None = None
    closures: list[Closure] | None = Field(default=None, max_length=366)
    rules: BookingRules | None = None
    status: str | None = Field(default=None, pattern="^(active|inactive)$")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        return value if value is None else _valid_timezone(value)


class LibraryCreate(LibraryFields):
    name: str = Field(min_length=1, max_length=200)
    timezone: str = Field(max_length=64)


class LibraryOut(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    address: str
    description: str
    latitude: float | None
    longitude: float | None
    timezone: str
    amenities: list[str]
    photos: list[str]
    rating: Decimal | None
    rating_count: int
    capacity: int
    opening_hours: dict[str, Any]
    closures: list[dict[str, Any]]
    rules: BookingRules
    status: str


class ZoneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=1000)


class ZonePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=1000)


class ZoneOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    library_id: uuid.UUID
    name: str
    description: str


class SeatsIn(BaseModel):
    """Create one or many seats with the same zone and type."""

    model_config = ConfigDict(extra="forbid")

    labels: list[Annotated[str, Field(min_length=1, max_length=50)]] = Field(min_length=1, max_length=500)
    zone_id: uuid.UUID | None = None
    seat_type: SeatType = SeatType.OPEN_DESK


class SeatPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str | None = Field(default=None, min_length=1, max_length=50)
    zone_id: uuid.UUID | None = None
    clear_zone: bool = False
    seat_type: SeatType | None = None
    active: bool | None = None


class SeatOut(BaseModel):
    id: uuid.UUID
    library_id: uuid.UUID
    label: str
    zone_id: uuid.UUID | None
    zone: str
    seat_type: str
    active: bool


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    kind: PlanKind
    price_minor: int = Field(ge=0, le=100_000_000_000)
    currency: Currency
    shift_start: dt.time | None = None
    shift_end: dt.time | None = None
    active: bool = True

    @model_validator(mode="after")
    def _shift(self) -> PlanIn:
        has_shift = self.shift_start is not None or self.shift_end is not None
        if self.kind is PlanKind.MONTHLY and (self.shift_start is None or self.shift_end is None):
            raise ValueError("a monthly plan needs shift_start and shift_end")
        if self.kind is not PlanKind.MONTHLY and has_shift:
            raise ValueError("only monthly plans have a shift")
        if self.shift_start is not None and self.shift_end is not None and self.shift_start == self.shift_end:
            raise ValueError("a shift cannot start and end at the same time")
        return self


class PlanPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    price_minor: int | None = Field(default=None, ge=0, le=100_000_000_000)
    currency: Currency | None = None
    active: bool | None = None


class PlanOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    library_id: uuid.UUID
    name: str
    kind: str
    price_minor: int
    currency: str
    shift_start: dt.time | None
    shift_end: dt.time | None
    active: bool
