"""Fixtures for the outbox tests: a real aiosmtpd server, a tenant and a user, app-role sessions."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope
from aiosmtpd.smtp import Session as SmtpSession
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from cloud.config import CloudSettings
from cloud.db import app_url, make_engine, make_session_factory
from cloud.notifications.channels.email import EmailChannel, SmtpSecurity, SmtpSettings
from cloud.notifications.kinds import ChannelKind, EventKind
from cloud.notifications.planning import RecipientProfile, plan_rows
from cloud.notifications.samples import SAMPLE_CONTEXTS
from cloud.notifications.schemas import OutboxRow

NOW = dt.datetime(2026, 11, 24, 6, 0, tzinfo=dt.UTC)  # 11:30 in Asia/Kolkata


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Inbox:
    """What the SMTP server accepted; refuses @greylist.example.com with a 451 (try again later)."""

    port: int = 0
    received: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: SmtpSession, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.endswith("@greylist.example.com"):
            return "451 4.7.1 Greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: SmtpSession, envelope: Envelope) -> str:
        raw = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append((list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [message for rcpts, message in self.received if address in rcpts]


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[Inbox]:
    inbox = Inbox(port=free_port())
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


def email_channel(port: int) -> EmailChannel:
    return EmailChannel(
        SmtpSettings(
            host="127.0.0.1",
            port=port,
            security=SmtpSecurity.NONE,
            from_address="no-reply@studyspot.test",
            timeout_seconds=5,
        )
    )


@pytest.fixture
def channels(smtp_server: Inbox) -> dict[ChannelKind, EmailChannel]:
    return {ChannelKind.EMAIL: email_channel(smtp_server.port)}


@pytest.fixture
def app_sessions(cloud_settings: CloudSettings) -> Iterator[sessionmaker[Session]]:
    """Sessions as the non-owner app role, so row-level security applies."""
    engine = make_engine(app_url(cloud_settings), pool_size=4)
    yield make_session_factory(engine)
    engine.dispose()


@dataclass(frozen=True)
class Member:
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    email: str


def _new_member(owner_session: Session) -> Member:
    tenant_id, user_id = uuid.uuid4(), uuid.uuid4()
    address = f"student-{user_id.hex[:8]}@example.com"
    owner_session.execute(
        text("INSERT INTO tenants (id, name, slug) VALUES (:id, 'Quiet Hall', :slug)"),
        {"id": tenant_id, "slug": f"hall-{tenant_id.hex[:8]}"},
    )
    owner_session.execute(
        text("INSERT INTO users (id, email) VALUES (:id, :email)"), {"id": user_id, "email": address}
    )
    owner_session.commit()
    return Member(tenant_id, user_id, address)


@pytest.fixture
def member(owner_session: Session) -> Member:
    return _new_member(owner_session)


@pytest.fixture
def other_member(owner_session: Session) -> Member:
    return _new_member(owner_session)


def confirmation_rows(
    who: Member, subject: str, *, address: str | None = None, profile: RecipientProfile | None = None
) -> list[OutboxRow]:
    recipient = profile or RecipientProfile(user_id=who.user_id, email=address or who.email)
    return plan_rows(
        EventKind.BOOKING_CONFIRMED,
        subject,
        recipient,
        SAMPLE_CONTEXTS[EventKind.BOOKING_CONFIRMED],
        tenant_id=who.tenant_id,
        library_id=None,
        library_tz="Asia/Kolkata",
        now=NOW,
        channels=[ChannelKind.EMAIL],
    )
