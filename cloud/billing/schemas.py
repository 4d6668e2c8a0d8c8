"""Billing API shapes (CONTRACTS.md)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel

from cloud.payments.schemas import Provider

DueFilter = Literal["upcoming", "due", "overdue", "suspended"]


class DueOut(BaseModel):
    subscription_id: uuid.UUID
    user_id: uuid.UUID
    student_name: str
    student_email: str
    library_id: uuid.UUID
    seat_label: str
    plan_name: str
    period_start: dt.date
    period_end: dt.date
    amount_minor: int
    currency: str
    due_on: dt.date
    status: DueFilter
    days_overdue: int
    payment_id: uuid.UUID | None


class RenewalOrderIn(BaseModel):
    provider: Provider


class CreditNoteOut(BaseModel):
    number: str
    payment_id: uuid.UUID
    amount_minor: int
    currency: str
    issued_at: dt.datetime
    pdf_url: str
