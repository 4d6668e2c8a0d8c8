"""The phone OTP through the outbox: queued as a platform SMS row, sent by the worker to the local
Twilio fake, then scrubbed; a login with the code works."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from cloud.db import scoped_transaction
from cloud.notifications.channels.sms import SmsChannel, TwilioSettings
from cloud.notifications.fake_providers import FakeTwilio, ServerThread
from cloud.notifications.kinds import ChannelKind
from cloud.notifications.models import OutboxRecord
from cloud.notifications.outbox import OutboxOtpSender
from cloud.notifications.worker import OutboxWorker
from tests.cloud.outbox.conftest import Member

SID = "AC" + "2" * 32
TOKEN = "outbox-twilio-token"
PHONE = "+919812345678"


@pytest.fixture(scope="module")
def twilio() -> Iterator[tuple[FakeTwilio, str]]:
    fake = FakeTwilio(SID, TOKEN)
    with ServerThread(fake.app) as base_url:
        yield fake, base_url


async def test_otp_goes_out_as_sms_and_is_not_kept(
    cloud_app: FastAPI,
    cloud_client: httpx.AsyncClient,
    app_sessions: sessionmaker[Session],
    owner_session: Session,
    member: Member,
    twilio: tuple[FakeTwilio, str],
) -> None:
    fake, base_url = twilio
    cloud_app.state.otp_sender = OutboxOtpSender(cloud_app.state.session_factory)
    registered = await cloud_client.post(
        "/api/v1/auth/register",
        json={"email": "otp-outbox@example.com", "password": "password 123", "phone": PHONE},
    )
    assert registered.status_code == 201, registered.text
    assert (await cloud_client.post("/api/v1/auth/otp/request", json={"phone": PHONE})).status_code == 202

    with scoped_transaction(app_sessions, tenant_id=member.tenant_id) as session:
        assert session.scalar(select(func.count()).select_from(OutboxRecord)) == 0  # platform only
    settings = TwilioSettings(
        account_sid=SID, auth_token=SecretStr(TOKEN), from_number="+15005550006", base_url=base_url
    )
    channel = SmsChannel(settings)
    try:
        assert await OutboxWorker(app_sessions, {ChannelKind.SMS: channel}).drain() == 1
    finally:
        await channel.aclose()
    [sms] = [message for message in fake.messages if message["To"] == PHONE]
    code = next(word for word in sms["Body"].split() if word.isdigit() and len(word) == 6)
    status, context = owner_session.execute(text("SELECT status, context FROM notification_outbox")).one()
    assert status == "sent" and context == {}
    login = await cloud_client.post("/api/v1/auth/otp/verify", json={"phone": PHONE, "code": code})
    assert login.status_code == 200 and "access_token" in login.json()
