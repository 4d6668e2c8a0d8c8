"""Booking confirmed / cancelled through the API: queued in the booking's transaction, delivered
by the worker to the real SMTP server in the student's language."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.db import scoped_transaction
from cloud.identity.roles import Role
from cloud.notifications.kinds import ChannelKind, Language
from cloud.notifications.models import OutboxRecord
from cloud.notifications.outbox import save_preferences
from cloud.notifications.preferences import NotificationPreferences
from cloud.notifications.worker import OutboxWorker
from tests.cloud.booking.conftest import build_library
from tests.cloud.booking.helpers import hourly, slot
from tests.cloud.outbox.conftest import Inbox, email_channel


async def test_confirmation_and_cancellation_arrive_by_email_in_hindi(
    cloud_client: httpx.AsyncClient,
    make_account: Any,
    app_sessions: sessionmaker[Session],
    owner_session: Session,
    smtp_server: Inbox,
) -> None:
    owner = await make_account(Role.LIBRARY_OWNER)
    student = await make_account(Role.STUDENT)
    with scoped_transaction(app_sessions, user_id=student.id) as session:
        save_preferences(session, student.id, NotificationPreferences(language=Language.HINDI))
    setup = await build_library(cloud_client, owner, name="Gyan Deep")
    body = hourly(setup, "A2", slot(1, "08:00", "09:00"), "Free hour")
    booked = await cloud_client.post("/api/v1/bookings", json=body, headers=student.headers)
    assert booked.status_code == 201 and booked.json()["status"] == "confirmed", booked.text

    worker = OutboxWorker(app_sessions, {ChannelKind.EMAIL: email_channel(smtp_server.port)})
    assert await worker.drain() == 1
    [confirmation] = smtp_server.to(student.email)
    assert "A2" in confirmation["Subject"] and "Gyan Deep" in confirmation["Subject"]
    assert "बुकिंग" in confirmation["Subject"]  # Hindi, as the student chose

    cancelled = await cloud_client.post(
        f"/api/v1/bookings/{booked.json()['id']}/cancel",
        json={"reason": "seat broken"},
        headers=owner.headers,
    )
    assert cancelled.status_code == 200, cancelled.text
    assert await worker.drain() == 1
    assert len(smtp_server.to(student.email)) == 2
    owner_session.expire_all()
    kinds = owner_session.execute(select(OutboxRecord.kind, OutboxRecord.status)).all()
    assert sorted(kinds) == [("booking_cancelled", "sent"), ("booking_confirmed", "sent")]
