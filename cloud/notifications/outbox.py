"""The DB-backed outbox: enqueue in the business transaction, claim due rows for a worker.

    rows = plan_rows(EventKind.BOOKING_CONFIRMED, f"booking:{booking.id}", profile, context, ...)
    enqueue(session, rows)          # same session and transaction as the booking; caller commits
    ...
    due = claim_due(session, now, limit=20)    # worker, platform scope: FOR UPDATE SKIP LOCKED
    apply_update(session, row.id, update)      # in the claiming transaction, then commit

Platform-level messages (OTP, registration) carry `PLATFORM_TENANT` in `OutboxRow.tenant_id`,
stored as NULL: only the platform scope sees them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from cloud.catalog.models import LibraryRecord, SeatRecord
from cloud.db import platform_scope
from cloud.models_common import utcnow
from cloud.notifications.kinds import ChannelKind, EventKind, Language
from cloud.notifications.models import OutboxRecord, PreferencesRecord
from cloud.notifications.planning import RecipientProfile, plan_rows
from cloud.notifications.preferences import NotificationPreferences
from cloud.notifications.schemas import OutboxRow, OutboxStatus, OutboxUpdate, dedupe_key

if TYPE_CHECKING:
    from cloud.booking.models import Booking

log = logging.getLogger("studyspot.notifications")

PLATFORM_TENANT = uuid.UUID(int=0)  # OutboxRow.tenant_id of a message that belongs to no tenant


def _json_row(row: OutboxRow) -> dict[str, Any]:
    values = row.model_dump(mode="json")  # datetimes as ISO 8601 with offset, ids as text
    if row.tenant_id == PLATFORM_TENANT:
        values["tenant_id"] = None
    return values


# All rows as one JSON parameter, typed by the table's own row type: one cached statement for any
# number of rows (a dialect INSERT ... ON CONFLICT has no SQL cache key, so SQLAlchemy compiled it
# again on every call, most of the CPU of queueing a message).
_COLUMNS = ", ".join(OutboxRow.model_fields)  # field names, constants of the schema
_INSERT_ROWS = text(
    f"INSERT INTO notification_outbox ({_COLUMNS}) SELECT {_COLUMNS} "  # noqa: S608 - no values
    "FROM jsonb_populate_recordset(NULL::notification_outbox, CAST(:rows AS jsonb)) "
    "ON CONFLICT ON CONSTRAINT notification_outbox_dedupe DO NOTHING RETURNING id"
)


def enqueue(session: Session, rows: Iterable[OutboxRow]) -> int:
    """Insert the rows in the session's current transaction; a known dedupe key is skipped.

    Returns how many rows are new. Nothing is committed here: the business change commits both.
    """
    values = [_json_row(row) for row in rows]
    if not values:
        return 0
    return len(session.execute(_INSERT_ROWS, {"rows": json.dumps(values)}).all())


def to_row(record: OutboxRecord) -> OutboxRow:
    return OutboxRow(
        id=record.id,
        tenant_id=record.tenant_id or PLATFORM_TENANT,
        library_id=record.library_id,
        recipient_user_id=record.recipient_user_id,
        kind=EventKind(record.kind),
        channel=ChannelKind(record.channel),
        recipient=record.recipient,
        language=Language(record.language),
        library_tz=record.library_tz,
        context=record.context,
        dedupe_key=record.dedupe_key,
        status=OutboxStatus(record.status),
        attempts=record.attempts,
        next_attempt_at=record.next_attempt_at,
        expires_at=record.expires_at,
        last_error=record.last_error,
        provider_message_id=record.provider_message_id,
        created_at=record.created_at,
        sent_at=record.sent_at,
    )


def claim_due(session: Session, now: dt.datetime, limit: int = 20) -> list[OutboxRecord]:
    """Lock up to `limit` due pending rows; rows another worker holds are skipped, not waited for."""
    statement = (
        select(OutboxRecord)
        .where(OutboxRecord.status == OutboxStatus.PENDING.value, OutboxRecord.next_attempt_at <= now)
        .order_by(OutboxRecord.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(statement))


def apply_update(session: Session, record: OutboxRecord, result: OutboxUpdate) -> None:
    """Write one delivery attempt's outcome onto the claimed row (the caller commits)."""
    record.status = result.status.value
    record.attempts = result.attempts
    if result.next_attempt_at is not None:
        record.next_attempt_at = result.next_attempt_at
    record.last_error = result.last_error
    if record.kind == EventKind.OTP.value and result.status is not OutboxStatus.PENDING:
        record.context = {}  # the code is not kept once it was sent or given up on
    if result.provider_message_id is not None:
        record.provider_message_id = result.provider_message_id
    if result.sent_at is not None:
        record.sent_at = result.sent_at


def stored_preferences(session: Session, user_id: uuid.UUID | None) -> NotificationPreferences | None:
    """The preferences a user saved (None if never saved or not visible in this scope)."""
    if user_id is None:
        return None
    record = session.get(PreferencesRecord, user_id)
    return None if record is None else NotificationPreferences.model_validate(record.prefs)


def load_preferences(session: Session, user_id: uuid.UUID | None) -> NotificationPreferences:
    """A user's stored preferences, or the defaults (also for addresses without an account)."""
    return stored_preferences(session, user_id) or NotificationPreferences()


def save_preferences(session: Session, user_id: uuid.UUID, prefs: NotificationPreferences) -> None:
    data = prefs.model_dump(mode="json")
    statement = (
        insert(PreferencesRecord)
        .values(user_id=user_id, prefs=data)
        .on_conflict_do_update(index_elements=[PreferencesRecord.user_id], set_={"prefs": data})
    )
    session.execute(statement)


