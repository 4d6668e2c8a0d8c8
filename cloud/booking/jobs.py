"""Periodic booking work for the worker (run about once a minute): expire unpaid holds, release
no-shows, complete finished stays, promote the waitlist, queue start reminders, run billing
(dues, suspensions); then invalidate the availability cache and tell live seat maps what was
released or offered.

    from cloud.booking.jobs import run_booking_jobs
    run_booking_jobs(app.state)            # app = create_app(settings)
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.booking import live, service, waitlist
from cloud.booking.cache import availability_cache_for
from cloud.booking.models import Booking, BookingStatus
from cloud.db import platform_scope
from cloud.models_common import utcnow
from cloud.notifications import outbox
from cloud.notifications.kinds import EventKind

log = logging.getLogger(__name__)

REMINDER_LEAD = dt.timedelta(minutes=30)


@dataclass(frozen=True)
class JobReport:
    holds_expired: int
    no_shows: int
    completed: int
    waitlist_offers: int
    reminders: int = 0


def run_booking_jobs(state: Any, now: dt.datetime | None = None) -> JobReport:
    """One pass of every booking job; `state` is the app's `app.state` (session factory, settings)."""
    moment = now or utcnow()
    with state.session_factory() as session:
        platform_scope(session)
        expired = service.expire_holds(session, moment)
        no_shows = service.release_no_shows(session, moment)
        completed = service.complete_finished(session, moment)
        offers = waitlist.promote_waitlist(session, moment)
        reminders = queue_reminders(session, moment)
        released = [session.get(Booking, r.booking_id) for r in [*expired, *no_shows]]
        offered = [session.get(Booking, entry.booking_id) for entry in offers if entry.booking_id]
    suspended = _run_billing(state, moment)
    _announce(state, suspended, "released")
    _announce(state, released, "released")
    _announce(state, offered, "booked")
    report = JobReport(len(expired), len(no_shows), completed, len(offers), reminders)
    log.info("booking jobs: %s", report)
    return report


def _run_billing(state: Any, now: dt.datetime) -> list[Booking | None]:
    from cloud.billing.jobs import run_billing_jobs  # billing builds on booking: imported late

    report = run_billing_jobs(state, now)
    with state.session_factory() as session:
        platform_scope(session)
        return [session.get(Booking, released.booking_id) for released in report.released]


def queue_reminders(session: Session, now: dt.datetime) -> int:
    """Queue `booking_reminder` for confirmed bookings starting within REMINDER_LEAD; commits.

    Each booking is looked at once (`reminder_queued_at`), and the outbox dedupe key (kind +
    booking + address) would stop a second message anyway; a reminder not sent by the start
    expires. Bookings made less than the lead before their start get none (the confirmation just
    told them). Monthly-plan days get none.
    """
    due = session.scalars(
        select(Booking).where(
            Booking.status == BookingStatus.CONFIRMED,
            Booking.reminder_queued_at.is_(None),
            Booking.kind != "subscription",
            func.lower(Booking.during) > now,
            func.lower(Booking.during) <= now + REMINDER_LEAD,
            Booking.created_at <= func.lower(Booking.during) - REMINDER_LEAD,
        )
    ).all()
    queued = 0
    for booking in due:
        booking.reminder_queued_at = now
        subject = f"booking:{booking.id}:{booking.start.isoformat()}"  # a moved booking is reminded again
        if outbox.enqueue_booking_event(
            session, booking, EventKind.BOOKING_REMINDER, now, subject=subject, expires_at=booking.start
        ):
            queued += 1
    session.commit()
    return queued


def _announce(state: Any, bookings: list[Booking | None], event: str) -> None:
    cache = availability_cache_for(state)
    hub = live.live_hub_for(state)
    for booking in bookings:
        if booking is not None:
            cache.invalidate(booking.library_id)
            hub.publish(booking.library_id, live.seat_event(event, booking))
