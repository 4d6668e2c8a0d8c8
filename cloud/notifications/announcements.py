"""Owner announcements: one broadcast to a library's members through the outbox, rate limited and audited.

Members = students who, at this library, hold a booking that is not cancelled or unpaid and ends
after `now - 30 days` (so current, upcoming and recent ones), or a monthly subscription (active or
paused) that ended no earlier than 30 days ago. The tenant's own owners and staff are left out (a
walk-in sold at the desk is booked under the seller's account).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from cloud.audit import service as audit
from cloud.catalog.models import LibraryRecord
from cloud.catalog.service import owned_library
from cloud.errors import ApiError
from cloud.notifications import outbox
from cloud.notifications.kinds import ChannelKind, EventKind, Language
from cloud.notifications.models import AnnouncementRecord
from cloud.notifications.planning import RecipientProfile, plan_rows
from cloud.notifications.push_tokens import device_tokens
from cloud.notifications.schemas import OutboxRow

ANNOUNCEMENTS_PER_DAY = 5
RATE_WINDOW = dt.timedelta(days=1)
MEMBER_WINDOW = dt.timedelta(days=30)
CHANNELS = (ChannelKind.EMAIL, ChannelKind.PUSH, ChannelKind.CONSOLE)

Subject = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Message = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class AnnouncementText(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: Subject
    message: Message


class AnnouncementIn(AnnouncementText):
    """`translations` gives the text for recipients whose language is another one (e.g. "hi")."""

    translations: dict[Language, AnnouncementText] = Field(default_factory=dict)


class AnnouncementOut(BaseModel):
    id: uuid.UUID
    library_id: uuid.UUID
    author_id: uuid.UUID | None
    subject: str
    message: str
    translations: dict[str, AnnouncementText]
    recipients: int  # students it was addressed to
    messages: int  # outbox rows queued (one per channel and address)
    created_at: dt.datetime


_MEMBERS = text(
    """
    SELECT user_id FROM bookings
     WHERE library_id = :library AND status IN ('confirmed', 'checked_in', 'completed', 'no_show')
       AND upper(during) > :since
    UNION
    SELECT user_id FROM subscriptions
     WHERE library_id = :library AND status IN ('active', 'paused') AND end_date >= :since_day
    EXCEPT
    SELECT user_id FROM memberships WHERE tenant_id = :tenant
    """
)
_CONTACT = text("SELECT email, full_name FROM notification_contact(:user, :tenant)")


def members(session: Session, library: LibraryRecord, now: dt.datetime) -> list[uuid.UUID]:
    since = now - MEMBER_WINDOW
    params = {"library": library.id, "tenant": library.tenant_id, "since": since, "since_day": since.date()}
    return sorted(row.user_id for row in session.execute(_MEMBERS, params))


def announce(
    session: Session,
    tenant_id: uuid.UUID,
    author_id: uuid.UUID,
    library_id: uuid.UUID,
    body: AnnouncementIn,
    now: dt.datetime,
) -> AnnouncementOut:
    """Store the announcement and queue its messages in one transaction (the caller commits)."""
    library = owned_library(session, tenant_id, library_id)
    _check_rate(session, library.id, now)
    record = AnnouncementRecord(
        id=uuid.uuid4(), tenant_id=tenant_id, library_id=library.id, author_id=author_id,
        subject=body.subject, message=body.message, created_at=now,
        translations={lang.value: item.model_dump() for lang, item in body.translations.items()},
    )  # fmt: skip
    session.add(record)
    session.flush()
    audience = members(session, library, now)
    record.recipients = len(audience)
    record.messages = outbox.enqueue(session, _rows(session, library, record, audience, now))
    audit.record(
        session, "notifications.announcement.sent", tenant_id=tenant_id, actor_id=author_id,
        target=f"library:{library.id}",
        detail={"announcement_id": str(record.id), "recipients": record.recipients,
                "messages": record.messages},
    )  # fmt: skip
    return announcement_out(record)


def _check_rate(session: Session, library_id: uuid.UUID, now: dt.datetime) -> None:
    # Serialise announcements of one library so two at once cannot both pass the count.
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"announce:{library_id}"})
    recent = session.execute(
        select(func.count(), func.min(AnnouncementRecord.created_at)).where(
            AnnouncementRecord.library_id == library_id, AnnouncementRecord.created_at > now - RATE_WINDOW
        )
    ).one()
    count, oldest = recent
    if count >= ANNOUNCEMENTS_PER_DAY:
        retry = max(1, int((oldest + RATE_WINDOW - now).total_seconds()))
        raise ApiError(
            429, "rate_limited",
            f"at most {ANNOUNCEMENTS_PER_DAY} announcements per library in 24 hours",
            {"limit": ANNOUNCEMENTS_PER_DAY, "retry_after_seconds": retry},
            headers={"Retry-After": str(retry)},
        )  # fmt: skip


def _rows(
    session: Session,
    library: LibraryRecord,
    record: AnnouncementRecord,
    audience: list[uuid.UUID],
    now: dt.datetime,
) -> list[OutboxRow]:
    context: dict[str, Any] = {
        "library_name": library.name,
        "title": record.subject,
        "body": record.message,
        "localized": {
            lang: {"title": item["subject"], "body": item["message"]}
            for lang, item in record.translations.items()
        },
    }
    rows: list[OutboxRow] = []
    for user_id in audience:
        contact = session.execute(_CONTACT, {"user": user_id, "tenant": library.tenant_id}).first()
        if contact is None:
            continue  # erased or disabled account
        profile = RecipientProfile(
            user_id=user_id, email=contact.email,
            device_tokens=device_tokens(session, user_id, library.tenant_id),
        )  # fmt: skip
        rows += plan_rows(
            EventKind.OWNER_ANNOUNCEMENT, f"announcement:{record.id}", profile, context,
            tenant_id=library.tenant_id, library_id=library.id, library_tz=library.timezone,
            now=now, channels=CHANNELS,
        )  # fmt: skip
    return rows


def list_announcements(
    session: Session, tenant_id: uuid.UUID, library_id: uuid.UUID, limit: int = 50
) -> list[AnnouncementOut]:
    library = owned_library(session, tenant_id, library_id)
    records = session.scalars(
        select(AnnouncementRecord)
        .where(AnnouncementRecord.library_id == library.id)
        .order_by(AnnouncementRecord.created_at.desc())
        .limit(limit)
    )
    return [announcement_out(record) for record in records]


def announcement_out(record: AnnouncementRecord) -> AnnouncementOut:
    return AnnouncementOut(
        id=record.id,
        library_id=record.library_id,
        author_id=record.author_id,
        subject=record.subject,
        message=record.message,
        translations={
            lang: AnnouncementText.model_validate(item) for lang, item in record.translations.items()
        },
        recipients=record.recipients,
        messages=record.messages,
        created_at=record.created_at,
    )
