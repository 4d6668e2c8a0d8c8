"""Credit notes for refunds: one per refund of an invoiced payment, numbered by the tenant's own
gapless series (`CN-000001`), allocated like invoice numbers: an upsert on the tenant's counter row
holds its lock until commit, so concurrent refunds queue and a rolled-back one gives its number back.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from cloud.billing.models import CreditNote
from cloud.payments.models import Payment, PaymentRefund

CREDIT_NOTE_PREFIX = "CN-"


def allocate_credit_note_number(session: Session, tenant_id: uuid.UUID) -> str:
    number = session.execute(
        text(
            "INSERT INTO credit_note_counters AS c (tenant_id, last_number) VALUES (:tenant, 1) "
            "ON CONFLICT (tenant_id) DO UPDATE SET last_number = c.last_number + 1 RETURNING c.last_number"
        ),
        {"tenant": tenant_id},
    ).scalar_one()
    return f"{CREDIT_NOTE_PREFIX}{int(number):06d}"


def issue_credit_notes(session: Session, payment: Payment, now: dt.datetime) -> list[CreditNote]:
    """A credit note for every refund of the payment that has none yet (no commit).

    Only an invoiced payment gets them (a credit note names the invoice it reverses); a refund seen
    before its capture gets its note when the capture is applied.
    """
    if payment.invoice_number is None:
        return []
    session.flush()
    missing = session.scalars(
        select(PaymentRefund)
        .where(
            PaymentRefund.payment_id == payment.id,
            ~select(CreditNote.id).where(CreditNote.refund_id == PaymentRefund.id).exists(),
        )
        .order_by(PaymentRefund.created_at, PaymentRefund.id)
    ).all()
    notes = [
        CreditNote(
            tenant_id=payment.tenant_id,
            user_id=payment.user_id,
            payment_id=payment.id,
            refund_id=refund.id,
            number=allocate_credit_note_number(session, payment.tenant_id),
            amount_minor=refund.amount_minor,
            currency=payment.currency,
            issued_at=now,
        )
        for refund in missing
    ]
    session.add_all(notes)
    session.flush()
    return notes


def credit_notes_of(session: Session, payment_id: uuid.UUID) -> list[CreditNote]:
    return list(
        session.scalars(
            select(CreditNote).where(CreditNote.payment_id == payment_id).order_by(CreditNote.number)
        )
    )


def credit_note(session: Session, payment_id: uuid.UUID, number: str) -> CreditNote | None:
    return session.scalar(
        select(CreditNote).where(CreditNote.payment_id == payment_id, CreditNote.number == number)
    )
