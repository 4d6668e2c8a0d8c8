"""Booking logic: create, modify, cancel, confirm, check in, passes, and the periodic jobs.

The database guarantees no double booking (exclusion constraint `bookings_no_overlap`); this module
turns its SQLSTATE 23P01 into a 409 with alternatives. Every write happens in one transaction (a
savepoint around the insert/update that can conflict), so a failed request leaves nothing behind.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, Table, bindparam, func, insert, select, text, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from cloud.booking import timing
from cloud.booking.models import ACTIVE_STATUSES, Booking, BookingStatus, half_open
from cloud.booking.schemas import Alternative, BookingCreate, BookingModify, BookingOut
from cloud.catalog.models import LibraryRecord, Plan, SeatRecord, Zone
from cloud.db import platform_scope, tenant_scope
from cloud.errors import ApiError
from cloud.notifications import outbox
from cloud.notifications.kinds import EventKind
from cloud.tenancy.passkeys import current_pass_key
from shared.passes import PassClaims, PassScope, issue_pass, key_id_for, new_pass_id, short_id

EXCLUSION_VIOLATION = "23P01"
FOREIGN_KEY_VIOLATION = "23503"
PAST_GRACE = dt.timedelta(minutes=5)
MAX_SEAT_ATTEMPTS = 5
MAX_ALTERNATIVES = 3
PINNED_ROWS = "booking_pinned_rows"


@dataclass(frozen=True)
class Actor:
    """Who acts: a student, or staff/owner of `tenant_id` (staff may act for students of their tenant)."""

    user_id: uuid.UUID
    tenant_id: uuid.UUID | None = None
    is_staff: bool = False

    def staff_of(self, tenant_id: uuid.UUID) -> bool:
        return self.is_staff and self.tenant_id == tenant_id


@dataclass(frozen=True)
class Slot:
    kind: str
    start: dt.datetime
    end: dt.datetime


def _error(status: int, code: str, message: str, details: object = None) -> ApiError:
    return ApiError(status, code, message, details)


# --- lookups --------------------------------------------------------------------------------------


def active_plan(session: Session, plan_id: uuid.UUID) -> Plan:
    plan = session.get(Plan, plan_id)
    if plan is None or not plan.active:
        raise _error(422, "unknown_plan", "no active plan with that id")
    return plan


def _pin(session: Session, row: object) -> None:
    """Keep a catalog row referenced for the session's life: the identity map holds rows weakly, so
    without this the response (`booking_out`) would read the library and seat again after commit."""
    session.info.setdefault(PINNED_ROWS, []).append(row)


def load_library(session: Session, library_id: uuid.UUID) -> LibraryRecord:
    library = session.get(LibraryRecord, library_id)
    if library is None:
        raise _error(404, "not_found", "library not found")
    _pin(session, library)
    return library


def _seat_of_library(session: Session, seat_id: uuid.UUID, library: LibraryRecord) -> SeatRecord:
    seat = _checked_seat(session.get(SeatRecord, seat_id), library)
    _pin(session, seat)
    return seat


def _checked_seat(seat: SeatRecord | None, library: LibraryRecord) -> SeatRecord:
    if seat is None:
        raise _error(422, "unknown_seat", "no seat with that id")
    if seat.library_id != library.id:
        raise _error(422, "seat_not_in_library", "that seat belongs to another library than the plan")
    if seat.status != "active":
        raise _error(409, "seat_inactive", "that seat is not available for booking")
    return seat


def busy_ranges(
    session: Session, library_id: uuid.UUID, start: dt.datetime, end: dt.datetime
) -> dict[uuid.UUID, list[tuple[dt.datetime, dt.datetime]]]:
    """Occupied [start, end) ranges per seat overlapping the window (all students, no identities)."""
    rows = session.execute(
        text("SELECT seat_id, during FROM library_busy_seats(:library, tstzrange(:start, :end, '[)'))"),
        {"library": library_id, "start": start, "end": end},
    ).all()
    busy: dict[uuid.UUID, list[tuple[dt.datetime, dt.datetime]]] = {}
    for seat_id, during in rows:
        busy.setdefault(seat_id, []).append((during.lower, during.upper))
    return busy


def seat_states_at(session: Session, library_id: uuid.UUID, moment: dt.datetime) -> dict[uuid.UUID, str]:
    """'occupied' (checked in) or 'booked' (held or confirmed) per seat at `moment`; free seats absent."""
    rows = session.execute(
        text("SELECT seat_id, status FROM library_busy_seats(:library, tstzrange(:at, :at, '[]'))"),
        {"library": library_id, "at": moment},
    ).all()
    states: dict[uuid.UUID, str] = {}
    for seat_id, status in rows:
        if status == BookingStatus.CHECKED_IN or seat_id not in states:
            states[seat_id] = "occupied" if status == BookingStatus.CHECKED_IN else "booked"
    return states


def active_seats(
    session: Session, library_id: uuid.UUID, zone_id: uuid.UUID | None = None
) -> list[SeatRecord]:
    query = select(SeatRecord).where(SeatRecord.library_id == library_id, SeatRecord.status == "active")
    if zone_id is not None:
        query = query.where(SeatRecord.zone_id == zone_id)
    return list(session.scalars(query.order_by(SeatRecord.label)))


def _overlaps(
    ranges: Sequence[tuple[dt.datetime, dt.datetime]], start: dt.datetime, end: dt.datetime
) -> bool:
    return any(lower < end and start < upper for lower, upper in ranges)


# --- slot and rules -------------------------------------------------------------------------------


def slot_for(
    plan_kind: str,
    library: LibraryRecord,
    start: dt.datetime | None,
    end: dt.datetime | None,
    day: dt.date | None,
) -> Slot:
    if plan_kind == "hourly":
        if start is None or end is None or day is not None:
            raise _error(422, "start_and_end_required", "an hourly booking needs start and end (and no date)")
        return Slot("hourly", timing.to_utc(start), timing.to_utc(end))
    if plan_kind == "day_pass":
        if day is None or start is not None or end is not None:
            raise _error(422, "date_required", "a day pass needs the local date (and no start/end)")
        window = timing.opening_window(
            library.opening_hours, library.closures, day, timing.zone_of(library.timezone)
        )
        if window is None:
            raise _error(422, "library_closed", f"the library is closed on {day.isoformat()}")
        return Slot("day_pass", *window)
    raise _error(422, "plan_not_bookable", "monthly plans are booked as subscriptions, not bookings")


def check_slot(library: LibraryRecord, slot: Slot, now: dt.datetime) -> None:
    if slot.end <= slot.start:
        raise _error(422, "invalid_range", "end must be after start")
    if slot.end <= now or (slot.kind == "hourly" and slot.start < now - PAST_GRACE):
        raise _error(422, "in_past", "that time is in the past")
    if slot.start > now + dt.timedelta(days=library.booking_window_days):
        raise _error(
            422,
            "beyond_booking_window",
            f"bookings open at most {library.booking_window_days} days ahead",
            {"booking_window_days": library.booking_window_days},
        )
    if slot.kind == "hourly":
        _check_hourly(library, slot)


def _check_hourly(library: LibraryRecord, slot: Slot) -> None:
    if slot.start.second or slot.start.microsecond or slot.end.second or slot.end.microsecond:
        raise _error(422, "unaligned_time", "start and end must be whole minutes")
    minutes = (slot.end - slot.start) / dt.timedelta(minutes=1)
    if minutes < library.min_duration_minutes or minutes > library.max_duration_minutes:
        raise _error(
            422,
            "invalid_duration",
            f"a booking lasts {library.min_duration_minutes} to {library.max_duration_minutes} minutes",
            {"min_minutes": library.min_duration_minutes, "max_minutes": library.max_duration_minutes},
        )
    tz = timing.zone_of(library.timezone)
    day = timing.local_date(slot.start, tz)
    window = timing.open_span(library.opening_hours, library.closures, day, tz)
    if window is None:
        raise _error(422, "library_closed", f"the library is closed on {day.isoformat()}")
    if slot.start < window[0] or slot.end > window[1]:
        raise _error(
            422,
            "outside_opening_hours",
            "the booking must fall within the library's opening hours",
            {"open": window[0].astimezone(tz), "close": window[1].astimezone(tz)},
        )


def _price(plan: Plan, slot: Slot) -> int:
    if plan.kind == "hourly":
        return plan.price_minor * math.ceil((slot.end - slot.start) / dt.timedelta(hours=1))
    return plan.price_minor


def active_booking_count(
    session: Session, library: LibraryRecord, user_id: uuid.UUID, now: dt.datetime
) -> int:
    """Held, confirmed or checked-in bookings of the student at the library that are not over yet."""
    count = session.scalar(
        select(func.count()).select_from(Booking).where(*_counts_as_active(user_id, library.id, now))
    )
    return int(count or 0)


def _counts_as_active(user_id: Any, library_id: Any, now: Any) -> tuple[ColumnElement[bool], ...]:
    """The bookings `max_active_bookings` limits (values or SQL expressions for the three inputs)."""
    return (
        Booking.user_id == user_id,
        Booking.library_id == library_id,
        Booking.kind != "subscription",
        Booking.status.in_([s.value for s in ACTIVE_STATUSES]),
        func.upper(Booking.during) > now,
    )


def _check_active_limit(library: LibraryRecord, active: int) -> None:
    if active >= library.max_active_bookings:
        raise _error(
            409,
            "too_many_active_bookings",
            f"at most {library.max_active_bookings} active bookings per student at this library",
            {"max_active_bookings": library.max_active_bookings},
        )


def check_no_show_block(
    session: Session, library: LibraryRecord, user_id: uuid.UUID, now: dt.datetime
) -> None:
    """N no-shows within D days block self-service booking for X days after the latest one."""
    if library.no_show_block_days == 0:
        return
    since = now - dt.timedelta(days=library.no_show_window_days)
    marked = session.scalars(
        select(Booking.cancelled_at).where(
            Booking.user_id == user_id,
            Booking.library_id == library.id,
            Booking.status == BookingStatus.NO_SHOW,
            Booking.cancelled_at >= since,
        )
    ).all()
    _check_no_shows(library, marked, now)


def _check_no_shows(library: LibraryRecord, marked: Sequence[dt.datetime | None], now: dt.datetime) -> None:
    """The rule of `check_no_show_block` over the student's no-show times within the window."""
    if library.no_show_block_days == 0:
        return
    times = sorted(moment for moment in marked if moment is not None)
    if len(times) < library.no_show_limit:
        return
    until = times[-1] + dt.timedelta(days=library.no_show_block_days)
    if now < until:
        raise _error(
            403,
            "booking_blocked",
            f"{len(times)} no-shows in the last {library.no_show_window_days} days: booking here is blocked "
            f"until {until.astimezone(timing.zone_of(library.timezone)).isoformat()}",
            {"until": until.astimezone(timing.zone_of(library.timezone)), "no_shows": len(times)},
        )


