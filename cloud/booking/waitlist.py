"""Waitlist per library and date (day passes): when a seat frees up, the first in line is offered
a held booking (pending payment, the library's hold time); if the hold lapses, the next one is.

`promote_waitlist` runs in the worker (platform scope) after `expire_holds` / `release_no_shows`
and periodically, so promotions also follow cancellations.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.booking import service
from cloud.booking.models import Booking, BookingStatus, WaitlistEntry, WaitlistStatus, half_open
from cloud.catalog.models import LibraryRecord, Plan
from cloud.errors import ApiError
from cloud.notifications import outbox
from cloud.notifications.kinds import EventKind

# Where the student confirms and pays an offer; relative to the student app (no public URL setting yet).
OFFER_PATH = "/bookings"


def _day_pass_plan(session: Session, plan_id: uuid.UUID, library_id: uuid.UUID) -> Plan:
    plan = service.active_plan(session, plan_id)
    if plan.library_id != library_id or plan.kind != "day_pass":
        raise ApiError(422, "invalid_plan", "the waitlist takes a day-pass plan of this library")
    return plan


def _free_seat_ids(session: Session, library: LibraryRecord, slot: service.Slot) -> list[uuid.UUID]:
    busy = service.busy_ranges(session, library.id, slot.start, slot.end)
    return [seat.id for seat in service.active_seats(session, library.id) if seat.id not in busy]


def join_waitlist(
    session: Session,
    actor: service.Actor,
    library_id: uuid.UUID,
    plan_id: uuid.UUID,
    day: dt.date,
    now: dt.datetime,
) -> WaitlistEntry:
    library = service.load_library(session, library_id)
    plan = _day_pass_plan(session, plan_id, library.id)
    slot = service.slot_for("day_pass", library, None, None, day)
    if slot.end <= now:
        raise ApiError(422, "in_past", "that day is over")
    if _free_seat_ids(session, library, slot):
        raise ApiError(409, "seats_available", "seats are free that day: book one instead")
    entry = WaitlistEntry(
        tenant_id=library.tenant_id, library_id=library.id, user_id=actor.user_id, plan_id=plan.id, day=day
    )
    session.add(entry)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise ApiError(409, "already_waiting", "you are already on this day's waitlist") from exc
    return entry


def my_waitlist(session: Session, user_id: uuid.UUID) -> Sequence[WaitlistEntry]:
    return session.scalars(
        select(WaitlistEntry)
        .where(WaitlistEntry.user_id == user_id)
        .order_by(WaitlistEntry.created_at.desc())
    ).all()


def leave_waitlist(session: Session, actor: service.Actor, entry_id: uuid.UUID) -> WaitlistEntry:
    entry = session.get(WaitlistEntry, entry_id)
    if entry is None or entry.user_id != actor.user_id:
        raise ApiError(404, "not_found", "waitlist entry not found")
    if entry.status == WaitlistStatus.WAITING:
        entry.status = WaitlistStatus.CANCELLED.value
        session.commit()
    return entry


def promote_waitlist(session: Session, now: dt.datetime) -> list[WaitlistEntry]:
    """Settle past offers, then offer every free seat to the next in line. Returns the new offers."""
    _settle_offers(session)
    offers: list[WaitlistEntry] = []
    for library_id, day in _open_queues(session, now):
        offers += _promote_queue(session, library_id, day, now)
    session.commit()
    return offers


def _settle_offers(session: Session) -> None:
    rows = session.execute(
        select(WaitlistEntry, Booking)
        .join(Booking, Booking.id == WaitlistEntry.booking_id)
        .where(WaitlistEntry.status == WaitlistStatus.OFFERED)
    ).all()
    for entry, booking in rows:
        if booking.status in (BookingStatus.CONFIRMED, BookingStatus.CHECKED_IN, BookingStatus.COMPLETED):
            entry.status = WaitlistStatus.BOOKED.value
        elif booking.status in (BookingStatus.CANCELLED, BookingStatus.NO_SHOW):
            entry.status = WaitlistStatus.LAPSED.value
    session.flush()


def _open_queues(session: Session, now: dt.datetime) -> list[tuple[uuid.UUID, dt.date]]:
    earliest = (now - dt.timedelta(days=1)).date()  # local dates may trail UTC by a day
    rows = session.execute(
        select(WaitlistEntry.library_id, WaitlistEntry.day)
        .where(WaitlistEntry.status == WaitlistStatus.WAITING, WaitlistEntry.day >= earliest)
        .distinct()
    ).all()
    return [(row[0], row[1]) for row in rows]


def _promote_queue(
    session: Session, library_id: uuid.UUID, day: dt.date, now: dt.datetime
) -> list[WaitlistEntry]:
    library = service.load_library(session, library_id)
    try:
        slot = service.slot_for("day_pass", library, None, None, day)
    except ApiError:
        return []  # the library closed that day since: entries wait until cancelled
    if slot.end <= now:
        return []
    queue = session.scalars(
        select(WaitlistEntry)
        .where(
            WaitlistEntry.library_id == library_id,
            WaitlistEntry.day == day,
            WaitlistEntry.status == WaitlistStatus.WAITING,
        )
        .order_by(WaitlistEntry.created_at)
        .with_for_update(skip_locked=True)
    ).all()
    offers = []
    for seat_id, entry in zip(_free_seat_ids(session, library, slot), queue, strict=False):
        booking = _held_booking(session, library, entry, seat_id, slot, now)
        if booking is not None:
            entry.status, entry.booking_id = WaitlistStatus.OFFERED.value, booking.id
            _announce_offer(session, booking, now)
            offers.append(entry)
    session.flush()
    return offers


def _held_booking(
    session: Session,
    library: LibraryRecord,
    entry: WaitlistEntry,
    seat_id: uuid.UUID,
    slot: service.Slot,
    now: dt.datetime,
) -> Booking | None:
    plan = session.get(Plan, entry.plan_id)
    price = plan.price_minor if plan else 0
    booking = Booking(
        id=uuid.uuid4(),
        tenant_id=library.tenant_id,
        library_id=library.id,
        seat_id=seat_id,
        user_id=entry.user_id,
        plan_id=entry.plan_id,
        kind="day_pass",
        status=(BookingStatus.PENDING_PAYMENT if price else BookingStatus.CONFIRMED).value,
        during=half_open(slot.start, slot.end),
        price_minor=price,
        currency=plan.currency if plan else "INR",
        hold_expires_at=now + dt.timedelta(minutes=library.hold_minutes) if price else None,
        created_by=None,
    )
    return booking if service.insert_booking(session, booking) else None


def _announce_offer(session: Session, booking: Booking, now: dt.datetime) -> None:
    """Tell the student, in the offer's transaction; the message is useless once the hold lapses."""
    deadline = booking.hold_expires_at or booking.start
    outbox.enqueue_booking_event(
        session,
        booking,
        EventKind.WAITLIST_PROMOTED,
        now,
        extra={"hold_until": deadline, "action_url": f"{OFFER_PATH}/{booking.id}"},
        expires_at=deadline,
    )
