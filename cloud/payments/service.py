"""The DB side of the payment flow: orders, webhook application, refunds, invoice numbers.

Plain functions taking a session (the router does the async gateway calls around them). Rules:
- the webhook is the source of truth; the client's verify call goes through the same `apply_event`;
- webhooks are applied at most once per (provider, event_id), in any order: a refund seen before its
  capture is kept and counted when the capture arrives; a failure after a capture changes nothing;
- an amount or currency that differs from the order flags the payment and confirms nothing;
- money paid for a hold that expired (or a booking cancelled meanwhile) is refunded in full
  automatically (we do not try to re-book: the seat may have been resold, and a refund is always right).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.billing import credit_notes, dues
from cloud.booking import service as booking_service
from cloud.booking.models import Booking, BookingStatus
from cloud.catalog.models import LibraryRecord
from cloud.errors import ApiError
from cloud.models_common import utcnow
from cloud.payments import payment_events
from cloud.payments.models import (
    Payment,
    PaymentRefund,
    PaymentStatus,
    WebhookEventRecord,
)
from cloud.payments.schemas import GatewayOrder, WebhookEvent, WebhookEventType

INVOICE_PREFIX = "INV-"
PAID_STATUSES = (PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)


@dataclass(frozen=True)
class RefundDue:
    """A refund the caller must send to the gateway after the transaction commits."""

    payment_id: uuid.UUID
    provider: str
    provider_payment_id: str
    amount_minor: int
    reason: str
    idempotency_key: str


@dataclass(frozen=True)
class EventOutcome:
    outcome: str  # applied | duplicate | ignored | unknown_order | flagged | stale | refund_due
    payment_id: uuid.UUID | None = None
    refund: RefundDue | None = None


def _error(status: int, code: str, message: str, details: object = None) -> ApiError:
    return ApiError(status, code, message, details)


# --- orders ---------------------------------------------------------------------------------------


def existing_order(session: Session, user_id: uuid.UUID, idempotency_key: str) -> Payment | None:
    return session.scalar(
        select(Payment).where(Payment.user_id == user_id, Payment.idempotency_key == idempotency_key)
    )


def payable_booking(session: Session, user_id: uuid.UUID, booking_id: uuid.UUID, now: dt.datetime) -> Booking:
    """The caller's own booking, still held and unpaid."""
    booking = session.get(Booking, booking_id)
    if booking is None or booking.user_id != user_id:
        raise _error(404, "not_found", "booking not found")
    if booking.status != BookingStatus.PENDING_PAYMENT:
        raise _error(409, "not_pending", f"a {booking.status} booking cannot be paid")
    if booking.hold_expires_at is not None and booking.hold_expires_at <= now:
        raise _error(409, "hold_expired", "the hold on this seat expired; book again")
    if booking.price_minor <= 0:
        raise _error(409, "nothing_to_pay", "this booking is free")
    return booking


def store_order(
    session: Session,
    booking: Booking,
    order: GatewayOrder,
    idempotency_key: str,
    due_id: uuid.UUID | None = None,
) -> Payment:
    """Insert the payment row; a concurrent request with the same key wins and is returned.

    `due_id`: a renewal order paying a subscription due (`booking` is then one of its day rows)."""
    payment = Payment(
        due_id=due_id,
        tenant_id=booking.tenant_id,
        user_id=booking.user_id,
        booking_id=booking.id,
        provider=order.provider,
        order_ref=order.order_ref,
        amount_minor=order.amount_minor,
        currency=order.currency,
        status=PaymentStatus.CREATED.value,
        captured_minor=0,
        idempotency_key=idempotency_key,
    )
    try:
        with session.begin_nested():
            session.add(payment)
    except IntegrityError:
        existing = existing_order(session, booking.user_id, idempotency_key)
        if existing is None:  # same gateway order stored under another key: the gateway deduped
            existing = session.scalar(
                select(Payment).where(
                    Payment.provider == order.provider, Payment.order_ref == order.order_ref
                )
            )
        if existing is None:
            raise
        payment = existing
    session.commit()
    return payment