def mark_provider_status(session: Session, provider_message_id: str, status: OutboxStatus, error: str) -> int:
    """A provider's delivery receipt said the message failed after acceptance; returns rows changed."""
    result = session.execute(
        update(OutboxRecord)
        .where(OutboxRecord.provider_message_id == provider_message_id)
        .values(status=status.value, last_error=error)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def enqueue_booking_event(
    session: Session,
    booking: Booking,
    kind: EventKind,
    now: dt.datetime,
    *,
    subject: str | None = None,
    extra: Mapping[str, Any] | None = None,
    expires_at: dt.datetime | None = None,
    savepoint: bool = True,
) -> int:
    """Queue a booking message to its holder in the booking's transaction (the caller commits).

    `subject` names the fact for deduplication (default `booking:<id>`: one message per kind and
    booking); `extra` adds template context (e.g. a hold deadline); `expires_at` drops a message
    that could not be sent in time. A savepoint keeps a notification problem from undoing the
    booking; it is logged instead. `savepoint=False` saves its two round trips where the caller
    knows the rows cannot fail the database's checks (a database error then fails the transaction).
    """
    try:
        with session.begin_nested() if savepoint else contextlib.nullcontext():
            rows = _booking_rows(
                session, booking, kind, now, subject=subject, extra=extra, expires_at=expires_at
            )
            return enqueue(session, rows)
    except ValidationError:
        log.exception("could not queue %s for booking %s", kind.value, booking.id)
        return 0
    except SQLAlchemyError:
        if not savepoint:
            raise
        log.exception("could not queue %s for booking %s", kind.value, booking.id)
        return 0


# The holder's contact, push tokens and stored preferences in one round trip. Both functions check
# who may read (self, platform, staff of a tenant the user books in); the preferences obey RLS.
_RECIPIENT = text(
    "SELECT c.email, c.full_name, "
    "ARRAY(SELECT t.token FROM notification_device_tokens(:user, :tenant) t) AS tokens, "
    "(SELECT p.prefs FROM notification_preferences p WHERE p.user_id = :user) AS prefs "
    "FROM notification_contact(:user, :tenant) c"
)


def _booking_rows(
    session: Session,
    booking: Booking,
    kind: EventKind,
    now: dt.datetime,
    *,
    subject: str | None = None,
    extra: Mapping[str, Any] | None = None,
    expires_at: dt.datetime | None = None,
) -> list[OutboxRow]:
    recipient = session.execute(_RECIPIENT, {"user": booking.user_id, "tenant": booking.tenant_id}).first()
    library = session.get(LibraryRecord, booking.library_id)
    seat = session.get(SeatRecord, booking.seat_id)
    if recipient is None or library is None or seat is None:
        log.warning("booking %s: holder, library or seat not visible; no %s sent", booking.id, kind.value)
        return []
    email, full_name, tokens, stored_prefs = recipient
    context = {
        "recipient_name": full_name or email,
        "library_name": library.name,
        "seat_label": seat.label,
        "starts_at": booking.start,
        "ends_at": booking.end,
        "booking_ref": str(booking.id)[:8].upper(),
        "amount_minor": booking.price_minor,
        "currency": booking.currency,
        **(extra or {}),
    }
    holder = booking.user_id
    profile = RecipientProfile(
        user_id=holder, email=email, device_tokens=list(tokens or []), prefs=_prefs_or_defaults(stored_prefs)
    )
    return plan_rows(
        kind,
        subject or f"booking:{booking.id}",
        profile,
        context,
        tenant_id=booking.tenant_id,
        library_id=booking.library_id,
        library_tz=library.timezone,
        now=now,
        expires_at=expires_at,
    )


def _prefs_or_defaults(stored: Any) -> NotificationPreferences:
    # Staff acting for a student cannot read the student's preferences (RLS): defaults here, and the
    # worker applies the stored ones (language, opt-outs, quiet hours) at send time.
    if stored is None:
        return NotificationPreferences()
    try:
        return NotificationPreferences.model_validate(stored)
    except ValidationError:
        return NotificationPreferences()


def unsubscribe_email(
    session: Session, user_id: uuid.UUID, kind: EventKind | None
) -> NotificationPreferences:
    """One-click unsubscribe: email off for one kind, or for every optional message (caller commits)."""
    prefs = load_preferences(session, user_id)
    if kind is None:
        prefs.disabled_everywhere.add(ChannelKind.EMAIL)
    else:
        prefs.disabled.setdefault(kind, set()).add(ChannelKind.EMAIL)
    save_preferences(session, user_id, prefs)
    return prefs


OTP_LIFETIME = dt.timedelta(minutes=5)  # cloud.identity.otp.OTP_TTL: an older code is useless


class OutboxOtpSender:
    """`app.state.otp_sender` that queues the code as an SMS row (platform scope, no tenant).

    The code sits in the outbox only until it is sent or expires (then the row's context is
    emptied); the row is visible to the platform scope alone.
    """

    def __init__(
        self, session_factory: sessionmaker[Session], clock: Callable[[], dt.datetime] = utcnow
    ) -> None:
        self.session_factory = session_factory
        self.clock = clock

    def send_otp(self, phone: str, code: str) -> None:
        now = self.clock()
        row = OutboxRow(
            tenant_id=PLATFORM_TENANT,
            kind=EventKind.OTP,
            channel=ChannelKind.SMS,
            recipient=phone,
            context={"code": code, "valid_minutes": int(OTP_LIFETIME.total_seconds() // 60)},
            dedupe_key=dedupe_key(EventKind.OTP, f"otp:{uuid.uuid4()}", ChannelKind.SMS, phone),
            next_attempt_at=now,
            expires_at=now + OTP_LIFETIME,
            created_at=now,
        )
        with self.session_factory() as session:
            platform_scope(session)
            with session.begin():
                enqueue(session, [row])
