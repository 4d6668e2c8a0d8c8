"""A student's bookings as an iCalendar feed behind a secret, rotatable URL.

The URL token is the user's random feed id followed by an HMAC of it under a key derived from the
master key: the route checks the HMAC before touching the database, and a copy of the
`calendar_feeds` table alone cannot produce a working URL. Rotating replaces the feed id, so every
old URL stops working at once.

Events carry the library's TZID (with its VTIMEZONE), STATUS CONFIRMED / TENTATIVE (awaiting
payment) / CANCELLED (cancelled or no-show), and SEQUENCE from the last change so calendar apps
pick up moves and cancellations.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import uuid

import icalendar
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from cloud import crypto
from cloud.booking import timing
from cloud.booking.models import Booking, BookingStatus, CalendarFeed
from cloud.catalog.models import LibraryRecord, SeatRecord
from cloud.db import tenant_scope

FEED_KEY_PURPOSE = "calendar-feed"
MAC_HEX = 32
FEED_HISTORY = dt.timedelta(days=90)
FEED_LIMIT = 500
PRODID = "-//StudySpot//Bookings//EN"

_STATUS = {
    BookingStatus.PENDING_PAYMENT: "TENTATIVE",
    BookingStatus.CONFIRMED: "CONFIRMED",
    BookingStatus.CHECKED_IN: "CONFIRMED",
    BookingStatus.COMPLETED: "CONFIRMED",
    BookingStatus.CANCELLED: "CANCELLED",
    BookingStatus.NO_SHOW: "CANCELLED",
}


# --- token ----------------------------------------------------------------------------------------


def _mac(master_key: bytes, feed_id: uuid.UUID) -> str:
    key = crypto.derive_key(master_key, FEED_KEY_PURPOSE)
    return hmac.new(key, feed_id.bytes, hashlib.sha256).hexdigest()[:MAC_HEX]


def feed_token(master_key: bytes, feed_id: uuid.UUID) -> str:
    return feed_id.hex + _mac(master_key, feed_id)


def parse_token(master_key: bytes, token: str) -> uuid.UUID | None:
    """The feed id of a well-formed, authentic token; None otherwise."""
    if len(token) != 32 + MAC_HEX:
        return None
    try:
        feed_id = uuid.UUID(hex=token[:32])
    except ValueError:
        return None
    return feed_id if hmac.compare_digest(token[32:], _mac(master_key, feed_id)) else None


# --- feed rows (session scoped to the user) -------------------------------------------------------


def ensure_feed(session: Session, user_id: uuid.UUID, now: dt.datetime) -> CalendarFeed:
    """The user's feed, created on first use; commits."""
    feed = session.get(CalendarFeed, user_id)
    if feed is None:
        feed = CalendarFeed(user_id=user_id, feed_id=uuid.uuid4(), rotated_at=now)
        session.add(feed)
        session.commit()
    return feed


def rotate_feed(session: Session, user_id: uuid.UUID, now: dt.datetime) -> CalendarFeed:
    """A new feed id: the old URL stops working. Commits."""
    feed = session.get(CalendarFeed, user_id)
    if feed is None:
        feed = CalendarFeed(user_id=user_id)
        session.add(feed)
    feed.feed_id, feed.rotated_at = uuid.uuid4(), now
    session.commit()
    return feed


def feed_owner(session: Session, master_key: bytes, token: str) -> uuid.UUID | None:
    """Whose feed `token` opens (None for a forged, malformed or rotated-away token); then scopes
    `session` to that user so only their bookings are visible."""
    feed_id = parse_token(master_key, token)
    if feed_id is None:
        return None
    user_id = session.scalar(text("SELECT calendar_feed_user(:feed)"), {"feed": feed_id})
    if user_id is None:
        return None
    tenant_scope(session, None, user_id)
    return uuid.UUID(str(user_id))


# --- calendar -------------------------------------------------------------------------------------


def _feed_bookings(session: Session, user_id: uuid.UUID, now: dt.datetime) -> list[Booking]:
    return list(
        session.scalars(
            select(Booking)
            .where(Booking.user_id == user_id, func.upper(Booking.during) >= now - FEED_HISTORY)
            .order_by(func.lower(Booking.during))
            .limit(FEED_LIMIT)
        )
    )


def _event(booking: Booking, library: LibraryRecord, seat: SeatRecord | None) -> icalendar.Event:
    tz = timing.zone_of(library.timezone)
    label = seat.label if seat else "?"
    event = icalendar.Event()
    event.add("uid", f"{booking.id}@studyspot")
    event.add("dtstamp", booking.updated_at.astimezone(dt.UTC))
    event.add("dtstart", booking.start.astimezone(tz))
    event.add("dtend", booking.end.astimezone(tz))
    event.add("summary", f"Seat {label} at {library.name}")
    event.add("location", library.address or library.name)
    event.add("status", _STATUS.get(BookingStatus(booking.status), "CONFIRMED"))
    event.add("sequence", int(booking.updated_at.timestamp()) - int(booking.created_at.timestamp()))
    event.add("description", f"Booking {str(booking.id)[:8].upper()} ({booking.status}), seat {label}.")
    return event


def build_calendar(session: Session, user_id: uuid.UUID, now: dt.datetime) -> bytes:
    """The user's bookings from the last 90 days on, as an RFC 5545 document."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", "StudySpot bookings")
    libraries: dict[uuid.UUID, LibraryRecord | None] = {}
    for booking in _feed_bookings(session, user_id, now):
        if booking.library_id not in libraries:
            libraries[booking.library_id] = session.get(LibraryRecord, booking.library_id)
        library = libraries[booking.library_id]
        if library is not None:
            calendar.add_component(_event(booking, library, session.get(SeatRecord, booking.seat_id)))
    calendar.add_missing_timezones()
    return calendar.to_ical()
