"""Monthly dues: renewal ahead of each period, reminders, suspension after the grace period, and
settlement (reinstatement) when the due is paid.

Lifecycle of a due (dates in the library's zone; `due_on` = the first day of the period):
- `renewal_days_ahead` before the period the due is created (`upcoming`) together with the period's
  day rows, `confirmed` (days someone else booked meanwhile are skipped and the price is prorated);
- from `reminder_days_before` the student is reminded; on `due_on` it is `due`; after it `overdue`;
- from `due_on + grace_days`, still unpaid, it is `suspended`: the subscription's future day rows
  are cancelled (the revocation trigger puts their passes on the edge's revocation list) and the
  seat's shift is free for others;
- paid while open: `paid`; paid while suspended: the remaining days are re-booked on the same seat,
  or, if someone took it meanwhile, on the first other active seat of the same type free for all of
  them (label order); if none is free the payment is refunded in full and the due `cancelled`.
Every step is idempotent (the job runs about once a minute; reminders are deduplicated twice: by
`last_notice` and by the outbox's dedupe key).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from cloud.billing.config import BillingSettings
from cloud.billing.models import OPEN_DUE_STATUSES, DueStatus, SubscriptionDue
from cloud.billing.notify import notify_student
from cloud.booking import service as booking_service
from cloud.booking import subscriptions, timing
from cloud.booking.models import (
    ACTIVE_STATUSES,
    Booking,
    BookingStatus,
    Subscription,
    SubscriptionStatus,
)
from cloud.catalog.models import LibraryRecord, Plan, SeatRecord
from cloud.errors import ApiError
from cloud.notifications.kinds import EventKind

_SKIP_LOCKED = {"skip_locked": True}
SUSPENDED = "suspended"  # subscription status while its due is unpaid past the grace period
NOTICES: dict[DueStatus, EventKind] = {
    DueStatus.UPCOMING: EventKind.DUES_REMINDER_BEFORE,
    DueStatus.DUE: EventKind.DUES_REMINDER_DUE,
    DueStatus.OVERDUE: EventKind.DUES_OVERDUE,
    DueStatus.SUSPENDED: EventKind.SUSPENSION,
}


@dataclass(frozen=True)
class DuesReport:
    renewals: int
    notices: int
    suspended: int
    released: tuple[booking_service.Released, ...]


def local_today(library: LibraryRecord, now: dt.datetime) -> dt.date:
    return timing.local_date(now, timing.zone_of(library.timezone))


def status_on(due: SubscriptionDue, today: dt.date, grace_days: int) -> DueStatus:
    """What an unpaid due is on `today`."""
    if today < due.due_on:
        return DueStatus.UPCOMING
    if today == due.due_on:
        return DueStatus.DUE
    if today < due.due_on + dt.timedelta(days=grace_days):
        return DueStatus.OVERDUE
    return DueStatus.SUSPENDED


def run_dues(session: Session, now: dt.datetime, settings: BillingSettings) -> DuesReport:
    """One pass: create renewals, advance open dues; platform scope; commits per subscription."""
    renewals = sum(
        create_renewal(session, sub_id, now) is not None for sub_id in renewable(session, now, settings)
    )
    notices = suspended = 0
    released: list[booking_service.Released] = []
    for due_id in advanceable(session):
        outcome = advance_due(session, due_id, now, settings)
        notices += outcome.notices
        suspended += outcome.suspended
        released += outcome.released
    return DuesReport(renewals, notices, suspended, tuple(released))


_RENEWABLE = text(
    """
    SELECT s.id FROM subscriptions s JOIN libraries l ON l.id = s.library_id
    WHERE s.status = 'active'
      AND s.end_date - CAST(:ahead AS integer)
          <= CAST(CAST(:now AS timestamptz) AT TIME ZONE l.timezone AS date)
      AND NOT EXISTS (SELECT 1 FROM subscription_dues d
                      WHERE d.subscription_id = s.id AND d.period_start = s.end_date)
    ORDER BY s.end_date
    """
)


def renewable(session: Session, now: dt.datetime, settings: BillingSettings) -> list[uuid.UUID]:
    params = {"now": now, "ahead": settings.renewal_days_ahead}
    return [row[0] for row in session.execute(_RENEWABLE, params)]


def _period_days(
    library: LibraryRecord, plan: Plan, start: dt.date, end: dt.date, now: dt.datetime
) -> list[dt.date]:
    days = [start + dt.timedelta(days=n) for n in range((end - start).days)]
    return [day for day in days if subscriptions.shift_range(library, plan, day)[1] > now]


def create_renewal(session: Session, subscription_id: uuid.UUID, now: dt.datetime) -> SubscriptionDue | None:
    """The next period's due and day rows; None if it exists already or the subscription moved on."""
    sub = session.get(
        Subscription, subscription_id, with_for_update={"skip_locked": True}, populate_existing=True
    )
    if sub is None or sub.status != SubscriptionStatus.ACTIVE or sub.plan_id is None:
        session.rollback()
        return None
    library = booking_service.load_library(session, sub.library_id)
    plan = session.get(Plan, sub.plan_id)
    assert plan is not None
    start, end = sub.end_date, subscriptions.one_month_later(sub.end_date)
    due = _insert_due(session, sub, start, end, sub.price_minor)
    if due is None:
        session.rollback()
        return None
    days = _period_days(library, plan, start, end, now)
    rows = subscriptions._day_rows(sub, library, plan, days, BookingStatus.CONFIRMED.value, now)
    kept = sum(booking_service.insert_booking(session, row) for row in rows)
    total = (end - start).days
    due.amount_minor = sub.price_minor * kept // total if total else 0
    if kept == 0:
        due.status = DueStatus.CANCELLED.value  # the seat is taken all period: nothing to renew
    elif due.amount_minor == 0:
        due.status, due.paid_at = DueStatus.PAID.value, now
    if kept:
        sub.end_date = end
    session.commit()
    return due


