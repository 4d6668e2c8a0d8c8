"""Monthly seat subscriptions: one shift (e.g. 06:00-14:00) on one seat every day for a month.

Each day is a booking row of kind 'subscription', so the same exclusion constraint that prevents
double booking lets a morning and an evening member share a seat and rejects overlapping shifts.
Pause cancels the days in the pause (reason 'paused', freeing the seat); resume re-books those
still ahead, all or nothing. Payment (payments issue) calls `confirm_subscription`.
"""

from __future__ import annotations

import calendar
import datetime as dt
import uuid
from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.booking import service, timing
from cloud.booking.models import (
    ACTIVE_STATUSES,
    Booking,
    BookingStatus,
    Subscription,
    SubscriptionStatus,
    half_open,
)
from cloud.booking.schemas import PauseIn, SubscriptionCreate
from cloud.catalog.models import LibraryRecord, Plan
from cloud.errors import ApiError

PAUSED = "paused"


def one_month_later(day: dt.date) -> dt.date:
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _days(start: dt.date, end: dt.date) -> Iterator[dt.date]:
    day = start
    while day < end:
        yield day
        day += dt.timedelta(days=1)


def shift_range(library: LibraryRecord, plan: Plan, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The shift of local `day` in UTC; a shift ending at or before its start runs past midnight."""
    assert plan.shift_start is not None and plan.shift_end is not None
    tz = timing.zone_of(library.timezone)
    start = dt.datetime.combine(day, plan.shift_start, tzinfo=tz)
    end_day = day + dt.timedelta(days=1) if plan.shift_end <= plan.shift_start else day
    end = dt.datetime.combine(end_day, plan.shift_end, tzinfo=tz)
    return timing.to_utc(start), timing.to_utc(end)


def _monthly_plan(session: Session, plan_id: uuid.UUID) -> Plan:
    plan = service.active_plan(session, plan_id)
    if plan.kind != "monthly":
        raise ApiError(422, "not_a_monthly_plan", "subscriptions take a monthly shift plan")
    return plan


def _day_rows(
    subscription: Subscription,
    library: LibraryRecord,
    plan: Plan,
    days: list[dt.date],
    status: str,
    now: dt.datetime,
) -> list[Booking]:
    hold = (
        now + dt.timedelta(minutes=library.hold_minutes) if status == BookingStatus.PENDING_PAYMENT else None
    )
    rows = []
    for day in days:
        start, end = shift_range(library, plan, day)
        rows.append(
            Booking(
                id=uuid.uuid4(),
                tenant_id=library.tenant_id,
                library_id=library.id,
                seat_id=subscription.seat_id,
                user_id=subscription.user_id,
                plan_id=plan.id,
                kind="subscription",
                subscription_id=subscription.id,
                status=status,
                during=half_open(start, end),
                price_minor=0,
                currency=plan.currency,
                hold_expires_at=hold,
                created_by=subscription.user_id,
            )
        )
    return rows


def _insert_days(session: Session, library: LibraryRecord, rows: list[Booking]) -> None:
    """All days or none: a taken day raises 409 naming the dates that clash."""
    try:
        with session.begin_nested():
            session.add_all(rows)
    except IntegrityError as exc:
        if service._sqlstate(exc) != service.EXCLUSION_VIOLATION:
            raise
        tz = timing.zone_of(library.timezone)
        busy = service.busy_ranges(session, library.id, rows[0].start, rows[-1].end)
        clashes = [
            timing.local_date(row.start, tz).isoformat()
            for row in rows
            if service._overlaps(busy.get(row.seat_id, []), row.start, row.end)
        ]
        raise ApiError(
            409, "seat_taken", "the seat is taken during that shift on some days", {"dates": clashes}
        ) from exc


def create_subscription(
    session: Session, actor: service.Actor, body: SubscriptionCreate, now: dt.datetime
) -> Subscription:
    plan = _monthly_plan(session, body.plan_id)
    library = service.load_library(session, plan.library_id)
    seat = service._seat_of_library(session, body.seat_id, library)
    today = timing.local_date(now, timing.zone_of(library.timezone))
    if body.start_date < today or body.start_date > today + dt.timedelta(days=library.booking_window_days):
        raise ApiError(
            422, "invalid_start_date", "a subscription starts between today and the booking window"
        )
    pending = plan.price_minor > 0
    subscription = Subscription(
        id=uuid.uuid4(),
        tenant_id=library.tenant_id,
        library_id=library.id,
        seat_id=seat.id,
        user_id=actor.user_id,
        plan_id=plan.id,
        start_date=body.start_date,
        end_date=one_month_later(body.start_date),
        status=(SubscriptionStatus.PENDING_PAYMENT if pending else SubscriptionStatus.ACTIVE).value,
        price_minor=plan.price_minor,
        currency=plan.currency,
    )
    session.add(subscription)
    session.flush()
    day_status = (BookingStatus.PENDING_PAYMENT if pending else BookingStatus.CONFIRMED).value
    days = list(_days(subscription.start_date, subscription.end_date))
    _insert_days(session, library, _day_rows(subscription, library, plan, days, day_status, now))
    session.commit()
    return subscription


def get_subscription(session: Session, actor: service.Actor, subscription_id: uuid.UUID) -> Subscription:
    subscription = session.get(Subscription, subscription_id)
    if subscription is None or not (
        subscription.user_id == actor.user_id or actor.staff_of(subscription.tenant_id)
    ):
        raise ApiError(404, "not_found", "subscription not found")
    return subscription


def _rows(session: Session, subscription: Subscription) -> list[Booking]:
    return list(
        session.scalars(
            select(Booking).where(Booking.subscription_id == subscription.id).order_by(Booking.during)
        )
    )


def confirm_subscription(session: Session, subscription_id: uuid.UUID, now: dt.datetime) -> Subscription:
    """Paid: the subscription and its held days become active/confirmed (the session must see them)."""
    subscription = session.get(Subscription, subscription_id, with_for_update=True)
    if subscription is None:
        raise ApiError(404, "not_found", "subscription not found")
    if subscription.status != SubscriptionStatus.PENDING_PAYMENT:
        return subscription
    for row in _rows(session, subscription):
        if row.status == BookingStatus.PENDING_PAYMENT:
            if row.hold_expires_at is not None and row.hold_expires_at <= now:
                raise ApiError(409, "hold_expired", "the hold on this seat expired before payment")
            row.status, row.hold_expires_at = BookingStatus.CONFIRMED.value, None
    subscription.status = SubscriptionStatus.ACTIVE.value
    session.commit()
    return subscription


def pause(
    session: Session, actor: service.Actor, subscription_id: uuid.UUID, body: PauseIn, now: dt.datetime
) -> Subscription:
    subscription = get_subscription(session, actor, subscription_id)
    if subscription.status != SubscriptionStatus.ACTIVE:
        raise ApiError(409, "not_active", f"a {subscription.status} subscription cannot be paused")
    library = service.load_library(session, subscription.library_id)
    tz = timing.zone_of(library.timezone)
    if body.paused_from <= timing.local_date(now, tz):
        raise ApiError(422, "invalid_pause", "a pause starts tomorrow at the earliest")
    for row in _rows(session, subscription):
        in_pause = body.paused_from <= timing.local_date(row.start, tz) < body.paused_until
        if in_pause and row.status in ACTIVE_STATUSES:
            row.status, row.cancelled_at, row.cancel_reason = BookingStatus.CANCELLED.value, now, PAUSED
    subscription.status = SubscriptionStatus.PAUSED.value
    subscription.paused_from, subscription.paused_until = body.paused_from, body.paused_until
    session.commit()
    return subscription


def resume(
    session: Session, actor: service.Actor, subscription_id: uuid.UUID, now: dt.datetime
) -> Subscription:
    """Re-book the paused days still ahead (all or nothing: 409 if someone took the seat meanwhile)."""
    subscription = get_subscription(session, actor, subscription_id)
    if subscription.status != SubscriptionStatus.PAUSED:
        raise ApiError(409, "not_paused", "only a paused subscription can be resumed")
    library = service.load_library(session, subscription.library_id)
    plan = session.get(Plan, subscription.plan_id) if subscription.plan_id else None
    if plan is None:
        raise ApiError(409, "plan_gone", "the subscription's plan no longer exists")
    paused = [row for row in _rows(session, subscription) if row.cancel_reason == PAUSED and row.start > now]
    paused_days = [timing.local_date(row.start, timing.zone_of(library.timezone)) for row in paused]
    for row in paused:
        row.cancel_reason = "paused_then_resumed"
    if paused_days:
        rows = _day_rows(subscription, library, plan, paused_days, BookingStatus.CONFIRMED.value, now)
        _insert_days(session, library, rows)
    subscription.status = SubscriptionStatus.ACTIVE.value
    subscription.paused_from = subscription.paused_until = None
    session.commit()
    return subscription


def transfer(
    session: Session, actor: service.Actor, subscription_id: uuid.UUID, seat_id: uuid.UUID, now: dt.datetime
) -> Subscription:
    """Move the remaining days to another seat of the library, atomically (409 names clashing dates)."""
    subscription = get_subscription(session, actor, subscription_id)
    if subscription.status != SubscriptionStatus.ACTIVE:
        raise ApiError(409, "not_active", f"a {subscription.status} subscription cannot be transferred")
    library = service.load_library(session, subscription.library_id)
    seat = service._seat_of_library(session, seat_id, library)
    plan = session.get(Plan, subscription.plan_id) if subscription.plan_id else None
    if plan is None:
        raise ApiError(409, "plan_gone", "the subscription's plan no longer exists")
    if seat.id == subscription.seat_id:
        return subscription
    tz = timing.zone_of(library.timezone)
    remaining = [
        row for row in _rows(session, subscription) if row.status in ACTIVE_STATUSES and row.start > now
    ]
    savepoint = session.begin_nested()
    for row in remaining:
        row.status, row.cancelled_at, row.cancel_reason = BookingStatus.CANCELLED.value, now, "transferred"
    session.flush()
    subscription.seat_id = seat.id
    days = [timing.local_date(row.start, tz) for row in remaining]
    try:
        if days:
            _insert_days(
                session, library, _day_rows(subscription, library, plan, days, BookingStatus.CONFIRMED, now)
            )
    except ApiError:
        savepoint.rollback()
        raise
    savepoint.commit()
    session.commit()
    return subscription
