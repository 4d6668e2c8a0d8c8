"""Request and response bodies of the booking routes. Times are shown in the library's zone."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator


class BookingCreate(BaseModel):
    """Book a seat, or any free seat of a zone, for an hourly slot (`start`/`end`) or a day pass (`date`).

    `user_id` lets staff book on a student's behalf.
    """

    model_config = ConfigDict(extra="forbid")

    plan_id: uuid.UUID
    seat_id: uuid.UUID | None = None
    zone_id: uuid.UUID | None = None
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    date: dt.date | None = Field(default=None, description="local date of a day pass")
    user_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _one_target(self) -> BookingCreate:
        if (self.seat_id is None) == (self.zone_id is None):
            raise ValueError("give exactly one of seat_id or zone_id")
        return self


class BookingModify(BaseModel):
    """Move a booking to another seat and/or time, atomically (all or nothing)."""

    model_config = ConfigDict(extra="forbid")

    seat_id: uuid.UUID | None = None
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    date: dt.date | None = None


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=200)


class BookingOut(BaseModel):
    id: uuid.UUID
    library_id: uuid.UUID
    seat_id: uuid.UUID
    seat_label: str
    user_id: uuid.UUID
    plan_id: uuid.UUID | None
    kind: str
    status: str
    start: dt.datetime
    end: dt.datetime
    timezone: str
    price_minor: int
    currency: str
    hold_expires_at: dt.datetime | None
    checked_in_at: dt.datetime | None
    cancelled_at: dt.datetime | None
    cancel_reason: str | None
    created_at: dt.datetime


class BookingPage(BaseModel):
    items: list[BookingOut]
    next_cursor: str | None


class PassOut(BaseModel):
    booking_id: uuid.UUID
    pass_id: str
    qr_payload: str
    valid_from: dt.datetime
    valid_until: dt.datetime


class Alternative(BaseModel):
    seat_id: uuid.UUID
    seat_label: str
    start: dt.datetime
    end: dt.datetime


class SeatAvailability(BaseModel):
    seat_id: uuid.UUID
    label: str
    zone_id: uuid.UUID | None
    zone: str
    seat_type: str
    free: bool


class AvailabilityOut(BaseModel):
    library_id: uuid.UUID
    date: dt.date
    timezone: str
    start: dt.datetime
    end: dt.datetime
    seats: list[SeatAvailability]


class WaitlistJoin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan_id: uuid.UUID = Field(description="a day-pass plan of the library")
    date: dt.date = Field(description="local date wanted")


class WaitlistOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    library_id: uuid.UUID
    plan_id: uuid.UUID
    day: dt.date
    status: str
    booking_id: uuid.UUID | None
    created_at: dt.datetime


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan_id: uuid.UUID = Field(description="a monthly shift plan")
    seat_id: uuid.UUID
    start_date: dt.date = Field(description="local date of the first day; the term runs one month")


class PauseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paused_from: dt.date
    paused_until: dt.date = Field(description="first day back (exclusive end of the pause)")

    @model_validator(mode="after")
    def _ordered(self) -> PauseIn:
        if self.paused_until <= self.paused_from:
            raise ValueError("paused_until must be after paused_from")
        return self


class SubscriptionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    library_id: uuid.UUID
    seat_id: uuid.UUID
    plan_id: uuid.UUID | None
    start_date: dt.date
    end_date: dt.date
    status: str
    price_minor: int
    currency: str
    paused_from: dt.date | None
    paused_until: dt.date | None


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seat_id: uuid.UUID


MAX_OCCURRENCES = 60
LOCAL_HHMM = r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$"


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


class WeeklyRecurrence(BaseModel):
    """Every listed weekday from `start_date`, until a local date (inclusive) or for `count` occurrences."""

    model_config = ConfigDict(extra="forbid")

    weekdays: list[Weekday] = Field(min_length=1, max_length=7)
    start_date: dt.date
    until: dt.date | None = None
    count: int | None = Field(default=None, ge=1, le=MAX_OCCURRENCES)

    @model_validator(mode="after")
    def _one_end(self) -> WeeklyRecurrence:
        if (self.until is None) == (self.count is None):
            raise ValueError("give exactly one of until or count")
        if self.until is not None and self.until < self.start_date:
            raise ValueError("until must not be before start_date")
        return self


class SeriesCreate(BaseModel):
    """Book the same seat (or any free seat of a zone) on several local dates: explicit `dates` or a
    `weekly` recurrence. Hourly plans take local `start_time`/`end_time`; day passes take neither.

    All or nothing by default: one unbookable date books none and lists every problem. With
    `partial=true` the free dates are booked and the others reported in `skipped`.
    """

    model_config = ConfigDict(extra="forbid")

    plan_id: uuid.UUID
    seat_id: uuid.UUID | None = None
    zone_id: uuid.UUID | None = None
    start_time: str | None = Field(default=None, pattern=LOCAL_HHMM, description="local HH:MM")
    end_time: str | None = Field(default=None, pattern=LOCAL_HHMM, description="local HH:MM")
    dates: list[dt.date] | None = Field(default=None, min_length=1, max_length=MAX_OCCURRENCES)
    weekly: WeeklyRecurrence | None = None
    partial: bool = False
    user_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _consistent(self) -> SeriesCreate:
        if (self.seat_id is None) == (self.zone_id is None):
            raise ValueError("give exactly one of seat_id or zone_id")
        if (self.dates is None) == (self.weekly is None):
            raise ValueError("give exactly one of dates or weekly")
        if (self.start_time is None) != (self.end_time is None):
            raise ValueError("give both start_time and end_time, or neither (day pass)")
        return self


class SeriesProblem(BaseModel):
    """Why one date of a series was not booked."""

    date: dt.date
    code: str
    message: str
    alternatives: list[Alternative] = Field(default_factory=list)


class SeriesOut(BaseModel):
    id: uuid.UUID
    library_id: uuid.UUID
    user_id: uuid.UUID
    plan_id: uuid.UUID | None
    recurrence: dict[str, Any]
    bookings: list[BookingOut]
    skipped: list[SeriesProblem] = Field(default_factory=list)


class SeriesCancel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_date: dt.date | None = Field(default=None, description="local date; earlier occurrences stay")
    reason: str = Field(default="", max_length=200)


class SeriesCancelOut(BaseModel):
    series_id: uuid.UUID
    cancelled: list[BookingOut]
    skipped: list[SeriesProblem]
