"""Desk sales arriving by sync: record the cash/UPI payment, book the walk-in, resolve seat conflicts.

Runs inside the push transaction (device's tenant scope) through `cloud.fleet.hooks` event handlers,
so nothing here commits. Idempotent twice over: the push stores each event id once, and a sale is
known by (tenant, edge device, receipt number) — the same receipt under a new event id counts once.

Conflict rule (issue 6 §6): the person who checked in keeps the seat. A walk-in admitted at the desk
displaces an online booking that is not checked in: that booking moves to a free seat of the same
kind (zone and seat type) for its whole window, else it is cancelled and its gateway payment refunded
(sent after the push commits). If the online holder is already inside, the walk-in moves instead, or
— no seat free — is recorded cancelled and the desk hands the cash back.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.booking.models import ACTIVE_STATUSES, Booking, BookingStatus, half_open
from cloud.booking.service import EXCLUSION_VIOLATION, busy_ranges, insert_booking
from cloud.catalog.models import LibraryRecord, Plan, SeatRecord
from cloud.desk.models import ConflictOutcome, RefundStatus, SyncConflict
from cloud.errors import ApiError
from cloud.fleet.hooks import (
    EventAlreadyApplied,
    EventRejected,
    register_after_push,
    register_event_handler,
)
from cloud.fleet.service import DeviceKey
from cloud.identity.roles import Role
from cloud.models_common import utcnow
from cloud.notifications import outbox
from cloud.notifications.kinds import ChannelKind, EventKind
from cloud.notifications.planning import RecipientProfile, plan_rows
from cloud.payments import service as payments
from cloud.payments.models import Payment, PaymentStatus
from shared.sync import CashSalePayload, EdgeEvent, SalePayment, WalkinBookingPayload, walkin_booking_id
from shared.sync import EventKind as SyncKind

log = logging.getLogger(__name__)
DESK_PROVIDER = "desk"
CONFLICT_REASON = "seat_conflict"
BOOKING_KINDS = {"hourly": "hourly", "day_pass": "day_pass"}  # plan kind -> booking kind
STAFF_ROLES = (Role.LIBRARY_STAFF.value, Role.LIBRARY_OWNER.value)


def install() -> None:
    """Register the handlers of desk-sale events (idempotent)."""
    from cloud.desk.refunds import send_due_refunds

    register_event_handler(SyncKind.WALKIN_BOOKING.value, apply_walkin)
    register_event_handler(SyncKind.CASH_SALE.value, apply_cash_sale)
    register_after_push(send_due_refunds)


# --- handlers -------------------------------------------------------------------------------------


def apply_walkin(session: Session, device: DeviceKey, event: EdgeEvent) -> None:
    sale = WalkinBookingPayload.model_validate(event.payload)
    if receipt_payment(session, device, sale.receipt_number) is not None:
        return  # the same sale under another event id: counted once
    seat, plan = _sale_targets(session, device, sale)
    _check_staff(session, device.tenant_id, sale.staff_user_id)
    walkin = _walkin(device, sale, seat, plan)
    now = utcnow()
    if not insert_booking(session, walkin):
        _resolve(session, device, event, sale, walkin, seat, now)
    _record_payment(session, device, sale, walkin.id, walkin.user_id)


def apply_cash_sale(session: Session, device: DeviceKey, event: EdgeEvent) -> None:
    """Cash/UPI taken at the desk for an existing booking: recorded; a held booking is confirmed."""
    sale = CashSalePayload.model_validate(event.payload)
    if receipt_payment(session, device, sale.receipt_number) is not None:
        return
    _check_staff(session, device.tenant_id, sale.staff_user_id)
    booking = session.get(Booking, sale.booking_id, with_for_update=True)
    if booking is None or booking.library_id != device.library_id:
        raise EventRejected("unknown booking for this library")
    if booking.status == BookingStatus.PENDING_PAYMENT:
        booking.status = BookingStatus.CONFIRMED.value
        booking.hold_expires_at = None
        outbox.enqueue_booking_event(session, booking, EventKind.BOOKING_CONFIRMED, utcnow())
    _record_payment(session, device, sale, booking.id, booking.user_id)


def receipt_payment(session: Session, device: DeviceKey, receipt_number: str) -> Payment | None:
    return session.scalar(
        select(Payment).where(
            Payment.tenant_id == device.tenant_id,
            Payment.edge_device_id == device.device_id,
            Payment.receipt_number == receipt_number,
        )
    )


def _sale_targets(session: Session, device: DeviceKey, sale: WalkinBookingPayload) -> tuple[SeatRecord, Plan]:
    seat = session.get(SeatRecord, sale.seat_id)
    if seat is None or seat.library_id != device.library_id:
        raise EventRejected("unknown seat for this library")
    plan = session.get(Plan, sale.plan_id)
    if plan is None or plan.library_id != device.library_id:
        raise EventRejected("unknown plan for this library")
    if plan.kind not in BOOKING_KINDS:
        raise EventRejected(f"a {plan.kind} plan is not sold as a walk-in")
    return seat, plan


def _check_staff(session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID) -> None:
    member = session.execute(
        text(
            "SELECT 1 FROM memberships WHERE tenant_id = :tenant AND user_id = :user"
            " AND role = ANY(:roles) AND status = 'active'"
        ),
        {"tenant": tenant_id, "user": user_id, "roles": list(STAFF_ROLES)},
    ).first()
    if member is None:
        raise EventRejected("the selling staff member is not staff of this library")


def _walkin(device: DeviceKey, sale: WalkinBookingPayload, seat: SeatRecord, plan: Plan) -> Booking:
    inside = sale.checked_in_at is not None
    return Booking(
        id=walkin_booking_id(device.device_id, sale.receipt_number),
        tenant_id=device.tenant_id,
        library_id=device.library_id,
        seat_id=seat.id,
        user_id=sale.staff_user_id,  # a walk-in has no account: the booking is the seller's, on their behalf
        plan_id=plan.id,
        kind=BOOKING_KINDS[plan.kind],
        status=(BookingStatus.CHECKED_IN if inside else BookingStatus.CONFIRMED).value,
        during=half_open(sale.start, sale.end),
        price_minor=sale.amount_minor,
        currency=sale.currency,
        checked_in_at=sale.checked_in_at,
        created_by=sale.staff_user_id,
    )


def _record_payment(
    session: Session, device: DeviceKey, sale: SalePayment, booking_id: uuid.UUID, user_id: uuid.UUID
) -> Payment:
    payment = Payment(
        tenant_id=device.tenant_id,
        user_id=user_id,
        booking_id=booking_id,
        provider=DESK_PROVIDER,
        order_ref=f"{device.device_id}:{sale.receipt_number}",
        provider_payment_id=sale.upi_ref,
        amount_minor=sale.amount_minor,
        currency=sale.currency,
        status=PaymentStatus.CAPTURED.value,
        captured_minor=sale.amount_minor,
        idempotency_key=f"desk:{device.device_id}:{sale.receipt_number}",
        invoice_number=payments.allocate_invoice_number(session, device.tenant_id),
        captured_at=sale.sold_at,
        method=sale.method.value,
        receipt_number=sale.receipt_number,
        recorded_by=sale.staff_user_id,
        edge_device_id=device.device_id,
        upi_ref=sale.upi_ref,
        customer_name=sale.customer_name or None,
        customer_phone=sale.customer_phone,
    )
    try:
        with session.begin_nested():
            session.add(payment)
    except IntegrityError as exc:
        if "payments_desk_receipt_unique" in str(exc.orig):
            raise EventAlreadyApplied(sale.receipt_number) from exc  # a concurrent push recorded it
        raise
    return payment


# --- conflicts ------------------------------------------------------------------------------------


def _rivals(session: Session, walkin: Booking) -> list[Booking]:
    return list(
        session.scalars(
            select(Booking)
            .where(
                Booking.seat_id == walkin.seat_id,
                Booking.status.in_([status.value for status in ACTIVE_STATUSES]),
                Booking.during.overlaps(walkin.during),
            )
            .order_by(Booking.created_at)
            .with_for_update()
        )
    )


def _resolve(
    session: Session,
    device: DeviceKey,
    event: EdgeEvent,
    sale: WalkinBookingPayload,
    walkin: Booking,
    seat: SeatRecord,
    now: dt.datetime,
) -> None:
    rivals = _rivals(session, walkin)
    inside = [rival for rival in rivals if rival.status == BookingStatus.CHECKED_IN]
    if walkin.status == BookingStatus.CHECKED_IN and not inside:
        conflicts = [_displace(session, rival, seat, now) for rival in rivals]
        if not insert_booking(session, walkin):
            raise EventRejected("the seat is still taken after resolving the conflict")
    else:
        conflicts = [_seat_walkin_elsewhere(session, walkin, seat, now, (inside or rivals)[0])]
    library = session.get(LibraryRecord, device.library_id)
    for fields in conflicts:
        conflict = SyncConflict(
            tenant_id=device.tenant_id, library_id=device.library_id, edge_device_id=device.device_id,
            event_id=event.id, receipt_number=sale.receipt_number, seat_id=seat.id,
            walkin_booking_id=walkin.id, currency=sale.currency, occurred_at=event.occurred_at, **fields,
        )  # fmt: skip
        session.add(conflict)
        session.flush()
        _notify_owners(session, conflict, library, seat, now)


def _displace(session: Session, rival: Booking, seat: SeatRecord, now: dt.datetime) -> dict[str, Any]:
    """Move the online booking to a free seat of the same kind, else cancel it (refund planned)."""
    for candidate in free_seats_like(session, seat, rival.start, rival.end):
        if _move(session, rival, candidate.id):
            outbox.enqueue_booking_event(session, rival, EventKind.BOOKING_MODIFIED, now)
            return {"other_booking_id": rival.id, "outcome": ConflictOutcome.MOVED.value,
                    "moved_to_seat_id": candidate.id}  # fmt: skip
    rival.status = BookingStatus.CANCELLED.value
    rival.cancelled_at = now
    rival.cancel_reason = CONFLICT_REASON
    rival.hold_expires_at = None
    outbox.enqueue_booking_event(session, rival, EventKind.BOOKING_CANCELLED, now)
    return {
        "other_booking_id": rival.id,
        "outcome": ConflictOutcome.CANCELLED.value,
        **_planned_refund(session, rival),
    }


def _seat_walkin_elsewhere(
    session: Session, walkin: Booking, seat: SeatRecord, now: dt.datetime, keeper: Booking
) -> dict[str, Any]:
    """The online holder is inside: the walk-in moves, or is recorded cancelled (cash handed back)."""
    for candidate in free_seats_like(session, seat, walkin.start, walkin.end):
        walkin.seat_id = candidate.id
        if insert_booking(session, walkin):
            return {"other_booking_id": keeper.id, "outcome": ConflictOutcome.WALKIN_MOVED.value,
                    "moved_to_seat_id": candidate.id}  # fmt: skip
    walkin.seat_id = seat.id
    walkin.status = BookingStatus.CANCELLED.value
    walkin.cancelled_at = now
    walkin.cancel_reason = CONFLICT_REASON
    if not insert_booking(session, walkin):
        raise EventRejected("the walk-in could not be recorded")
    return {"other_booking_id": keeper.id, "outcome": ConflictOutcome.WALKIN_UNSEATED.value,
            "refund_minor": walkin.price_minor, "refund_status": RefundStatus.MANUAL.value}  # fmt: skip


def free_seats_like(
    session: Session, seat: SeatRecord, start: dt.datetime, end: dt.datetime
) -> list[SeatRecord]:
    """Active seats of the same zone and seat type as `seat`, free for all of [start, end)."""
    zone = SeatRecord.zone_id.is_(None) if seat.zone_id is None else SeatRecord.zone_id == seat.zone_id
    candidates = session.scalars(
        select(SeatRecord)
        .where(
            SeatRecord.library_id == seat.library_id,
            SeatRecord.status == "active",
            SeatRecord.seat_type == seat.seat_type,
            SeatRecord.id != seat.id,
            zone,
        )
        .order_by(SeatRecord.label)
    )
    busy = busy_ranges(session, seat.library_id, start, end)
    return [candidate for candidate in candidates if candidate.id not in busy]


def _move(session: Session, booking: Booking, seat_id: uuid.UUID) -> bool:
    try:
        with session.begin_nested():
            booking.seat_id = seat_id
            booking.pass_id = None  # the old pass names the old seat: the trigger revokes it
            session.flush()
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) != EXCLUSION_VIOLATION:
            raise
        return False
    return True


def _planned_refund(session: Session, booking: Booking) -> dict[str, Any]:
    payment = payments.paid_payment_of_booking(session, booking.id)
    if payment is None:
        return {}
    if payment.provider == DESK_PROVIDER:
        refundable = payment.captured_minor - payments.refunded_total(session, payment.id)
        return {"refund_payment_id": payment.id, "refund_minor": refundable,
                "refund_status": RefundStatus.MANUAL.value}  # fmt: skip
    try:
        due = payments.plan_refund(session, payment, None, CONFLICT_REASON)
    except ApiError:
        return {}  # nothing left to refund
    from cloud.desk.refunds import refund_planned  # refunds imports the payments router

    refund_planned(session, booking.tenant_id)
    return {"refund_payment_id": payment.id, "refund_minor": due.amount_minor,
            "refund_status": RefundStatus.DUE.value}  # fmt: skip


# --- owner notification ---------------------------------------------------------------------------


def _owners(session: Session, tenant_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
    rows = session.execute(
        text(
            "SELECT u.id, u.email FROM memberships m JOIN users u ON u.id = m.user_id"
            " WHERE m.tenant_id = :tenant AND m.role = :role AND m.status = 'active'"
        ),
        {"tenant": tenant_id, "role": Role.LIBRARY_OWNER.value},
    )
    return [(row.id, row.email) for row in rows]


def _notify_owners(
    session: Session,
    conflict: SyncConflict,
    library: LibraryRecord | None,
    seat: SeatRecord,
    now: dt.datetime,
) -> None:
    other = session.get(Booking, conflict.other_booking_id)
    if library is None or other is None:
        return
    context = {
        "library_name": library.name,
        "seat_label": seat.label,
        "receipt_number": conflict.receipt_number,
        "booking_ref": str(other.id)[:8].upper(),
        "starts_at": other.start,
    }
    rows = []
    for user_id, email in _owners(session, conflict.tenant_id):
        rows += plan_rows(
            EventKind.SEAT_CONFLICT, f"sync_conflict:{conflict.id}",
            RecipientProfile(user_id=user_id, email=email), context,
            tenant_id=conflict.tenant_id, library_id=library.id, library_tz=library.timezone, now=now,
            channels=(ChannelKind.EMAIL, ChannelKind.CONSOLE),
        )  # fmt: skip
    outbox.enqueue(session, rows)


# --- reads ----------------------------------------------------------------------------------------


def list_conflicts(session: Session, tenant_id: uuid.UUID, limit: int) -> list[SyncConflict]:
    return list(
        session.scalars(
            select(SyncConflict)
            .where(SyncConflict.tenant_id == tenant_id)
            .order_by(SyncConflict.created_at.desc())
            .limit(limit)
        )
    )