# --- webhooks -------------------------------------------------------------------------------------


def _first_delivery(session: Session, event: WebhookEvent) -> bool:
    inserted = session.execute(
        insert(WebhookEventRecord)
        .values(provider=event.provider, event_id=event.event_id, event_type=event.provider_type)
        .on_conflict_do_nothing()
        .returning(WebhookEventRecord.event_id)
    ).first()
    return inserted is not None


def _mark_event(
    session: Session, event: WebhookEvent, outcome: EventOutcome, tenant: uuid.UUID | None
) -> None:
    record = session.get(WebhookEventRecord, (event.provider, event.event_id))
    if record is not None:
        record.outcome = outcome.outcome
        record.tenant_id = tenant


def apply_event(session: Session, event: WebhookEvent, now: dt.datetime) -> EventOutcome:
    """Apply an authentic event once. The session must be in platform scope; commits."""
    if not _first_delivery(session, event):
        session.rollback()
        return EventOutcome("duplicate")
    payment = _payment_of(session, event)
    outcome = _dispatch(session, event, payment, now)
    _mark_event(session, event, outcome, payment.tenant_id if payment else None)
    session.commit()
    return outcome


def _payment_of(session: Session, event: WebhookEvent) -> Payment | None:
    if event.type is WebhookEventType.IGNORED or not event.order_ref:
        return None
    return session.scalar(
        select(Payment)
        .where(Payment.provider == event.provider, Payment.order_ref == event.order_ref)
        .with_for_update()
    )


def _dispatch(
    session: Session, event: WebhookEvent, payment: Payment | None, now: dt.datetime
) -> EventOutcome:
    if event.type is WebhookEventType.IGNORED:
        return EventOutcome("ignored")
    if payment is None:
        return EventOutcome("unknown_order")
    if event.type is WebhookEventType.PAYMENT_SUCCEEDED:
        return _on_success(session, event, payment, now)
    if event.type is WebhookEventType.PAYMENT_FAILED:
        return _on_failure(session, event, payment, now)
    return _on_refund(session, event, payment, now)


def _on_failure(session: Session, event: WebhookEvent, payment: Payment, now: dt.datetime) -> EventOutcome:
    if payment.status != PaymentStatus.CREATED:
        return EventOutcome("stale", payment.id)  # e.g. a failed attempt reported after the capture
    payment.status = PaymentStatus.FAILED.value
    payment.failure_reason = (event.failure_reason or "failed")[:500]
    payment_events.payment_failed(session, payment, now)
    return EventOutcome("applied", payment.id)


def _on_success(session: Session, event: WebhookEvent, payment: Payment, now: dt.datetime) -> EventOutcome:
    if payment.status == PaymentStatus.FLAGGED:
        return EventOutcome("stale", payment.id)
    if payment.status in PAID_STATUSES:
        # a repeat (order.paid after payment.captured, or a retry after a failed refund)
        outcome = _confirm_or_refund(session, payment, now)
        return outcome if outcome.refund else EventOutcome("stale", payment.id)
    if event.amount_minor != payment.amount_minor or event.currency != payment.currency:
        payment.status = PaymentStatus.FLAGGED.value
        payment.provider_payment_id = event.payment_id
        payment.flag_reason = (
            f"paid {event.amount_minor} {event.currency}, order was {payment.amount_minor} {payment.currency}"
        )
        return EventOutcome("flagged", payment.id)
    payment.provider_payment_id = event.payment_id
    payment.captured_minor = payment.amount_minor
    payment.captured_at = now
    payment.status = _status_after_refunds(session, payment).value
    payment.invoice_number = allocate_invoice_number(session, payment.tenant_id)
    if payment.status != PaymentStatus.CAPTURED:  # refunds reported before the capture
        credit_notes.issue_credit_notes(session, payment, now)
    payment_events.payment_captured(session, payment, now)
    return _confirm_or_refund(session, payment, now)


