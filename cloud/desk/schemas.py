"""What the owner sees of sync conflicts."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, ConfigDict


class SyncConflictOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    library_id: uuid.UUID
    edge_device_id: uuid.UUID
    event_id: uuid.UUID
    receipt_number: str
    seat_id: uuid.UUID
    walkin_booking_id: uuid.UUID
    other_booking_id: uuid.UUID
    outcome: str
    moved_to_seat_id: uuid.UUID | None
    refund_payment_id: uuid.UUID | None
    refund_minor: int
    currency: str
    refund_status: str
    refund_error: str | None
    occurred_at: dt.datetime
    created_at: dt.datetime
