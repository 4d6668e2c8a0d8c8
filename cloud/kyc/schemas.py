"""Bodies of the KYC routes (document numbers only ever leave masked)."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class DocumentType(StrEnum):
    AADHAAR = "aadhaar"
    PAN = "pan"
    PASSPORT = "passport"
    DRIVING_LICENCE = "driving_licence"
    STUDENT_ID = "student_id"
    OTHER = "other"


class Decision(StrEnum):
    VERIFIED = "verified"
    REJECTED = "rejected"


class KycOut(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    tenant_id: uuid.UUID | None
    document_type: str
    document_number_masked: str
    content_type: str
    size_bytes: int
    status: str
    reason: str | None
    created_at: dt.datetime
    reviewed_at: dt.datetime | None


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Decision
    reason: str | None = Field(default=None, max_length=500)
