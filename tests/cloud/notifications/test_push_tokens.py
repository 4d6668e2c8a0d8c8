"""Push tokens through the API: register (idempotent), list, delete; booking messages are addressed to
every registered device, and a token deleted before the worker runs is not sent to."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.orm import Session

from cloud.identity.roles import Role
from cloud.notifications.channels.base import Channel
from cloud.notifications.channels.push import PushChannel
from cloud.notifications.kinds import ChannelKind
from cloud.notifications.worker import OutboxWorker
from tests.cloud.booking.conftest import build_library
from tests.cloud.outbox.conftest import email_channel

from .conftest import DEVICE_TOKEN, RunningFake, SmtpServer
from .test_announcements import add_booking
from .test_push_channel import settings

TOKENS = "/api/v1/users/me/push-tokens"
TABLET_TOKEN = "tB7:APA91b-second-device-of-the-student-01"


async def register(client: httpx.AsyncClient, who: Any, token: str, platform: str) -> httpx.Response:
    return await client.post(TOKENS, json={"token": token, "platform": platform}, headers=who.headers)


async def test_register_list_delete_and_bad_input(cloud_client: httpx.AsyncClient, make_account: Any) -> None:
    student, other = await make_account(Role.STUDENT), await make_account(Role.STUDENT)
    first = await register(cloud_client, student, DEVICE_TOKEN, "android")
    again = await register(cloud_client, student, f"  {DEVICE_TOKEN} ", "ios")
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"] and again.json()["platform"] == "ios"
    assert (await register(cloud_client, student, TABLET_TOKEN, "web")).status_code == 201
    listed = (await cloud_client.get(TOKENS, headers=student.headers)).json()
    assert [item["platform"] for item in listed] == ["ios", "web"]
    assert (await cloud_client.get(TOKENS, headers=other.headers)).json() == []

    for token, platform in (
        ("short", "android"),
        ("has spaces in it but long enough", "ios"),
        (DEVICE_TOKEN, "symbian"),
    ):
        refused = await register(cloud_client, student, token, platform)
        assert refused.status_code == 422 and "error" in refused.json(), (token, platform)

    token_id = first.json()["id"]
    assert (await cloud_client.delete(f"{TOKENS}/{token_id}", headers=other.headers)).status_code == 404
    assert (await cloud_client.delete(f"{TOKENS}/{token_id}", headers=student.headers)).status_code == 204
    assert (await cloud_client.delete(f"{TOKENS}/{token_id}", headers=student.headers)).status_code == 404
    assert len((await cloud_client.get(TOKENS, headers=student.headers)).json()) == 1


async def test_booking_message_goes_to_each_device_still_registered(
    cloud_app: FastAPI,
    cloud_client: httpx.AsyncClient,
    make_account: Any,
    owner_session: Session,
    smtp_plain: SmtpServer,
    fcm: RunningFake,
    rsa_key_pem: tuple[str, str],
) -> None:
    owner, student = await make_account(Role.LIBRARY_OWNER), await make_account(Role.STUDENT)
    library = await build_library(cloud_client, owner)
    assert (await register(cloud_client, student, DEVICE_TOKEN, "android")).status_code == 201
    tablet = await register(cloud_client, student, TABLET_TOKEN, "web")
    hour = dt.timedelta(hours=1)
    add_booking(
        owner_session, library, "A1", student.id, start=5 * hour, end=6 * hour, status="pending_payment"
    )
    booking_id = owner_session.execute(
        text("SELECT id FROM bookings WHERE user_id = :u"), {"u": student.id}
    ).scalar_one()

    # the owner takes cash at the desk: the confirmation is queued in the owner's tenant scope
    confirmed = await cloud_client.post(f"/api/v1/bookings/{booking_id}/confirm", headers=owner.headers)
    assert confirmed.status_code == 200, confirmed.text
    rows = owner_session.execute(
        text("SELECT channel, recipient FROM notification_outbox WHERE recipient_user_id = :u ORDER BY 1, 2"),
        {"u": student.id},
    ).all()
    assert [tuple(row) for row in rows] == [
        ("email", student.email),
        ("push", DEVICE_TOKEN),
        ("push", TABLET_TOKEN),
    ]
    gone = await cloud_client.delete(f"{TOKENS}/{tablet.json()['id']}", headers=student.headers)
    assert gone.status_code == 204  # the student logged out on the tablet before the worker ran

    push = PushChannel(settings(fcm.base_url, rsa_key_pem[0]))
    channels: dict[ChannelKind, Channel] = {
        ChannelKind.EMAIL: email_channel(smtp_plain.port),
        ChannelKind.PUSH: push,
    }
    await OutboxWorker(cloud_app.state.session_factory, channels).drain()
    for channel in channels.values():
        await channel.aclose()
    statuses = owner_session.execute(
        text(
            "SELECT recipient, status FROM notification_outbox"
            " WHERE channel = 'push' AND recipient_user_id = :u"
        ),
        {"u": student.id},
    ).all()
    assert {row.recipient: row.status for row in statuses} == {
        DEVICE_TOKEN: "sent",
        TABLET_TOKEN: "suppressed",
    }
    assert fcm.fake.messages[-1]["message"]["token"] == DEVICE_TOKEN
    assert fcm.fake.messages[-1]["message"]["data"]["kind"] == "booking_confirmed"
