"""Outbox rows in the business transaction, deduplication, RLS, and the worker against real SMTP."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from cloud.db import scoped_transaction, tenant_scope
from cloud.notifications.kinds import ChannelKind, EventKind, Language
from cloud.notifications.models import OutboxRecord
from cloud.notifications.outbox import PLATFORM_TENANT, enqueue, save_preferences
from cloud.notifications.planning import RecipientProfile
from cloud.notifications.preferences import NotificationPreferences, QuietHours
from cloud.notifications.retry import RetryPolicy
from cloud.notifications.samples import SAMPLE_CONTEXTS
from cloud.notifications.schemas import OutboxRow, dedupe_key
from cloud.notifications.templates import render
from cloud.notifications.worker import OutboxWorker
from tests.cloud.outbox.conftest import NOW, Inbox, Member, confirmation_rows, email_channel, free_port


def _records(owner_session: Session) -> list[OutboxRecord]:
    owner_session.expire_all()
    return list(owner_session.scalars(select(OutboxRecord).order_by(OutboxRecord.created_at)))


def _worker(sessions: sessionmaker[Session], channels: dict, **kwargs: object) -> OutboxWorker:
    return OutboxWorker(sessions, channels, clock=lambda: NOW, **kwargs)  # type: ignore[arg-type]


def test_row_commits_and_rolls_back_with_the_business_change(
    app_sessions: sessionmaker[Session], owner_session: Session, member: Member
) -> None:
    rename = text("UPDATE tenants SET name = :name WHERE id = :id")
    with app_sessions() as session:
        tenant_scope(session, member.tenant_id, None)
        with session.begin():
            session.execute(rename, {"name": "Renamed", "id": member.tenant_id})
            assert enqueue(session, confirmation_rows(member, "booking:rolled-back")) == 1
            session.rollback()
    assert _records(owner_session) == []

    with scoped_transaction(app_sessions, tenant_id=member.tenant_id) as session:
        session.execute(rename, {"name": "Renamed", "id": member.tenant_id})
        enqueue(session, confirmation_rows(member, "booking:kept"))
    [record] = _records(owner_session)
    assert record.status == "pending" and record.tenant_id == member.tenant_id
    assert dt.datetime.fromisoformat(record.context["starts_at"]).tzinfo is not None  # JSON, still aware


def test_same_dedupe_key_gives_one_row(
    app_sessions: sessionmaker[Session], owner_session: Session, member: Member
) -> None:
    for _ in range(2):
        with scoped_transaction(app_sessions, tenant_id=member.tenant_id) as session:
            inserted = enqueue(session, confirmation_rows(member, "booking:once"))
    assert inserted == 0
    assert len(_records(owner_session)) == 1


def test_row_level_security_keeps_rows_in_their_tenant(
    app_sessions: sessionmaker[Session], member: Member, other_member: Member
) -> None:
    platform_row = OutboxRow(
        tenant_id=PLATFORM_TENANT,
        kind=EventKind.REGISTRATION,
        channel=ChannelKind.EMAIL,
        recipient=member.email,
        dedupe_key=dedupe_key(EventKind.REGISTRATION, "user:1", ChannelKind.EMAIL, member.email),
        next_attempt_at=NOW,
        created_at=NOW,
    )
    with scoped_transaction(app_sessions, platform=True) as session:
        enqueue(session, [platform_row, platform_row.model_copy(update={"id": platform_row.id})])
        enqueue(session, confirmation_rows(member, "booking:mine"))
    count = select(func.count()).select_from(OutboxRecord)
    with scoped_transaction(app_sessions, tenant_id=other_member.tenant_id) as session:
        assert session.scalar(count) == 0
    with scoped_transaction(app_sessions, tenant_id=member.tenant_id) as session:
        assert session.scalar(count) == 1  # not the platform row
    with scoped_transaction(app_sessions, platform=True) as session:
        assert session.scalar(count) == 2  # NULL tenant deduplicated too


async def test_two_workers_never_send_a_row_twice(
    app_sessions: sessionmaker[Session], owner_session: Session, member: Member, smtp_server: Inbox
) -> None:
    addresses = [f"twice-{n}@example.com" for n in range(12)]
    with scoped_transaction(app_sessions, tenant_id=member.tenant_id) as session:
        for address in addresses:
            enqueue(session, confirmation_rows(member, f"booking:{address}", address=address))
    workers = [
        _worker(app_sessions, {ChannelKind.EMAIL: email_channel(smtp_server.port)}, batch_size=2)
        for _ in range(2)
    ]
    handled = await asyncio.gather(*(worker.drain() for worker in workers))
    assert sum(handled) == len(addresses)
    assert all(len(smtp_server.to(address)) == 1 for address in addresses)
    assert {record.status for record in _records(owner_session)} == {"sent"}


async def test_retry_after_a_dead_smtp_server_then_success(
    app_sessions: sessionmaker[Session], owner_session: Session, member: Member, smtp_server: Inbox
) -> None:
    with scoped_transaction(app_sessions, tenant_id=member.tenant_id) as session:
        enqueue(session, confirmation_rows(member, "booking:retry"))
    down = _worker(app_sessions, {ChannelKind.EMAIL: email_channel(free_port())})
    assert await down.run_once() == 1
    [record] = _records(owner_session)
    assert (record.status, record.attempts) == ("pending", 1)
    assert record.last_error and record.next_attempt_at > NOW
    assert await down.run_once() == 0  # backing off: not due yet

    later = record.next_attempt_at
    up = OutboxWorker(app_sessions, {ChannelKind.EMAIL: email_channel(smtp_server.port)}, clock=lambda: later)
    assert await up.run_once() == 1
    [record] = _records(owner_session)
    assert (record.status, record.attempts) == ("sent", 2)
    assert len(smtp_server.to(member.email)) == 1


async def test_dead_letter_after_max_attempts_keeps_the_last_error(
    app_sessions: sessionmaker[Session],
    owner_session: Session,
    member: Member,
    channels: dict,
) -> None:
    with scoped_transaction(app_sessions, tenant_id=member.tenant_id) as session:
        enqueue(session, confirmation_rows(member, "booking:dead", address="someone@greylist.example.com"))
    moment = NOW
    worker = OutboxWorker(app_sessions, channels, policy=RetryPolicy(max_attempts=3), clock=lambda: moment)
    for _ in range(3):
        assert await worker.run_once() == 1
        moment = moment + dt.timedelta(days=1)
    [record] = _records(owner_session)
    assert (record.status, record.attempts) == ("dead", 3)
    assert record.last_error is not None and "gave up after 3 attempts" in record.last_error
    assert "451" in record.last_error or "Greylisted" in record.last_error
    assert await worker.run_once() == 0


async def test_quiet_hours_defer_until_they_end(
    app_sessions: sessionmaker[Session],
    owner_session: Session,
    member: Member,
    channels: dict,
    smtp_server: Inbox,
) -> None:
    quiet = NotificationPreferences(quiet_hours=QuietHours(start=dt.time(22), end=dt.time(7)))
    night = dt.datetime(2026, 11, 24, 18, 0, tzinfo=dt.UTC)  # 23:30 in Asia/Kolkata
    with scoped_transaction(app_sessions, platform=True) as session:
        save_preferences(session, member.user_id, quiet)
        enqueue(session, confirmation_rows(member, "booking:quiet"))
    moment = night
    worker = OutboxWorker(app_sessions, channels, clock=lambda: moment)
    assert await worker.run_once() == 1
    [record] = _records(owner_session)
    assert (record.status, record.attempts) == ("pending", 0)
    assert record.next_attempt_at == dt.datetime(2026, 11, 25, 1, 30, tzinfo=dt.UTC)  # 07:00 IST
    assert smtp_server.to(member.email) == []

    moment = record.next_attempt_at
    assert await worker.run_once() == 1
    assert _records(owner_session)[0].status == "sent"
    assert len(smtp_server.to(member.email)) == 1


async def test_confirmation_arrives_in_the_recipients_language(
    app_sessions: sessionmaker[Session],
    member: Member,
    channels: dict,
    smtp_server: Inbox,
) -> None:
    hindi = RecipientProfile(
        user_id=member.user_id, email=member.email, prefs=NotificationPreferences(language=Language.HINDI)
    )
    with scoped_transaction(app_sessions, tenant_id=member.tenant_id) as session:
        enqueue(session, confirmation_rows(member, "booking:hi", profile=hindi))
    assert await _worker(app_sessions, channels).drain() == 1
    [mail] = smtp_server.to(member.email)
    expected = render(
        EventKind.BOOKING_CONFIRMED,
        ChannelKind.EMAIL,
        Language.HINDI,
        SAMPLE_CONTEXTS[EventKind.BOOKING_CONFIRMED],
        library_tz="Asia/Kolkata",
    )
    assert mail["Subject"] == expected.subject