def holder_for(actor: Actor, user_id: uuid.UUID | None, library: LibraryRecord) -> uuid.UUID:
    if user_id is None or user_id == actor.user_id:
        return actor.user_id
    if not actor.staff_of(library.tenant_id):
        raise _error(403, "forbidden", "only staff of this library can book for someone else")
    return user_id


# --- create ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BookingRequestRows:
    """What the rules of one new booking read, fetched in one round trip (`_request_rows`)."""

    plan: Plan | None
    library: LibraryRecord | None
    seat: SeatRecord | None
    active_bookings: int
    no_show_times: list[dt.datetime]


def _request_rows_statement() -> Select[Any]:
    mine_here = (Booking.user_id == bindparam("holder"), Booking.library_id == LibraryRecord.id)
    active = (
        select(func.count())
        .select_from(Booking)
        .where(*_counts_as_active(bindparam("holder"), LibraryRecord.id, bindparam("now")))
        .correlate(LibraryRecord)
        .scalar_subquery()
    )
    window = func.make_interval(0, 0, 0, LibraryRecord.no_show_window_days)
    no_shows = (
        select(func.array_agg(Booking.cancelled_at))
        .where(
            *mine_here,
            Booking.status == BookingStatus.NO_SHOW,
            Booking.cancelled_at >= bindparam("now") - window,
        )
        .correlate(LibraryRecord)
        .scalar_subquery()
    )
    return (
        select(Plan, LibraryRecord, SeatRecord, active, no_shows)
        .select_from(Plan)
        .outerjoin(LibraryRecord, LibraryRecord.id == Plan.library_id)
        .outerjoin(SeatRecord, SeatRecord.id == bindparam("seat_id", type_=SeatRecord.id.type))
        .where(Plan.id == bindparam("plan_id", type_=Plan.id.type))
    )


