"""Preferences of the signed-in user, one-click unsubscribe with signed links, Twilio status callbacks."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from cloud.db import scoped_transaction
from cloud.identity.roles import Role
from cloud.notifications.channels.sms import TwilioSettings, twilio_signature
from cloud.notifications.config import NotificationSettings
from cloud.notifications.kinds import EventKind
from cloud.notifications.outbox import enqueue
from cloud.notifications.unsubscribe import make_unsubscribe_token
from tests.cloud.outbox.conftest import Member, confirmation_rows

PREFS = "/api/v1/users/me/notification-preferences"
UNSUBSCRIBE = "/api/v1/notifications/unsubscribe"
STATUS = "/api/v1/notifications/twilio/status"
SECRET = "unsubscribe-secret-for-outbox-tests-0123456789"
TWILIO_TOKEN = "twilio-auth-token"


def _configure(app: FastAPI) -> None:
    app.state.notification_settings = NotificationSettings(
        _env_file=None,
        unsubscribe_secret=SecretStr(SECRET),
        unsubscribe_base_url=f"http://test{UNSUBSCRIBE}",
        twilio=TwilioSettings(
            account_sid="AC" + "1" * 32, auth_token=SecretStr(TWILIO_TOKEN), from_number="+15005550006"
        ),
    )


async def test_preferences_read_and_patch(cloud_client: httpx.AsyncClient, make_account: Any) -> None:
    student = await make_account(Role.STUDENT)
    first = await cloud_client.get(PREFS, headers=student.headers)
    assert first.status_code == 200 and first.json()["language"] == "en"
    patch = {
        "language": "hi",
        "quiet_hours": {"start": "22:00", "end": "07:00"},
        "disabled": {"booking_reminder": ["sms"]},
    }
    changed = await cloud_client.patch(PREFS, json=patch, headers=student.headers)
    assert changed.status_code == 200, changed.text
    again = (await cloud_client.get(PREFS, headers=student.headers)).json()
    assert again["language"] == "hi" and again["quiet_hours"] == {"start": "22:00:00", "end": "07:00:00"}
    assert again["disabled"] == {"booking_reminder": ["sms"]}
    cleared = await cloud_client.patch(PREFS, json={"quiet_hours": None}, headers=student.headers)
    assert cleared.json()["quiet_hours"] is None and cleared.json()["language"] == "hi"
    bad = await cloud_client.patch(PREFS, json={"language": "fr"}, headers=student.headers)
    assert bad.status_code == 422 and "error" in bad.json()
    assert (await cloud_client.get(PREFS)).status_code == 401


async def test_one_click_unsubscribe_turns_email_off(
    cloud_app: FastAPI, cloud_client: httpx.AsyncClient, make_account: Any
) -> None:
    _configure(cloud_app)
    student = await make_account(Role.STUDENT)
    token = make_unsubscribe_token(SECRET, str(student.id), None)
    page = await cloud_client.get(UNSUBSCRIBE, params={"token": token})
    assert page.status_code == 200 and "<form method=post" in page.text
    assert (await cloud_client.get(PREFS, headers=student.headers)).json()["disabled_everywhere"] == []
    done = await cloud_client.post(
        UNSUBSCRIBE,
        params={"token": token},
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200 and done.json()["unsubscribed"] is True
    assert (await cloud_client.get(PREFS, headers=student.headers)).json()["disabled_everywhere"] == ["email"]
    one_kind = make_unsubscribe_token(SECRET, str(student.id), EventKind.OWNER_ANNOUNCEMENT)
    assert (await cloud_client.post(UNSUBSCRIBE, params={"token": one_kind})).status_code == 200
    prefs = (await cloud_client.get(PREFS, headers=student.headers)).json()
    assert prefs["disabled"] == {"owner_announcement": ["email"]}

    forged = make_unsubscribe_token("another-secret-that-is-long-enough-000000", str(student.id), None)
    rejected = await cloud_client.post(UNSUBSCRIBE, params={"token": forged})
    assert rejected.status_code == 400 and rejected.json()["error"]["code"] == "invalid_token"
    expired = make_unsubscribe_token(
        SECRET, str(student.id), None, now=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    )
    assert (await cloud_client.post(UNSUBSCRIBE, params={"token": expired})).status_code == 400
    assert (await cloud_client.post(UNSUBSCRIBE, params={"token": "garbage"})).status_code == 400


async def test_twilio_status_callback_is_verified_and_dead_letters_undelivered(
    cloud_app: FastAPI,
    cloud_client: httpx.AsyncClient,
    app_sessions: sessionmaker[Session],
    owner_session: Session,
    member: Member,
) -> None:
    _configure(cloud_app)
    with scoped_transaction(app_sessions, tenant_id=member.tenant_id) as session:
        enqueue(session, confirmation_rows(member, "booking:sms"))
    owner_session.execute(
        text("UPDATE notification_outbox SET status = 'sent', provider_message_id = 'SM123'")
    )
    owner_session.commit()
    params = {"MessageSid": "SM123", "MessageStatus": "undelivered", "ErrorCode": "30003"}
    url = f"http://test{STATUS}"
    unsigned = await cloud_client.post(STATUS, data=params)
    assert unsigned.status_code == 403
    wrong = await cloud_client.post(
        STATUS, data=params, headers={"X-Twilio-Signature": twilio_signature("nope", url, params)}
    )
    assert wrong.status_code == 403
    signed = await cloud_client.post(
        STATUS, data=params, headers={"X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, url, params)}
    )
    assert signed.status_code == 204, signed.text
    status, error = owner_session.execute(text("SELECT status, last_error FROM notification_outbox")).one()
    assert status == "dead" and "30003" in error