def _insert_due(
    session: Session, sub: Subscription, start: dt.date, end: dt.date, amount: int
) -> SubscriptionDue | None:
    inserted = session.execute(
        insert(SubscriptionDue)
        .values(
            tenant_id=sub.tenant_id,
            library_id=sub.library_id,
            subscription_id=sub.id,
            user_id=sub.user_id,
            period_start=start,
            period_end=end,
            amount_minor=amount,
            currency=sub.currency,
            due_on=start,
            status=DueStatus.UPCOMING.value,
        )
        .on_conflict_do_nothing(index_elements=["subscription_id", "period_start"])
        .returning(SubscriptionDue.id)
    ).first()
    return None if inserted is None else session.get(SubscriptionDue, inserted[0])


def advanceable(session: Session) -> list[uuid.UUID]:
    open_unpaid = (DueStatus.UPCOMING.value, DueStatus.DUE.value, DueStatus.OVERDUE.value)
    return list(
        session.scalars(
            select(SubscriptionDue.id)
            .where(SubscriptionDue.status.in_(open_unpaid))
            .order_by(SubscriptionDue.due_on)
        )
    )


@dataclass(frozen=True)
class _Advance:
    notices: int = 0
    suspended: int = 0
    released: tuple[booking_service.Released, ...] = ()


def advance_due(session: Session, due_id: uuid.UUID, now: dt.datetime, settings: BillingSettings) -> _Advance:
    """Move one unpaid due to today's status, queue its reminder, suspend if its grace ran out."""
    due = session.get(SubscriptionDue, due_id, with_for_update=_SKIP_LOCKED, populate_existing=True)
    open_unpaid = (DueStatus.UPCOMING, DueStatus.DUE, DueStatus.OVERDUE)
    if due is None or due.status not in open_unpaid:
        session.rollback()
        return _Advance()
    sub = session.get(Subscription, due.subscription_id)
    if sub is None or sub.status in (SubscriptionStatus.EXPIRED, SubscriptionStatus.CANCELLED):
        due.status = DueStatus.CANCELLED.value  # e.g. a first period whose hold ran out unpaid
        session.commit()
        return _Advance()
    if sub.status == SubscriptionStatus.PENDING_PAYMENT:
        session.rollback()  # held for minutes only: the hold expiry decides, not reminders
        return _Advance()
    library = booking_service.load_library(session, due.library_id)
    today = local_today(library, now)
    target = status_on(due, today, settings.grace_days)
    released: tuple[booking_service.Released, ...] = ()
    if target is DueStatus.SUSPENDED:
        released = suspend(session, due, now)
    due.status = target.value
    notices = 0
    reminding = target is not DueStatus.UPCOMING or today >= due.due_on - dt.timedelta(
        days=settings.reminder_days_before
    )
    if reminding and due.last_notice != NOTICES[target].value:
        notices = _notify(session, due, NOTICES[target], today, now, settings)
        due.last_notice = NOTICES[target].value
    session.commit()
    return _Advance(notices, int(target is DueStatus.SUSPENDED), released)