# built once: constructing and cache-keying this statement per request cost more CPU than running it
_REQUEST_ROWS = _request_rows_statement()


def _request_rows(
    session: Session, body: BookingCreate, holder: uuid.UUID, now: dt.datetime
) -> BookingRequestRows:
    """The plan, its library, the seat asked for (none for a zone), the holder's active bookings
    there and no-shows within the library's window: one statement instead of five (the booking path
    is bound by round trips)."""
    params = {"plan_id": body.plan_id, "seat_id": body.seat_id, "holder": holder, "now": now}
    row = session.execute(_REQUEST_ROWS, params).first()
    if row is None:
        return BookingRequestRows(None, None, None, 0, [])
    plan, library, seat, active_count, times = row
    for record in (library, seat):
        if record is not None:
            _pin(session, record)
    return BookingRequestRows(plan, library, seat, int(active_count or 0), list(times or []))


def create_booking(session: Session, actor: Actor, body: BookingCreate, now: dt.datetime) -> Booking:
    rows = _request_rows(session, body, body.user_id or actor.user_id, now)
    if rows.plan is None or not rows.plan.active:
        raise _error(422, "unknown_plan", "no active plan with that id")
    plan, library = rows.plan, rows.library
    if library is None:
        raise _error(404, "not_found", "library not found")
    if library.status != "active":
        raise _error(409, "library_inactive", "this library is not taking bookings")
    holder = holder_for(actor, body.user_id, library)
    slot = slot_for(plan.kind, library, body.start, body.end, body.date)
    check_slot(library, slot, now)
    if not actor.staff_of(library.tenant_id):  # staff may book for a blocked student on purpose
        _check_no_shows(library, rows.no_show_times, now)
    _check_active_limit(library, rows.active_bookings)
    if body.seat_id is not None:
        candidates = [_checked_seat(rows.seat, library)]
    else:
        candidates = candidate_seats(session, library, None, body.zone_id, slot)
    if len(candidates) == 1:
        return _create_on_one_seat(session, library, candidates[0], plan, slot, holder, actor, now, body)
    for seat in candidates[:MAX_SEAT_ATTEMPTS]:
        booking = new_booking(library, seat, plan, slot, holder, actor, now)
        if insert_booking(session, booking):
            return _confirm_created(session, booking, now)
    raise conflict_error(session, library, candidates[0] if candidates else None, slot, body.zone_id)


