"""Recurring and multi-date bookings: one request, one `booking_series` row, one booking per date.

Every occurrence passes the same rules as a single booking (window, duration, opening hours, the
no-show block, the active-bookings limit) and the same exclusion constraint. All or nothing by
default: the whole request runs in one transaction and is rolled back when any date fails, with
every date's problem listed. `partial=True` books what is free and reports the rest.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.booking import service, timing
from cloud.booking.models import Booking, BookingSeries, BookingStatus
from cloud.booking.schemas import MAX_OCCURRENCES, SeriesCreate, SeriesProblem, WeeklyRecurrence
from cloud.catalog.models import LibraryRecord, Plan
from cloud.errors import ApiError
from cloud.notifications import outbox
from cloud.notifications.kinds import EventKind

MAX_RECURRENCE_DAYS = 366


@dataclass
class SeriesResult:
    series: BookingSeries
    bookings: list[Booking]
    skipped: list[SeriesProblem] = field(default_factory=list)


# --- dates ----------------------------------------------------------------------------------------


def _weekly_dates(rule: WeeklyRecurrence) -> Iterator[dt.date]:
    wanted = {timing.WEEKDAYS.index(day.value) for day in rule.weekdays}
    last = rule.until or rule.start_date + dt.timedelta(days=MAX_RECURRENCE_DAYS)
    day, found = rule.start_date, 0
    while day <= last and (rule.count is None or found < rule.count):
        if day.weekday() in wanted:
            found += 1
            yield day
        day += dt.timedelta(days=1)


def occurrence_dates(body: SeriesCreate) -> list[dt.date]:
    """The requested local dates, sorted and unique; too many is a 422."""
    if body.weekly is not None:
        if body.weekly.until and (body.weekly.until - body.weekly.start_date).days > MAX_RECURRENCE_DAYS:
            raise ApiError(422, "invalid_recurrence", f"a series spans at most {MAX_RECURRENCE_DAYS} days")
        days = list(_weekly_dates(body.weekly))
    else:
        days = sorted(set(body.dates or []))
    if not days:
        raise ApiError(422, "invalid_recurrence", "the recurrence yields no date")
    if len(days) > MAX_OCCURRENCES:
        raise ApiError(
            422,
            "too_many_occurrences",
            f"a series has at most {MAX_OCCURRENCES} occurrences",
            {"max_occurrences": MAX_OCCURRENCES, "requested": len(days)},
        )
    return days


def _occurrence_slot(plan: Plan, library: LibraryRecord, day: dt.date, body: SeriesCreate) -> service.Slot:
    if plan.kind != "hourly":
        if body.start_time is not None:
            raise ApiError(422, "date_required", "a day-pass series takes dates only (no start/end time)")
        return service.slot_for(plan.kind, library, None, None, day)
    if body.start_time is None or body.end_time is None:
        raise ApiError(422, "start_and_end_required", "an hourly series needs start_time and end_time")
    tz = timing.zone_of(library.timezone)
    start = timing.local_instant(day, body.start_time, tz)
    end = timing.local_instant(day, body.end_time, tz)
    return service.slot_for("hourly", library, start, end, None)


def _problem(day: dt.date, error: ApiError) -> SeriesProblem:
    alternatives = []
    if isinstance(error.details, dict):
        alternatives = error.details.get("alternatives", [])
    return SeriesProblem(date=day, code=error.code, message=error.message, alternatives=alternatives)


# --- create ---------------------------------------------------------------------------------------


def create_series(
    session: Session, actor: service.Actor, body: SeriesCreate, now: dt.datetime
) -> SeriesResult:
    plan = service.active_plan(session, body.plan_id)
    library = service.load_library(session, plan.library_id)
    if library.status != "active":
        raise ApiError(409, "library_inactive", "this library is not taking bookings")
    holder = service.holder_for(actor, body.user_id, library)
    days = occurrence_dates(body)
    if not actor.staff_of(library.tenant_id):
        service.check_no_show_block(session, library, holder, now)
    slots, skipped = _valid_slots(plan, library, days, body, now)
    if skipped and not body.partial:
        raise ApiError(
            422,
            "series_invalid",
            f"{len(skipped)} of {len(days)} dates break the booking rules; nothing was booked",
            {"dates": [problem.model_dump(mode="json") for problem in skipped]},
        )
    room = library.max_active_bookings - service.active_booking_count(session, library, holder, now)
    if len(slots) > room and not body.partial:
        raise ApiError(
            409,
            "too_many_active_bookings",
            f"at most {library.max_active_bookings} active bookings per student at this library: "
            f"room for {max(room, 0)} more, {len(slots)} asked",
            {
                "max_active_bookings": library.max_active_bookings,
                "room": max(room, 0),
                "requested": len(slots),
            },
        )
    if slots:  # an unknown seat or a zone of another library is one error, not one per date
        service.candidate_seats(session, library, body.seat_id, body.zone_id, slots[0][1])
    series = BookingSeries(
        tenant_id=library.tenant_id,
        library_id=library.id,
        user_id=holder,
        plan_id=plan.id,
        recurrence=body.model_dump(mode="json", include={"dates", "weekly", "start_time", "end_time"}),
        created_by=actor.user_id,
    )
    session.add(series)
    session.flush()
    result = SeriesResult(series, [], skipped)
    _Booker(session, actor, body, library, plan, series, now).book_all(slots, room, result)
    if not result.bookings or (result.skipped and not body.partial):
        session.rollback()
        raise ApiError(
            409,
            "series_conflict",
            "no date could be booked" if body.partial else "some dates are taken; nothing was booked",
            {"dates": [problem.model_dump(mode="json") for problem in result.skipped]},
        )
    session.commit()
    result.skipped.sort(key=lambda problem: problem.date)
    return result


def _valid_slots(
    plan: Plan, library: LibraryRecord, days: list[dt.date], body: SeriesCreate, now: dt.datetime
) -> tuple[list[tuple[dt.date, service.Slot]], list[SeriesProblem]]:
    slots: list[tuple[dt.date, service.Slot]] = []
    problems: list[SeriesProblem] = []
    for day in days:
        try:
            slot = _occurrence_slot(plan, library, day, body)
            service.check_slot(library, slot, now)
        except ApiError as exc:
            problems.append(_problem(day, exc))
            continue
        slots.append((day, slot))
    return slots, problems


@dataclass(frozen=True)
class _Booker:
    """What every occurrence of one request shares."""

    session: Session
    actor: service.Actor
    body: SeriesCreate
    library: LibraryRecord
    plan: Plan
    series: BookingSeries
    now: dt.datetime

    def book_all(self, slots: list[tuple[dt.date, service.Slot]], room: int, result: SeriesResult) -> None:
        for day, slot in slots:
            if len(result.bookings) >= room:
                limit = ApiError(409, "too_many_active_bookings", "the active-bookings limit is reached")
                result.skipped.append(_problem(day, limit))
                continue
            try:
                result.bookings.append(self.book(slot))
            except ApiError as exc:
                result.skipped.append(_problem(day, exc))

    def book(self, slot: service.Slot) -> Booking:
        body, library = self.body, self.library
        candidates = service.candidate_seats(self.session, library, body.seat_id, body.zone_id, slot)
        for seat in candidates[: service.MAX_SEAT_ATTEMPTS]:
            booking = service.new_booking(
                library, seat, self.plan, slot, self.series.user_id, self.actor, self.now
            )
            booking.series_id = self.series.id
            if service.insert_booking(self.session, booking):
                if booking.status == BookingStatus.CONFIRMED:
                    outbox.enqueue_booking_event(self.session, booking, EventKind.BOOKING_CONFIRMED, self.now)
                return booking
        first = candidates[0] if candidates else None
        raise service.conflict_error(self.session, library, first, slot, body.zone_id)


# --- read and cancel ------------------------------------------------------------------------------


def get_series(session: Session, actor: service.Actor, series_id: uuid.UUID) -> BookingSeries:
    """The series if the actor holds it or is staff of its tenant (otherwise 404)."""
    series = session.get(BookingSeries, series_id)
    if series is None or not (series.user_id == actor.user_id or actor.staff_of(series.tenant_id)):
        raise ApiError(404, "not_found", "booking series not found")
    return series


def occurrences(session: Session, series_id: uuid.UUID) -> list[Booking]:
    return list(
        session.scalars(
            select(Booking).where(Booking.series_id == series_id).order_by(func.lower(Booking.during))
        )
    )


def cancel_series(
    session: Session,
    actor: service.Actor,
    series_id: uuid.UUID,
    from_date: dt.date | None,
    reason: str,
    now: dt.datetime,
) -> tuple[list[Booking], list[SeriesProblem]]:
    """Cancel every upcoming held/confirmed occurrence on or after local `from_date` (default: all).

    Occurrences past the cancellation cutoff (students only) are kept and reported.
    """
    series = get_series(session, actor, series_id)
    library = service.load_library(session, series.library_id)
    tz = timing.zone_of(library.timezone)
    staff = actor.staff_of(series.tenant_id)
    cancelled: list[Booking] = []
    kept: list[SeriesProblem] = []
    for booking in occurrences(session, series.id):
        day = timing.local_date(booking.start, tz)
        if booking.end <= now or (from_date is not None and day < from_date):
            continue
        if booking.status not in (BookingStatus.PENDING_PAYMENT, BookingStatus.CONFIRMED):
            continue
        try:
            service.cancel_one(session, booking, library, staff, reason, now)
        except ApiError as exc:
            kept.append(_problem(day, exc))
            continue
        cancelled.append(booking)
    session.commit()
    return cancelled, kept
