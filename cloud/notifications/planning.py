"""Which outbox rows one business event writes for one recipient (pure; the caller inserts them).

    rows = plan_rows(EventKind.BOOKING_CONFIRMED, f"booking:{booking.id}", recipient, context,
                     tenant_id=..., library_id=..., library_tz=library.timezone, now=now)
    session.add_all(OutboxRow -> model for each row)   # same transaction as the booking

Quiet hours are not applied here but at send time, so a preference changed in between still counts.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, Field

from cloud.notifications.kinds import EVENT_SPECS, ChannelKind, EventKind
from cloud.notifications.preferences import NotificationPreferences, channel_enabled
from cloud.notifications.recipients import InvalidRecipientError, normalize_recipient
from cloud.notifications.schemas import OutboxRow, dedupe_key

logger = logging.getLogger("studyspot.notifications")

_MEMBER_DEFAULT = (ChannelKind.EMAIL, ChannelKind.PUSH)
_MEMBER_PRESSING = (ChannelKind.EMAIL, ChannelKind.PUSH, ChannelKind.SMS, ChannelKind.WHATSAPP)
_STAFF_DEFAULT = (ChannelKind.PUSH, ChannelKind.SMS, ChannelKind.WHATSAPP)

_PRESSING_MEMBER_EVENTS = frozenset(
    {EventKind.WAITLIST_PROMOTED, EventKind.PAYMENT_FAILED, EventKind.DUES_OVERDUE, EventKind.SUSPENSION}
)


def _default_channels(kind: EventKind) -> tuple[ChannelKind, ...]:
    if kind is EventKind.OTP:
        return (ChannelKind.SMS,)
    if EVENT_SPECS[kind].staff_alert:
        return _STAFF_DEFAULT
    return _MEMBER_PRESSING if kind in _PRESSING_MEMBER_EVENTS else _MEMBER_DEFAULT


# Channels an event uses when the caller does not choose; SMS costs money, so only where it matters.
DEFAULT_CHANNELS: dict[EventKind, tuple[ChannelKind, ...]] = {
    kind: _default_channels(kind) for kind in EventKind
}


class RecipientProfile(BaseModel):
    user_id: uuid.UUID | None = None
    email: str | None = None
    phone: str | None = None  # E.164 preferred; national numbers use default_region
    whatsapp_opt_in: bool = False  # Meta requires the user's opt-in before business-initiated messages
    device_tokens: list[str] = Field(default_factory=list)
    prefs: NotificationPreferences = Field(default_factory=NotificationPreferences)
    default_region: str = "IN"


def _addresses(channel: ChannelKind, recipient: RecipientProfile) -> list[str]:
    if channel is ChannelKind.EMAIL:
        return [recipient.email] if recipient.email else []
    if channel is ChannelKind.SMS:
        return [recipient.phone] if recipient.phone else []
    if channel is ChannelKind.WHATSAPP:
        return [recipient.phone] if recipient.phone and recipient.whatsapp_opt_in else []
    if channel is ChannelKind.PUSH:
        return list(recipient.device_tokens)
    return [str(recipient.user_id or "console")]


def _valid(channel: ChannelKind, raw: str, region: str) -> str | None:
    try:
        return normalize_recipient(channel, raw, region)
    except InvalidRecipientError as exc:
        # A bad stored address must not abort the business transaction that triggered the event.
        logger.warning("skipping %s recipient: %s", channel.value, exc)
        return None


def plan_rows(
    kind: EventKind,
    subject_id: str,
    recipient: RecipientProfile,
    context: Mapping[str, Any],
    *,
    tenant_id: uuid.UUID,
    library_id: uuid.UUID | None,
    library_tz: str,
    now: dt.datetime,
    channels: Iterable[ChannelKind] | None = None,
    expires_at: dt.datetime | None = None,
) -> list[OutboxRow]:
    """One row per usable (channel, address); `subject_id` names the business fact for deduplication."""
    rows: list[OutboxRow] = []
    for channel in channels or DEFAULT_CHANNELS[kind]:
        if not channel_enabled(kind, channel, recipient.prefs):
            continue
        for raw in _addresses(channel, recipient):
            address = _valid(channel, raw, recipient.default_region)
            if address is None:
                continue
            rows.append(
                OutboxRow(
                    tenant_id=tenant_id,
                    library_id=library_id,
                    recipient_user_id=recipient.user_id,
                    kind=kind,
                    channel=channel,
                    recipient=address,
                    language=recipient.prefs.language,
                    library_tz=library_tz,
                    context=dict(context),
                    dedupe_key=dedupe_key(kind, subject_id, channel, address),
                    next_attempt_at=now,
                    expires_at=expires_at,
                    created_at=now,
                )
            )
    return rows