def _create_on_one_seat(
    session: Session,
    library: LibraryRecord,
    seat: SeatRecord,
    plan: Plan,
    slot: Slot,
    holder: uuid.UUID,
    actor: Actor,
    now: dt.datetime,
    body: BookingCreate,
) -> Booking:
    """With one seat to try, the transaction itself replaces the savepoint: nothing was written
    before the insert, so on a conflict the whole transaction is rolled back (two round trips less)."""
    booking = new_booking(library, seat, plan, slot, holder, actor, now)
    try:
        _insert_new(session, booking)
    except IntegrityError as exc:
        session.rollback()
        _raise_unless_seat_taken(exc)
        raise conflict_error(session, library, seat, slot, body.zone_id) from exc
    return _confirm_created(session, booking, now)


_BOOKINGS = cast(Table, Booking.__table__)
_INSERT_RETURNING_DEFAULTS = insert(_BOOKINGS).returning(_BOOKINGS.c.created_at, _BOOKINGS.c.updated_at)


def _insert_new(session: Session, booking: Booking) -> None:
    """Insert a transient booking with one Core statement and attach it as a loaded row: the unit of
    work's flush of this one row cost ~1 ms of CPU. Every column is set (None where the booking has
    no value and the database no default), so reading one later never queries."""
    given = sa_inspect(booking).dict
    values = {
        column.key: given.get(column.key)
        for column in _BOOKINGS.columns
        if column.key in given or column.server_default is None
    }
    created_at, updated_at = session.execute(_INSERT_RETURNING_DEFAULTS, values).one()
    for key, value in (*values.items(), ("created_at", created_at), ("updated_at", updated_at)):
        set_committed_value(booking, key, value)
    make_transient_to_detached(booking)
    session.add(booking)


def _confirm_created(session: Session, booking: Booking, now: dt.datetime) -> Booking:
    if booking.status == BookingStatus.CONFIRMED:
        # rows built from the booking just inserted under the same scope pass the outbox's checks
        # whenever the booking's did: no savepoint; a failure here is a bug and fails the request
        outbox.enqueue_booking_event(session, booking, EventKind.BOOKING_CONFIRMED, now, savepoint=False)
    session.commit()
    return booking


def candidate_seats(
    session: Session,
    library: LibraryRecord,
    seat_id: uuid.UUID | None,
    zone_id: uuid.UUID | None,
    slot: Slot,
) -> list[SeatRecord]:
    """The seat asked for, or the zone's free seats (its first seat when none is free)."""
    if seat_id is not None:
        return [_seat_of_library(session, seat_id, library)]
    assert zone_id is not None
    zone = session.get(Zone, zone_id)
    if zone is None or zone.library_id != library.id:
        raise _error(422, "zone_not_in_library", "that zone belongs to another library than the plan")
    busy = busy_ranges(session, library.id, slot.start, slot.end)
    seats = active_seats(session, library.id, zone.id)
    return [seat for seat in seats if seat.id not in busy] or seats[:1]


def new_booking(
    library: LibraryRecord,
    seat: SeatRecord,
    plan: Plan,
    slot: Slot,
    holder: uuid.UUID,
    actor: Actor,
    now: dt.datetime,
) -> Booking:
    price = _price(plan, slot)
    pending = price > 0
    return Booking(
        id=uuid.uuid4(),
        tenant_id=library.tenant_id,
        library_id=library.id,
        seat_id=seat.id,
        user_id=holder,
        plan_id=plan.id,
        kind=slot.kind,
        status=(BookingStatus.PENDING_PAYMENT if pending else BookingStatus.CONFIRMED).value,
        during=half_open(slot.start, slot.end),
        price_minor=price,
        currency=plan.currency,
        hold_expires_at=now + dt.timedelta(minutes=library.hold_minutes) if pending else None,
        created_by=actor.user_id,
    )


