"""Student messages about money, queued in the payment's transaction: payment succeeded (and the
invoice is ready), payment failed, refund processed. Each names its fact (`payment:<id>`,
`refund:<payment id>:<refund id>`), so a retried webhook or the checkout callback racing the webhook
never notifies twice."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from cloud.billing.config import BillingSettings
from cloud.billing.notify import notify_student
from cloud.booking.models import Booking
from cloud.notifications.kinds import EventKind
from cloud.payments import invoicing
from cloud.payments.models import Payment


def _send(
    session: Session,
    payment: Payment,
    kind: EventKind,
    subject: str,
    context: dict[str, Any],
    now: dt.datetime,
    also: Sequence[tuple[EventKind, dict[str, Any]]] = (),
) -> int:
    booking = session.get(Booking, payment.booking_id)
    if booking is None:
        return 0
    return notify_student(
        session, kind, subject, also=also, user_id=payment.user_id, tenant_id=payment.tenant_id,
        library_id=booking.library_id, context=context, now=now,
    )  # fmt: skip


def _url(path: str) -> str:
    return f"{BillingSettings().app_url.rstrip('/')}{path}"


def payment_captured(session: Session, payment: Payment, now: dt.datetime) -> None:
    money = {"amount_minor": payment.amount_minor, "currency": payment.currency}
    reference = payment.provider_payment_id or payment.order_ref
    context = {**money, "paid_at": payment.captured_at or now, "payment_ref": reference}
    invoice: list[tuple[EventKind, dict[str, Any]]] = []
    if payment.invoice_number and invoicing.supplier_configured(session, payment.tenant_id):
        link = _url(f"/api/v1/payments/{payment.id}/invoice.pdf")
        invoice.append(
            (EventKind.INVOICE_READY, {**money, "invoice_number": payment.invoice_number, "action_url": link})
        )
    _send(session, payment, EventKind.PAYMENT_SUCCEEDED, f"payment:{payment.id}", context, now, invoice)


def payment_failed(session: Session, payment: Payment, now: dt.datetime) -> None:
    context = {
        "amount_minor": payment.amount_minor,
        "currency": payment.currency,
        "failure_reason": payment.failure_reason or "failed",
        "action_url": _url("/dues" if payment.due_id else "/bookings"),
    }
    _send(session, payment, EventKind.PAYMENT_FAILED, f"payment:{payment.id}", context, now)


def refund_processed(
    session: Session, payment: Payment, refund_id: str, amount: int, now: dt.datetime
) -> None:
    context = {
        "amount_minor": amount,
        "currency": payment.currency,
        "payment_ref": payment.provider_payment_id or payment.order_ref,
    }
    _send(session, payment, EventKind.REFUND_PROCESSED, f"refund:{payment.id}:{refund_id}", context, now)