def _notify(
    session: Session,
    due: SubscriptionDue,
    kind: EventKind,
    today: dt.date,
    now: dt.datetime,
    settings: BillingSettings,
) -> int:
    context: dict[str, Any] = {
        "amount_minor": due.amount_minor,
        "currency": due.currency,
        "action_url": f"{settings.app_url.rstrip('/')}/dues",
    }
    if kind is EventKind.SUSPENSION:
        context["suspended_at"] = now
    else:
        context["due_on"] = due.due_on
    if kind is EventKind.DUES_OVERDUE:
        context["days_overdue"] = (today - due.due_on).days
    return notify_student(
        session, kind, f"due:{due.id}", user_id=due.user_id, tenant_id=due.tenant_id,
        library_id=due.library_id, context=context, now=now,
    )  # fmt: skip


def suspend(session: Session, due: SubscriptionDue, now: dt.datetime) -> tuple[booking_service.Released, ...]:
    """Cancel the subscription's day rows not yet over (passes revoked by trigger); no commit."""
    sub = session.get(Subscription, due.subscription_id, with_for_update=True, populate_existing=True)
    assert sub is not None
    rows = session.scalars(
        select(Booking).where(
            Booking.subscription_id == sub.id,
            Booking.status.in_([s.value for s in ACTIVE_STATUSES]),
            func.upper(Booking.during) > now,
        )
    ).all()
    for row in rows:
        row.status, row.cancelled_at, row.cancel_reason = BookingStatus.CANCELLED.value, now, SUSPENDED
    if sub.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAUSED):
        sub.status = SUSPENDED
    due.suspended_at = now
    return tuple(booking_service.Released(row.id, row.library_id) for row in rows)


# --- payment --------------------------------------------------------------------------------------


def open_due(session: Session, subscription_id: uuid.UUID) -> SubscriptionDue | None:
    """The oldest unpaid due of a subscription."""
    return session.scalar(
        select(SubscriptionDue)
        .where(
            SubscriptionDue.subscription_id == subscription_id,
            SubscriptionDue.status.in_([s.value for s in OPEN_DUE_STATUSES]),
        )
        .order_by(SubscriptionDue.period_start)
        .limit(1)
    )


def payable_due(session: Session, sub: Subscription, now: dt.datetime) -> SubscriptionDue:
    """What a renewal order pays: the oldest open due, or the first period of an unpaid subscription."""
    due = open_due(session, sub.id)
    if sub.status == SubscriptionStatus.PENDING_PAYMENT and _hold_expired(session, sub, now):
        raise ApiError(409, "hold_expired", "the hold on this seat expired; subscribe again")
    if due is None and sub.status == SubscriptionStatus.PENDING_PAYMENT:
        due = _insert_due(session, sub, sub.start_date, sub.end_date, sub.price_minor)
        if due is not None:
            due.status = DueStatus.DUE.value
            session.flush()
        else:
            due = open_due(session, sub.id)
    if due is None:
        raise ApiError(409, "nothing_due", "this subscription has nothing to pay now")
    if due.amount_minor <= 0:
        raise ApiError(409, "nothing_to_pay", "this due is free")
    return due


def _hold_expired(session: Session, sub: Subscription, now: dt.datetime) -> bool:
    first_hold = session.scalar(
        select(func.min(Booking.hold_expires_at)).where(
            Booking.subscription_id == sub.id, Booking.status == BookingStatus.PENDING_PAYMENT
        )
    )
    return first_hold is None or first_hold <= now


