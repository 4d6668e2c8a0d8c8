"""Users' FCM registration tokens: register, list, forget, and read them to address push messages.

register_token(session, user_id, token, Platform.ANDROID)    # the caller commits
tokens = device_tokens(session, user_id, tenant_id)          # who may read: see migration 0900
forget_token(session, user_id, token)                        # FCM said UNREGISTERED / INVALID_ARGUMENT
"""

from __future__ import annotations

import enum
import uuid

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from cloud.notifications.models import PushTokenRecord
from cloud.notifications.recipients import normalize_device_token

MAX_TOKENS_PER_USER = 10  # one per phone/browser; the oldest is dropped beyond this


class Platform(enum.StrEnum):
    ANDROID = "android"
    IOS = "ios"
    WEB = "web"


def register_token(session: Session, user_id: uuid.UUID, token: str, platform: Platform) -> PushTokenRecord:
    """Store (or refresh the platform of) a token; raises InvalidRecipientError for a malformed one."""
    token = normalize_device_token(token)
    statement = (
        insert(PushTokenRecord)
        .values(user_id=user_id, token=token, platform=platform.value)
        .on_conflict_do_update(index_elements=["user_id", "token"], set_={"platform": platform.value})
        .returning(PushTokenRecord)
    )
    record = session.scalars(statement, execution_options={"populate_existing": True}).one()
    _drop_oldest(session, user_id)
    return record


def _drop_oldest(session: Session, user_id: uuid.UUID) -> None:
    keep = (
        select(PushTokenRecord.id)
        .where(PushTokenRecord.user_id == user_id)
        .order_by(PushTokenRecord.created_at.desc(), PushTokenRecord.id)
        .limit(MAX_TOKENS_PER_USER)
    )
    session.execute(
        delete(PushTokenRecord).where(PushTokenRecord.user_id == user_id, PushTokenRecord.id.not_in(keep))
    )


def list_tokens(session: Session, user_id: uuid.UUID) -> list[PushTokenRecord]:
    return list(
        session.scalars(
            select(PushTokenRecord)
            .where(PushTokenRecord.user_id == user_id)
            .order_by(PushTokenRecord.created_at)
        )
    )


def delete_token(session: Session, user_id: uuid.UUID, token_id: uuid.UUID) -> bool:
    result = session.execute(
        delete(PushTokenRecord).where(PushTokenRecord.id == token_id, PushTokenRecord.user_id == user_id)
    )
    return bool(getattr(result, "rowcount", 0))


def forget_token(session: Session, user_id: uuid.UUID, token: str) -> int:
    """Invalid-token cleanup: FCM no longer knows this token, so it is never addressed again."""
    result = session.execute(
        delete(PushTokenRecord).where(PushTokenRecord.user_id == user_id, PushTokenRecord.token == token)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def is_registered(session: Session, user_id: uuid.UUID, token: str) -> bool:
    found = session.scalar(
        select(PushTokenRecord.id).where(PushTokenRecord.user_id == user_id, PushTokenRecord.token == token)
    )
    return found is not None


def device_tokens(session: Session, user_id: uuid.UUID, tenant_id: uuid.UUID | None) -> list[str]:
    """A user's tokens as far as the session may see them (self, platform, or staff of a tenant the
    user books in or works for): through the SECURITY DEFINER function of migration 0900."""
    rows = session.execute(
        text("SELECT token FROM notification_device_tokens(:user, :tenant)"),
        {"user": user_id, "tenant": tenant_id},
    )
    return [row.token for row in rows]
