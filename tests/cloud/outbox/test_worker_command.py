"""`studyspot cloud worker`: the loop that the CLI runs, with the channels from the environment."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.config import CloudSettings
from cloud.db import scoped_transaction
from cloud.notifications.kinds import ChannelKind, EventKind
from cloud.notifications.models import OutboxRecord
from cloud.notifications.outbox import enqueue
from cloud.notifications.planning import RecipientProfile, plan_rows
from cloud.notifications.samples import SAMPLE_CONTEXTS
from cloud.notifications.worker import serve
from tests.cloud.outbox.conftest import NOW, Member


def _enqueue_console(sessions: sessionmaker[Session], who: Member, subject: str) -> None:
    rows = plan_rows(
        EventKind.BOOKING_CANCELLED,
        subject,
        RecipientProfile(user_id=who.user_id),
        SAMPLE_CONTEXTS[EventKind.BOOKING_CANCELLED],
        tenant_id=who.tenant_id,
        library_id=None,
        library_tz="Asia/Kolkata",
        now=NOW,
        channels=[ChannelKind.CONSOLE],
    )
    with scoped_transaction(sessions, tenant_id=who.tenant_id) as session:
        enqueue(session, rows)


def _statuses(owner_session: Session) -> list[str]:
    owner_session.expire_all()
    return list(owner_session.scalars(select(OutboxRecord.status)))


@pytest.fixture(autouse=True)
def console_only(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("NOTIFY_"):
            monkeypatch.delenv(name)


async def test_once_delivers_what_is_due_and_exits(
    cloud_settings: CloudSettings,
    app_sessions: sessionmaker[Session],
    owner_session: Session,
    member: Member,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _enqueue_console(app_sessions, member, "booking:console-once")
    await serve(cloud_settings, once=True)
    assert _statuses(owner_session) == ["sent"]


async def test_sigterm_stops_the_loop_cleanly(
    cloud_settings: CloudSettings, app_sessions: sessionmaker[Session], owner_session: Session, member: Member
) -> None:
    _enqueue_console(app_sessions, member, "booking:console-loop")
    task = asyncio.create_task(serve(cloud_settings))
    while _statuses(owner_session) != ["sent"]:
        assert not task.done()
        await asyncio.sleep(0.05)
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(task, timeout=30)
    assert task.exception() is None
