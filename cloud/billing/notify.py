"""Outbox rows for billing and payment events to one student, in the caller's transaction."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from cloud.catalog.models import LibraryRecord
from cloud.notifications.kinds import EventKind
from cloud.notifications.outbox import enqueue, load_preferences
from cloud.notifications.planning import RecipientProfile, plan_rows
from cloud.notifications.preferences import NotificationPreferences

log = logging.getLogger(__name__)


def notify_student(
    session: Session,
    kind: EventKind,
    subject_id: str,
    *,
    also: Sequence[tuple[EventKind, dict[str, Any]]] = (),
    user_id: uuid.UUID,
    tenant_id: uuid.UUID,
    library_id: uuid.UUID,
    context: dict[str, Any],
    now: dt.datetime,
) -> int:
    """Queue `kind` for the student; `subject_id` names the fact, so a repeat is deduplicated.

    `context` gets `recipient_name` and `library_name` added; `also` queues more kinds about the
    same fact with one contact lookup. A savepoint keeps a notification problem from undoing the
    business change: it is logged instead.
    """
    try:
        with session.begin_nested():
            contact = session.execute(
                text("SELECT email, full_name FROM notification_contact(:user, :tenant)"),
                {"user": user_id, "tenant": tenant_id},
            ).first()
            library = session.get(LibraryRecord, library_id)
            if contact is None or library is None:
                log.warning("%s for %s: student or library not visible; not sent", kind.value, subject_id)
                return 0
            email, full_name = contact
            names = {"recipient_name": full_name or email, "library_name": library.name}
            profile = RecipientProfile(user_id=user_id, email=email, prefs=_prefs(session, user_id))
            rows = [
                row
                for each_kind, each_context in ((kind, context), *also)
                for row in plan_rows(
                    each_kind,
                    subject_id,
                    profile,
                    {**names, **each_context},
                    tenant_id=tenant_id,
                    library_id=library_id,
                    library_tz=library.timezone,
                    now=now,
                )
            ]
            return enqueue(session, rows)
    except (SQLAlchemyError, ValidationError):
        log.exception("could not queue %s for %s", kind.value, subject_id)
        return 0


def _prefs(session: Session, user_id: uuid.UUID) -> NotificationPreferences:
    try:
        return load_preferences(session, user_id)
    except ValidationError:
        return NotificationPreferences()