def _confirm_or_refund(session: Session, payment: Payment, now: dt.datetime) -> EventOutcome:
    if payment.due_id is not None:
        return _settle_due(session, payment, now)
    booking = session.get(Booking, payment.booking_id, with_for_update=True)
    if booking is not None and _still_held(booking, now):
        booking_service.confirm_booking(session, booking.id, now)  # commits the capture with it
        return EventOutcome("applied", payment.id)
    if booking is not None and not _lost_before_payment(booking, payment):
        return EventOutcome("applied", payment.id)
    refundable = payment.captured_minor - refunded_total(session, payment.id)
    if refundable <= 0:
        return EventOutcome("applied", payment.id)
    return EventOutcome("refund_due", payment.id, _refund_due(payment, refundable, "hold_expired"))


def _settle_due(session: Session, payment: Payment, now: dt.datetime) -> EventOutcome:
    """A renewal order: the due is paid (and a suspended subscription reinstated), or it is refunded."""
    assert payment.due_id is not None
    if dues.settle_due(session, payment.due_id, payment.id, now):
        return EventOutcome("applied", payment.id)
    refundable = payment.captured_minor - refunded_total(session, payment.id)
    if refundable <= 0:
        return EventOutcome("applied", payment.id)
    return EventOutcome("refund_due", payment.id, _refund_due(payment, refundable, "due_not_renewable"))


def _still_held(booking: Booking, now: dt.datetime) -> bool:
    if booking.status != BookingStatus.PENDING_PAYMENT:
        return False
    return booking.hold_expires_at is None or booking.hold_expires_at > now


def _lost_before_payment(booking: Booking, payment: Payment) -> bool:
    """The money came for a seat we no longer hold: the hold ran out or it was cancelled unpaid.

    A booking cancelled AFTER the capture is not refunded here (the cancellation policy decides).
    """
    if booking.status == BookingStatus.PENDING_PAYMENT:
        return True  # still pending but the hold has passed
    if booking.status != BookingStatus.CANCELLED:
        return False
    cancelled_at, captured_at = booking.cancelled_at, payment.captured_at
    return cancelled_at is None or captured_at is None or cancelled_at <= captured_at


def _refund_due(payment: Payment, amount: int, reason: str) -> RefundDue:
    assert payment.provider_payment_id is not None
    return RefundDue(
        payment_id=payment.id,
        provider=payment.provider,
        provider_payment_id=payment.provider_payment_id,
        amount_minor=amount,
        reason=reason,
        idempotency_key=f"refund-{payment.id.hex}-{reason}"[:64],
    )


def _on_refund(session: Session, event: WebhookEvent, payment: Payment, now: dt.datetime) -> EventOutcome:
    if event.refund_id and event.refund_amount_minor:
        _insert_refund(session, payment, event.refund_id, event.refund_amount_minor, "gateway", now)
    if payment.status in PAID_STATUSES:
        payment.status = _status_after_refunds(session, payment).value
    return EventOutcome("applied", payment.id)


def forget_event(session: Session, provider: str, event_id: str) -> None:
    """Let the provider's retry of this event be applied again (its follow-up refund failed); commits."""
    record = session.get(WebhookEventRecord, (provider, event_id))
    if record is not None:
        session.delete(record)
    session.commit()


# --- refunds --------------------------------------------------------------------------------------


def refunded_total(session: Session, payment_id: uuid.UUID) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(PaymentRefund.amount_minor), 0)).where(
            PaymentRefund.payment_id == payment_id
        )
    )
    return int(total or 0)


def _status_after_refunds(session: Session, payment: Payment) -> PaymentStatus:
    session.flush()
    refunded = refunded_total(session, payment.id)
    if refunded <= 0:
        return PaymentStatus.CAPTURED
    return PaymentStatus.REFUNDED if refunded >= payment.amount_minor else PaymentStatus.PARTIALLY_REFUNDED


