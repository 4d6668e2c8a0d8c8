"""Open dues as the console and the student page show them (CONTRACTS.md: tenant and own dues)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from cloud.billing.models import OPEN_DUE_STATUSES
from cloud.billing.schemas import DueOut
from cloud.booking import timing

_DUES = text(
    """
    SELECT d.subscription_id, d.user_id, d.tenant_id, d.library_id, d.period_start, d.period_end,
           d.amount_minor, d.currency, d.due_on, d.status, d.payment_id,
           coalesce(s.label, '') AS seat_label, coalesce(p.name, '') AS plan_name, l.timezone
    FROM subscription_dues d
    JOIN subscriptions sub ON sub.id = d.subscription_id
    JOIN libraries l ON l.id = d.library_id
    LEFT JOIN seats s ON s.id = sub.seat_id
    LEFT JOIN plans p ON p.id = sub.plan_id
    WHERE d.status = ANY(CAST(:statuses AS text[]))
      AND (CAST(:user AS uuid) IS NULL OR d.user_id = :user)
    ORDER BY d.due_on, d.period_start, d.subscription_id
    LIMIT 1000
    """
)
_CONTACT = text("SELECT email, full_name FROM notification_contact(:user, :tenant)")


def list_dues(
    session: Session, now: dt.datetime, *, status: str | None = None, user_id: uuid.UUID | None = None
) -> list[DueOut]:
    """Open dues the session may see (RLS: the tenant's, or the caller's own with `user_id`)."""
    statuses = [status] if status else [s.value for s in OPEN_DUE_STATUSES]
    rows = session.execute(_DUES, {"statuses": statuses, "user": user_id}).all()
    contacts: dict[uuid.UUID, tuple[str, str]] = {}
    for row in rows:
        if row.user_id not in contacts:
            contacts[row.user_id] = _contact(session, row.user_id, row.tenant_id)
    return [_due_out(row, contacts[row.user_id], now) for row in rows]


def _contact(session: Session, user_id: uuid.UUID, tenant_id: uuid.UUID) -> tuple[str, str]:
    found = session.execute(_CONTACT, {"user": user_id, "tenant": tenant_id}).first()
    if found is None:
        return "", ""
    email, full_name = found
    return email or "", full_name or ""


def _due_out(row: Any, contact: tuple[str, str], now: dt.datetime) -> DueOut:
    today = timing.local_date(now, timing.zone_of(row.timezone))
    email, name = contact
    return DueOut(
        subscription_id=row.subscription_id, user_id=row.user_id, student_name=name or email,
        student_email=email, library_id=row.library_id, seat_label=row.seat_label, plan_name=row.plan_name,
        period_start=row.period_start, period_end=row.period_end, amount_minor=row.amount_minor,
        currency=row.currency, due_on=row.due_on, status=row.status,
        days_overdue=max((today - row.due_on).days, 0), payment_id=row.payment_id,
    )  # fmt: skip
