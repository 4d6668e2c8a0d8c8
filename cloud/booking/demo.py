"""Demo activity: a few upcoming bookings of the demo students and one waitlist entry.

    seed_demo_activity(session, tenant_id=..., library_id=..., student_ids=[...], now=utcnow())

Call it after the library's plans exist (the demo creates them through the API). The bookings are
confirmed (as if paid) on the last seats of the library, so they never collide with the sample
booking on the first seat; one starts 45 minutes after `now`, so the worker queues its 30-minute
reminder shortly after the demo starts. The waitlist entry (day pass, two days ahead) is promoted by
the worker's next booking pass when a seat is free that day, which shows `waitlist_promoted` in the
console. Safe to run again: a booking whose seat and time are taken is skipped, an open waitlist
entry is reused.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.booking import service, timing
from cloud.booking.models import Booking, BookingStatus, WaitlistEntry, WaitlistStatus, half_open
from cloud.catalog.models import LibraryRecord, Plan
from cloud.db import platform_scope
from cloud.errors import ApiError
from cloud.notifications import outbox
from cloud.notifications.kinds import EventKind

# (days ahead, local start, local end) of each student's bookings, in turn
DEMO_SLOTS = ((1, "09:00", "12:00"), (1, "14:00", "17:00"), (2, "10:00", "13:00"), (3, "08:00", "11:00"))
SOON = dt.timedelta(minutes=45)
SOON_LENGTH = dt.timedelta(hours=2)
WAITLIST_DAYS_AHEAD = 2


def _plan(session: Session, library_id: uuid.UUID, kind: str) -> Plan | None:
    return session.scalars(
        select(Plan)
        .where(Plan.library_id == library_id, Plan.kind == kind, Plan.active)
        .order_by(Plan.price_minor)
    ).first()


def _ranges(library: LibraryRecord, now: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    tz = timing.zone_of(library.timezone)
    today = timing.local_date(now, tz)
    soon = (now + SOON).replace(second=0, microsecond=0)
    ranges = [(soon, soon + SOON_LENGTH)]
    for days, start, end in DEMO_SLOTS:
        day = today + dt.timedelta(days=days)
        ranges.append((timing.local_instant(day, start, tz), timing.local_instant(day, end, tz)))
    return ranges


def _booking(
    library: LibraryRecord,
    seat_id: uuid.UUID,
    plan: Plan | None,
    user_id: uuid.UUID,
    during: tuple[dt.datetime, dt.datetime],
) -> Booking:
    hours = max(1, round((during[1] - during[0]) / dt.timedelta(hours=1)))
    return Booking(
        id=uuid.uuid4(),
        tenant_id=library.tenant_id,
        library_id=library.id,
        seat_id=seat_id,
        user_id=user_id,
        plan_id=plan.id if plan else None,
        kind="hourly",
        status=BookingStatus.CONFIRMED.value,
        during=half_open(*during),
        price_minor=plan.price_minor * hours if plan else 0,
        currency=plan.currency if plan else "INR",
        created_by=user_id,
    )


def _waitlist_entry(
    session: Session, library: LibraryRecord, user_id: uuid.UUID, now: dt.datetime
) -> WaitlistEntry | None:
    plan = _plan(session, library.id, "day_pass")
    if plan is None:
        return None
    day = timing.local_date(now, timing.zone_of(library.timezone)) + dt.timedelta(days=WAITLIST_DAYS_AHEAD)
    open_statuses = (WaitlistStatus.WAITING.value, WaitlistStatus.OFFERED.value)
    entry = session.scalars(
        select(WaitlistEntry).where(
            WaitlistEntry.library_id == library.id,
            WaitlistEntry.user_id == user_id,
            WaitlistEntry.day == day,
            WaitlistEntry.status.in_(open_statuses),
        )
    ).first()
    if entry is None:
        entry = WaitlistEntry(
            tenant_id=library.tenant_id, library_id=library.id, user_id=user_id, plan_id=plan.id, day=day
        )
        session.add(entry)
        session.flush()
    return entry


def seed_demo_activity(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    library_id: uuid.UUID,
    student_ids: Sequence[uuid.UUID],
    now: dt.datetime,
) -> dict[str, Any]:
    """Upcoming confirmed bookings (with their confirmation messages) and a waitlist entry.

    Puts `session` in platform scope and commits. Returns
    `{"booking_ids": [...], "waitlist_entry_id": str | None}` (JSON-ready).
    """
    if not student_ids:
        raise ValueError("seed_demo_activity needs at least one student")
    platform_scope(session)
    library = service.load_library(session, library_id)
    if library.tenant_id != tenant_id:
        raise ApiError(422, "library_not_in_tenant", "that library belongs to another tenant")
    seats = list(reversed(service.active_seats(session, library.id)))
    plan = _plan(session, library.id, "hourly")
    booked: list[Booking] = []
    for index, during in enumerate(_ranges(library, now)):
        if not seats:
            break
        booking = _booking(
            library, seats[index % len(seats)].id, plan, student_ids[index % len(student_ids)], during
        )
        if service.insert_booking(session, booking):
            outbox.enqueue_booking_event(session, booking, EventKind.BOOKING_CONFIRMED, now)
            booked.append(booking)
    entry = _waitlist_entry(session, library, student_ids[-1], now)
    session.commit()
    return {
        "booking_ids": [str(booking.id) for booking in booked],
        "waitlist_entry_id": str(entry.id) if entry else None,
    }