def _sqlstate(exc: IntegrityError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


def insert_booking(session: Session, booking: Booking) -> bool:
    """Insert in a savepoint; False when the seat is taken for (part of) that time."""
    try:
        with session.begin_nested():
            session.add(booking)
    except IntegrityError as exc:
        _raise_unless_seat_taken(exc)
        return False
    return True


def _raise_unless_seat_taken(exc: IntegrityError) -> None:
    """A booking insert's IntegrityError: returns when the seat is taken then (the exclusion
    constraint), 422 for an unknown holder, anything else re-raised."""
    if _sqlstate(exc) == EXCLUSION_VIOLATION:
        return
    if _sqlstate(exc) == FOREIGN_KEY_VIOLATION:
        raise _error(422, "unknown_user", "no account with that user id") from exc
    raise exc


def conflict_error(
    session: Session,
    library: LibraryRecord,
    seat: SeatRecord | None,
    slot: Slot,
    zone_id: uuid.UUID | None,
) -> ApiError:
    alternatives = suggest_alternatives(session, library, seat, slot, zone_id)
    code, what = ("seat_taken", "that seat") if zone_id is None else ("zone_full", "every seat of that zone")
    return _error(
        409,
        code,
        f"{what} is already booked for that time",
        {"alternatives": [alt.model_dump(mode="json") for alt in alternatives]},
    )


def suggest_alternatives(
    session: Session,
    library: LibraryRecord,
    seat: SeatRecord | None,
    slot: Slot,
    zone_id: uuid.UUID | None = None,
) -> list[Alternative]:
    """Up to three: other free seats at the same time (same zone first), then later slots of the seat."""
    tz = timing.zone_of(library.timezone)
    window = timing.opening_window(
        library.opening_hours, library.closures, timing.local_date(slot.start, tz), tz
    )
    day_end = window[1] if window else slot.end
    busy = busy_ranges(session, library.id, slot.start, max(day_end, slot.end))
    preferred_zone = zone_id or (seat.zone_id if seat else None)
    seats = sorted(active_seats(session, library.id), key=lambda s: (s.zone_id != preferred_zone, s.label))
    found = [
        _alternative(other, slot.start, slot.end, tz)
        for other in seats
        if (seat is None or other.id != seat.id)
        and not _overlaps(busy.get(other.id, []), slot.start, slot.end)
    ][:MAX_ALTERNATIVES]
    if seat is not None and slot.kind == "hourly":
        length = slot.end - slot.start
        start = slot.start + length
        while len(found) < MAX_ALTERNATIVES and start + length <= day_end:
            if not _overlaps(busy.get(seat.id, []), start, start + length):
                found.append(_alternative(seat, start, start + length, tz))
            start += length
    return found


def _alternative(seat: SeatRecord, start: dt.datetime, end: dt.datetime, tz: dt.tzinfo) -> Alternative:
    return Alternative(
        seat_id=seat.id, seat_label=seat.label, start=start.astimezone(tz), end=end.astimezone(tz)
    )


# --- read -----------------------------------------------------------------------------------------


def get_booking(session: Session, actor: Actor, booking_id: uuid.UUID) -> Booking:
    """The booking if the actor holds it or is staff of its tenant (RLS hides the rest: 404)."""
    booking = session.get(Booking, booking_id)
    if booking is None or not (booking.user_id == actor.user_id or actor.staff_of(booking.tenant_id)):
        raise _error(404, "not_found", "booking not found")
    return booking


def booking_out(session: Session, booking: Booking) -> BookingOut:
    library = load_library(session, booking.library_id)
    seat = session.get(SeatRecord, booking.seat_id)
    tz = timing.zone_of(library.timezone)
    return BookingOut(
        id=booking.id,
        library_id=booking.library_id,
        seat_id=booking.seat_id,
        seat_label=seat.label if seat else "",
        user_id=booking.user_id,
        plan_id=booking.plan_id,
        kind=booking.kind,
        status=booking.status,
        start=booking.start.astimezone(tz),
        end=booking.end.astimezone(tz),
        timezone=library.timezone,
        price_minor=booking.price_minor,
        currency=booking.currency,
        hold_expires_at=timing.in_zone(booking.hold_expires_at, tz),
        checked_in_at=timing.in_zone(booking.checked_in_at, tz),
        cancelled_at=timing.in_zone(booking.cancelled_at, tz),
        cancel_reason=booking.cancel_reason,
        created_at=booking.created_at.astimezone(tz),
    )


def _encode_cursor(booking: Booking) -> str:
    return base64.urlsafe_b64encode(f"{booking.start.isoformat()}|{booking.id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        start, booking_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return dt.datetime.fromisoformat(start), uuid.UUID(booking_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise _error(400, "invalid_cursor", "that cursor is not valid") from exc


def list_my_bookings(
    session: Session, user_id: uuid.UUID, *, status: str | None, cursor: str | None, limit: int
) -> tuple[list[Booking], str | None]:
    """The user's bookings, newest start first, keyset-paginated."""
    start_col = func.lower(Booking.during)
    query = select(Booking).where(Booking.user_id == user_id)
    if status is not None:
        query = query.where(Booking.status == status)
    if cursor is not None:
        start, booking_id = _decode_cursor(cursor)
        query = query.where(func.row(start_col, Booking.id) < func.row(start, booking_id))
    rows = list(session.scalars(query.order_by(start_col.desc(), Booking.id.desc()).limit(limit + 1)))
    next_cursor = _encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def list_library_bookings(
    session: Session, actor: Actor, library_id: uuid.UUID, day: dt.date, status: str | None
) -> list[Booking]:
    """Staff view: the library's bookings overlapping local date `day`, by start then seat."""
    library = load_library(session, library_id)
    if not actor.staff_of(library.tenant_id):
        raise _error(403, "forbidden", "only staff of this library can list its bookings")
    tz = timing.zone_of(library.timezone)
    start = timing.local_instant(day, "00:00", tz)
    end = timing.local_instant(day, "24:00", tz)
    query = select(Booking).where(
        Booking.library_id == library.id, Booking.during.overlaps(half_open(start, end))
    )
    if status is not None:
        query = query.where(Booking.status == status)
    return list(session.scalars(query.order_by(func.lower(Booking.during), Booking.seat_id)))


# --- modify, cancel, confirm, check in ------------------------------------------------------------


def modify_booking(
    session: Session, actor: Actor, booking_id: uuid.UUID, body: BookingModify, now: dt.datetime
) -> Booking:
    booking = get_booking(session, actor, booking_id)
    staff = actor.staff_of(booking.tenant_id)
    if booking.status not in (BookingStatus.PENDING_PAYMENT, BookingStatus.CONFIRMED):
        raise _error(409, "not_modifiable", f"a {booking.status} booking cannot be changed")
    if booking.kind == "subscription":
        raise _error(
            409, "not_modifiable", "a subscription day moves with the subscription (pause, transfer)"
        )
    if not staff and now >= booking.start:
        raise _error(409, "already_started", "a booking that has started can only be changed by staff")
    library = load_library(session, booking.library_id)
    seat = _seat_of_library(session, body.seat_id or booking.seat_id, library)
    slot = _modified_slot(booking, library, body)
    check_slot(library, slot, now)
    plan = session.get(Plan, booking.plan_id) if booking.plan_id else None
    price = _price(plan, slot) if plan else booking.price_minor
    if booking.status == BookingStatus.CONFIRMED and price != booking.price_minor:
        raise _error(409, "price_change", "a paid booking can only move to a slot of the same price")
    moved = seat.id != booking.seat_id or (slot.start, slot.end) != (booking.start, booking.end)
    if not moved:
        return booking
    if slot.start != booking.start:
        booking.reminder_queued_at = None  # remind again before the new start
    try:
        with session.begin_nested():
            booking.seat_id, booking.during, booking.price_minor = (
                seat.id,
                half_open(slot.start, slot.end),
                price,
            )
            booking.pass_id = None  # the old pass names the old seat/time: the trigger revokes it
    except IntegrityError as exc:
        if _sqlstate(exc) != EXCLUSION_VIOLATION:
            raise
        session.refresh(booking)
        raise conflict_error(session, library, seat, slot, None) from exc
    if booking.status == BookingStatus.CONFIRMED:  # a held one hears about it when confirmed
        subject = f"booking:{booking.id}:modified:{now.isoformat()}"
        outbox.enqueue_booking_event(session, booking, EventKind.BOOKING_MODIFIED, now, subject=subject)
    session.commit()
    return booking


def _modified_slot(booking: Booking, library: LibraryRecord, body: BookingModify) -> Slot:
    if booking.kind == "day_pass":
        if body.date is None:
            return Slot("day_pass", booking.start, booking.end)
        return slot_for("day_pass", library, None, None, body.date)
    if body.date is not None:
        raise _error(422, "start_and_end_required", "an hourly booking moves with start and end")
    return slot_for("hourly", library, body.start or booking.start, body.end or booking.end, None)


def cancel_booking(
    session: Session, actor: Actor, booking_id: uuid.UUID, reason: str, now: dt.datetime
) -> Booking:
    booking = get_booking(session, actor, booking_id)
    library = load_library(session, booking.library_id)
    cancel_one(session, booking, library, actor.staff_of(booking.tenant_id), reason, now)
    session.commit()
    return booking


def cancel_one(
    session: Session, booking: Booking, library: LibraryRecord, staff: bool, reason: str, now: dt.datetime
) -> None:
    """Cancel one booking under the cutoff rule (staff are exempt) and queue the message; no commit."""
    if booking.status not in (BookingStatus.PENDING_PAYMENT, BookingStatus.CONFIRMED):
        raise _error(409, "not_cancellable", f"a {booking.status} booking cannot be cancelled")
    cutoff = booking.start - dt.timedelta(minutes=library.cancel_cutoff_minutes)
    if not staff and booking.status == BookingStatus.CONFIRMED and now > cutoff:
        raise _error(
            409,
            "cancellation_cutoff_passed",
            f"bookings can be cancelled up to {library.cancel_cutoff_minutes} minutes before the start",
            {"cutoff": cutoff.astimezone(timing.zone_of(library.timezone))},
        )
    booking.status = BookingStatus.CANCELLED.value
    booking.cancelled_at = now
    booking.cancel_reason = reason or ("cancelled_by_staff" if staff else "cancelled_by_student")
    outbox.enqueue_booking_event(session, booking, EventKind.BOOKING_CANCELLED, now)


def confirm_booking(session: Session, booking_id: uuid.UUID, now: dt.datetime) -> Booking:
    """Mark a held booking paid (payments, or staff taking cash). Idempotent for a confirmed one.

    The session must see the booking (tenant scope, platform scope, or the holder).
    """
    booking = session.get(Booking, booking_id, with_for_update=True)
    if booking is None:
        raise _error(404, "not_found", "booking not found")
    if booking.status == BookingStatus.CONFIRMED:
        return booking
    if booking.status != BookingStatus.PENDING_PAYMENT:
        raise _error(409, "not_pending", f"a {booking.status} booking cannot be confirmed")
    if booking.hold_expires_at is not None and booking.hold_expires_at <= now:
        raise _error(409, "hold_expired", "the hold on this seat expired before payment")
    booking.status = BookingStatus.CONFIRMED.value
    booking.hold_expires_at = None
    outbox.enqueue_booking_event(session, booking, EventKind.BOOKING_CONFIRMED, now)
    session.commit()
    return booking


def check_in(
    session: Session, booking_id: uuid.UUID, now: dt.datetime, *, enforce_window: bool = True
) -> Booking:
    """Mark the holder inside. Staff at the desk get the check-in window enforced; the edge's door
    decision (sync) is authoritative and passes `enforce_window=False`."""
    booking = session.get(Booking, booking_id, with_for_update=True)
    if booking is None:
        raise _error(404, "not_found", "booking not found")
    if booking.status == BookingStatus.CHECKED_IN:
        return booking
    if booking.status != BookingStatus.CONFIRMED:
        raise _error(409, "not_confirmed", f"a {booking.status} booking cannot be checked in")
    library = load_library(session, booking.library_id)
    opens = booking.start - dt.timedelta(minutes=library.checkin_open_minutes)
    if enforce_window and not opens <= now < booking.end:
        tz = timing.zone_of(library.timezone)
        raise _error(
            409,
            "outside_checkin_window",
            "check-in is open from shortly before the start until the end of the booking",
            {"opens": opens.astimezone(tz), "closes": booking.end.astimezone(tz)},
        )
    booking.status = BookingStatus.CHECKED_IN.value
    booking.checked_in_at = now
    session.commit()
    return booking


# --- pass -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedPass:
    booking: Booking
    claims: PassClaims
    qr_payload: str


def _whole_second(moment: dt.datetime) -> dt.datetime:
    return moment.replace(microsecond=0)


def booking_pass(
    session: Session, actor: Actor, booking_id: uuid.UUID, master_key: bytes, now: dt.datetime
) -> IssuedPass:
    booking = get_booking(session, actor, booking_id)
    if booking.status in (BookingStatus.CANCELLED, BookingStatus.NO_SHOW, BookingStatus.COMPLETED):
        raise _error(410, "pass_revoked", f"the booking is {booking.status}; its pass is no longer valid")
    if booking.status == BookingStatus.PENDING_PAYMENT:
        raise _error(409, "payment_pending", "the pass is issued once the booking is paid")
    # the holder may not be a member of the tenant: sign in the tenant's scope, on purpose
    tenant_scope(session, booking.tenant_id, actor.user_id)
    issued = sign_pass(session, booking, master_key, now)
    session.commit()
    return issued


def _assign_pass_id(session: Session, booking: Booking) -> str:
    """Give the booking its pass id on first use. Two first requests at once (the student page asks for
    the pass and its PNG together) must sign one id: the UPDATE keeps a stored id, and the second
    request waits on the first's row lock, then reads the id the first one stored."""
    if booking.pass_id is not None:
        return booking.pass_id
    stored = session.execute(
        update(Booking)
        .where(Booking.id == booking.id)
        .values(pass_id=func.coalesce(Booking.pass_id, new_pass_id()))
        .returning(Booking.pass_id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if stored is None:  # the booking is being made in this transaction and is not flushed yet
        booking.pass_id = stored = new_pass_id()
    else:
        set_committed_value(booking, "pass_id", stored)
    return str(stored)


def sign_pass(session: Session, booking: Booking, master_key: bytes, now: dt.datetime) -> IssuedPass:
    """Sign the booking's pass (assigning its pass id on first use); the caller commits."""
    library = load_library(session, booking.library_id)
    pass_id = _assign_pass_id(session, booking)
    kid, private_key = current_pass_key(session, booking.tenant_id, master_key)
    assert kid == key_id_for(private_key.public_key())
    claims = PassClaims(
        pass_id=pass_id,
        library=short_id(booking.library_id),
        scope=PassScope.SEAT,
        target=short_id(booking.seat_id),
        holder=short_id(booking.user_id),
        valid_from=_whole_second(booking.start - dt.timedelta(minutes=library.checkin_open_minutes)),
        valid_until=_whole_second(booking.end),
        # the booking's own time, not the request's: the same booking and key always give the same
        # text, so a screenshot of the QR and the PNG stay identical to what the app shows
        issued_at=_whole_second(booking.created_at or now),
        key_id=kid,
    )
    session.flush()
    return IssuedPass(booking, claims, issue_pass(claims, private_key))


def issue_demo_booking(
    session: Session,
    *,
    library_id: uuid.UUID,
    seat_id: uuid.UUID,
    user_id: uuid.UUID,
    master_key: bytes,
    now: dt.datetime | None = None,
    hours: int = 12,
) -> tuple[uuid.UUID, str]:
    """For the demo seed: a confirmed, free booking of `seat_id` for `user_id`, valid from now for
    `hours`, and its signed QR pass. Puts `session` in platform scope and commits.

    Returns (booking_id, qr_payload).
    """
    platform_scope(session)
    moment = now or dt.datetime.now(dt.UTC)
    library = load_library(session, library_id)
    seat = _seat_of_library(session, seat_id, library)
    start = moment.replace(second=0, microsecond=0) - dt.timedelta(minutes=5)
    booking = Booking(
        id=uuid.uuid4(),
        tenant_id=library.tenant_id,
        library_id=library.id,
        seat_id=seat.id,
        user_id=user_id,
        plan_id=None,
        kind="hourly",
        status=BookingStatus.CONFIRMED.value,
        during=half_open(start, start + dt.timedelta(hours=hours)),
        price_minor=0,
        currency="INR",
        created_by=user_id,
    )
    if not insert_booking(session, booking):
        raise _error(409, "seat_taken", "the demo seat is already booked now")
    issued = sign_pass(session, booking, master_key, moment)
    session.commit()
    return booking.id, issued.qr_payload


# --- jobs (run in platform scope by the worker) ---------------------------------------------------


@dataclass(frozen=True)
class Released:
    booking_id: uuid.UUID
    library_id: uuid.UUID


def expire_holds(session: Session, now: dt.datetime) -> list[Released]:
    """Cancel unpaid holds whose time ran out, freeing their seats; commits. Returns what it freed."""
    rows = session.execute(
        update(Booking)
        .where(Booking.status == BookingStatus.PENDING_PAYMENT, Booking.hold_expires_at <= now)
        .values(status=BookingStatus.CANCELLED.value, cancelled_at=now, cancel_reason="hold_expired")
        .returning(Booking.id, Booking.library_id)
        .execution_options(synchronize_session=False)
    ).all()
    session.execute(
        text(
            "UPDATE subscriptions s SET status = 'expired' WHERE s.status = 'pending_payment' AND NOT EXISTS "
            "(SELECT 1 FROM bookings b WHERE b.subscription_id = s.id AND b.status = 'pending_payment')"
        )
    )
    session.commit()
    return [Released(row[0], row[1]) for row in rows]


def release_no_shows(session: Session, now: dt.datetime) -> list[Released]:
    """Confirmed bookings without a check-in by start + the library's grace become `no_show`."""
    rows = session.execute(
        text(
            "UPDATE bookings b SET status = 'no_show', cancelled_at = :now, cancel_reason = 'no_show' "
            "FROM libraries l WHERE l.id = b.library_id AND b.status = 'confirmed' "
            "AND b.kind <> 'subscription' "
            "AND lower(b.during) + make_interval(mins => l.no_show_grace_minutes) <= :now "
            "RETURNING b.id, b.library_id"
        ),
        {"now": now},
    ).all()
    released = session.scalars(
        select(Booking)
        .where(Booking.id.in_([row[0] for row in rows]))
        .execution_options(populate_existing=True)
    )
    for booking in released:
        outbox.enqueue_booking_event(session, booking, EventKind.NO_SHOW_RELEASED, now)
    session.commit()
    return [Released(row[0], row[1]) for row in rows]


def complete_finished(session: Session, now: dt.datetime) -> int:
    """Checked-in bookings whose time is over become `completed`."""
    result = session.execute(
        update(Booking)
        .where(Booking.status == BookingStatus.CHECKED_IN, func.upper(Booking.during) <= now)
        .values(status=BookingStatus.COMPLETED.value)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