def _insert_refund(
    session: Session, payment: Payment, refund_id: str, amount: int, reason: str, now: dt.datetime
) -> None:
    """Store a refund once; the first time, its credit note and the student's message go with it."""
    inserted = session.execute(
        insert(PaymentRefund)
        .values(
            tenant_id=payment.tenant_id,
            user_id=payment.user_id,
            payment_id=payment.id,
            provider_refund_id=refund_id,
            amount_minor=amount,
            reason=reason[:500],
        )
        .on_conflict_do_nothing()
        .returning(PaymentRefund.id)
    ).first()
    if inserted is not None:
        credit_notes.issue_credit_notes(session, payment, now)
        payment_events.refund_processed(session, payment, refund_id, amount, now)


def plan_refund(session: Session, payment: Payment, amount_minor: int | None, reason: str) -> RefundDue:
    """Check a refund is possible; `None` refunds everything still refundable."""
    if payment.status not in (PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED):
        raise _error(409, "not_refundable", f"a {payment.status} payment cannot be refunded")
    refundable = payment.captured_minor - refunded_total(session, payment.id)
    amount = refundable if amount_minor is None else amount_minor
    if amount <= 0 or amount > refundable:
        raise _error(
            422,
            "invalid_refund_amount",
            "refund must be between 1 and the refundable amount",
            {"refundable_minor": refundable},
        )
    key = f"refund-{payment.id.hex}-{refunded_total(session, payment.id)}-{amount}"
    return RefundDue(payment.id, payment.provider, payment.provider_payment_id or "", amount, reason, key)


def record_refund(
    session: Session,
    payment_id: uuid.UUID,
    refund_id: str,
    amount: int,
    reason: str,
    now: dt.datetime | None = None,
) -> Payment:
    """Store a refund the gateway accepted (the webhook for it is then a no-op); commits."""
    payment = session.get(Payment, payment_id, with_for_update=True)
    if payment is None:
        raise _error(404, "not_found", "payment not found")
    _insert_refund(session, payment, refund_id, amount, reason, now or utcnow())
    if payment.status in PAID_STATUSES:
        payment.status = _status_after_refunds(session, payment).value
    session.commit()
    return payment


def cancellation_refund_minor(session: Session, booking: Booking, payment: Payment, now: dt.datetime) -> int:
    """Policy: cancelled before the library's cutoff (cancel_cutoff_minutes before the start) -> full
    refund of what is still refundable; later (only staff can cancel then) -> nothing automatic, staff
    refund by hand with a reason."""
    library = session.get(LibraryRecord, booking.library_id)
    cutoff_minutes = library.cancel_cutoff_minutes if library else 0
    if now > booking.start - dt.timedelta(minutes=cutoff_minutes):
        return 0
    if payment.status not in (PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED):
        return 0
    return max(payment.captured_minor - refunded_total(session, payment.id), 0)


def paid_payment_of_booking(session: Session, booking_id: uuid.UUID) -> Payment | None:
    return session.scalar(
        select(Payment)
        .where(Payment.booking_id == booking_id, Payment.status.in_([s.value for s in PAID_STATUSES]))
        .order_by(Payment.captured_at.desc())
        .limit(1)
    )


# --- reads and invoices ---------------------------------------------------------------------------


def get_payment(session: Session, payment_id: uuid.UUID) -> Payment:
    """A payment the session can see (RLS: the payer, staff of the tenant, platform)."""
    payment = session.get(Payment, payment_id)
    if payment is None:
        raise _error(404, "not_found", "payment not found")
    return payment


def allocate_invoice_number(session: Session, tenant_id: uuid.UUID) -> str:
    """Next number of the tenant's invoice series, in the caller's transaction.

    The upsert takes the counter row's lock until commit, so concurrent captures queue on it and a
    rolled-back transaction gives its number back: the series has no gaps and no duplicates.
    """
    number = session.execute(
        text(
            "INSERT INTO invoice_counters AS c (tenant_id, last_number) VALUES (:tenant, 1) "
            "ON CONFLICT (tenant_id) DO UPDATE SET last_number = c.last_number + 1 RETURNING c.last_number"
        ),
        {"tenant": tenant_id},
    ).scalar_one()
    return f"{INVOICE_PREFIX}{int(number):06d}"