def booking_of_due(session: Session, due: SubscriptionDue) -> Booking:
    """The day row a payment row points at (payments.booking_id): the subscription's latest day,
    which belongs to the due's period (renewals extend the subscription), whatever its status."""
    row = session.scalar(
        select(Booking)
        .where(Booking.subscription_id == due.subscription_id)
        .order_by(func.lower(Booking.during).desc())
        .limit(1)
    )
    if row is None:
        raise ApiError(409, "nothing_due", "this subscription has no days to pay for")
    return row


def settle_due(session: Session, due_id: uuid.UUID, payment_id: uuid.UUID, now: dt.datetime) -> bool:
    """A captured payment for a due (no commit). False: the money cannot buy anything; refund it."""
    due = session.get(SubscriptionDue, due_id, with_for_update=True, populate_existing=True)
    sub = (
        session.get(Subscription, due.subscription_id, with_for_update=True, populate_existing=True)
        if due
        else None
    )
    if due is None or sub is None:
        return False
    if due.status == DueStatus.PAID:
        return due.payment_id == payment_id  # a second payment of a paid due goes back
    if due.status == DueStatus.CANCELLED:
        return False
    if sub.status == SubscriptionStatus.PENDING_PAYMENT:
        kept = _confirm_first_period(session, sub, now)
    elif due.status == DueStatus.SUSPENDED:
        kept = reinstate(session, due, sub, now)
    else:
        kept = sub.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAUSED)
    if not kept:
        due.status = DueStatus.CANCELLED.value
        return False
    due.status, due.paid_at, due.payment_id = DueStatus.PAID.value, now, payment_id
    return True


def _confirm_first_period(session: Session, sub: Subscription, now: dt.datetime) -> bool:
    rows = session.scalars(
        select(Booking).where(
            Booking.subscription_id == sub.id, Booking.status == BookingStatus.PENDING_PAYMENT
        )
    ).all()
    if not rows or any(r.hold_expires_at is not None and r.hold_expires_at <= now for r in rows):
        return False
    for row in rows:
        row.status, row.hold_expires_at = BookingStatus.CONFIRMED.value, None
    sub.status = SubscriptionStatus.ACTIVE.value
    return True


def reinstate(session: Session, due: SubscriptionDue, sub: Subscription, now: dt.datetime) -> bool:
    """Re-book the period's remaining days: same seat, else another free seat of the same type."""
    library = booking_service.load_library(session, sub.library_id)
    plan = session.get(Plan, sub.plan_id) if sub.plan_id else None
    if plan is None:
        return False
    start = max(due.period_start, local_today(library, now))
    held = _active_days(session, sub, library)  # days not cancelled by the suspension (already over)
    days = [day for day in _period_days(library, plan, start, due.period_end, now) if day not in held]
    for seat_id in _seats_to_try(session, sub):
        sub.seat_id = seat_id
        rows = subscriptions._day_rows(sub, library, plan, days, BookingStatus.CONFIRMED.value, now)
        try:
            if rows:
                subscriptions._insert_days(session, library, rows)
        except ApiError:
            continue
        sub.status = SubscriptionStatus.ACTIVE.value
        return True
    sub.status = SubscriptionStatus.CANCELLED.value
    return False


def _active_days(session: Session, sub: Subscription, library: LibraryRecord) -> set[dt.date]:
    tz = timing.zone_of(library.timezone)
    rows = session.scalars(
        select(Booking).where(
            Booking.subscription_id == sub.id, Booking.status.in_([s.value for s in ACTIVE_STATUSES])
        )
    )
    return {timing.local_date(row.start, tz) for row in rows}


def _seats_to_try(session: Session, sub: Subscription) -> list[uuid.UUID]:
    own = session.get(SeatRecord, sub.seat_id)
    others = session.scalars(
        select(SeatRecord.id)
        .where(
            SeatRecord.library_id == sub.library_id,
            SeatRecord.status == "active",
            SeatRecord.id != sub.seat_id,
            SeatRecord.seat_type == (own.seat_type if own else "open_desk"),
        )
        .order_by(SeatRecord.label)
    ).all()
    return [sub.seat_id, *others]


def record_order(session: Session, due_id: uuid.UUID, payment_id: uuid.UUID) -> None:
    """The due's latest payment order (shown in the dues lists); commits."""
    due = session.get(SubscriptionDue, due_id, with_for_update=True, populate_existing=True)
    if due is not None and due.status != DueStatus.PAID:
        due.payment_id = payment_id
    session.commit()
