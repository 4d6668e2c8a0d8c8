"""Shapes the outbox will store and hand around (no tables here: the migration owner adds them).

`OutboxRow` is one message for one recipient on one channel, written in the same transaction as the
business change that causes it. Suggested table `notification_outbox` mirrors it field by field
(see the notifications report for types and indexes).
"""

from __future__ import annotations

import enum
import hashlib
import uuid
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field

from cloud.notifications.kinds import ChannelKind, EventKind, Language


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"  # due at next_attempt_at (also used for deferred and retrying rows)
    SENT = "sent"
    SUPPRESSED = "suppressed"  # preferences or expiry said no; kept for the audit trail
    DEAD = "dead"  # permanent failure or too many attempts; last_error says why


class OutboxRow(BaseModel):
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    tenant_id: uuid.UUID
    library_id: uuid.UUID | None = None
    recipient_user_id: uuid.UUID | None = None  # None for addresses without an account (staff lists)
    kind: EventKind
    channel: ChannelKind
    recipient: str  # normalized: email, E.164 phone or device token
    language: Language = Language.ENGLISH
    library_tz: str = "Asia/Kolkata"
    context: dict[str, Any] = Field(default_factory=dict)  # JSON; times as ISO 8601 with offset
    dedupe_key: str = Field(min_length=1, max_length=200)  # unique per tenant
    status: OutboxStatus = OutboxStatus.PENDING
    attempts: int = Field(0, ge=0)
    next_attempt_at: AwareDatetime
    expires_at: AwareDatetime | None = None
    last_error: str | None = None
    provider_message_id: str | None = None
    created_at: AwareDatetime
    sent_at: AwareDatetime | None = None


def dedupe_key(kind: EventKind, subject_id: str, channel: ChannelKind, recipient: str) -> str:
    """Same business event, channel and recipient -> same key, so a replayed event never sends twice.

    `subject_id` names the business fact (booking id, payment id, alert id, announcement id + run).
    """
    digest = hashlib.sha256(recipient.encode()).hexdigest()[:16]
    return f"{kind.value}:{subject_id}:{channel.value}:{digest}"


class OutboxUpdate(BaseModel):
    """What the worker writes back to the claimed row after one delivery attempt."""

    status: OutboxStatus
    attempts: int
    next_attempt_at: AwareDatetime | None = None
    last_error: str | None = None
    provider_message_id: str | None = None
    sent_at: AwareDatetime | None = None
    remove_recipient: bool = False  # also drop this address / device token from the user's profile
