"""Owner announcements through the API, the outbox worker, the aiosmtpd server and the FCM fake:
members only, each in their language, per-kind opt-outs kept, stale push tokens cleaned up;
plus the per-library daily limit, validation and tenant isolation."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.orm import Session

from cloud.identity.roles import Role
from cloud.models_common import utcnow
from cloud.notifications.announcements import ANNOUNCEMENTS_PER_DAY
from cloud.notifications.channels.base import Channel
from cloud.notifications.channels.console import ConsoleChannel
from cloud.notifications.channels.push import PushChannel
from cloud.notifications.kinds import ChannelKind
from cloud.notifications.worker import OutboxWorker
from tests.cloud.booking.conftest import LibrarySetup, build_library
from tests.cloud.outbox.conftest import email_channel

from .conftest import DEVICE_TOKEN, RunningFake, SmtpServer
from .test_push_channel import settings

STALE_TOKEN = "cW1:APA91b-app-uninstalled-since-0000001"
TRUNCATED_TOKEN = "eR2:APA91b-truncated-by-the-client-0001"
HINDI_SUBJECT = "रविवार को बंद"


def path(library: LibrarySetup) -> str:
    return f"/api/v1/libraries/{library.id}/announcements"


def add_booking(session: Session, library: LibrarySetup, seat: str, user_id: uuid.UUID, **at: Any) -> None:
    """A booking written straight to the table: `start`/`end` relative to now, `status`."""
    now = utcnow()
    session.execute(
        text(
            "INSERT INTO bookings (tenant_id, library_id, seat_id, user_id, kind, status, during,"
            " price_minor, currency) SELECT tenant_id, library_id, id, :user, 'hourly', :status,"
            " tstzrange(:start, :end), 5000, 'INR' FROM seats WHERE id = :seat"
        ),
        {
            "user": user_id,
            "seat": library.seat(seat)["id"],
            "status": at.get("status", "confirmed"),
            "start": now + at["start"],
            "end": now + at["end"],
        },
    )
    session.commit()


async def test_announcement_reaches_members_in_their_language_and_cleans_stale_tokens(
    cloud_app: FastAPI,
    cloud_client: httpx.AsyncClient,
    make_account: Any,
    owner_session: Session,
    smtp_plain: SmtpServer,
    fcm: RunningFake,
    rsa_key_pem: tuple[str, str],
) -> None:
    owner = await make_account(Role.LIBRARY_OWNER)
    library = await build_library(cloud_client, owner, name="Sunrise Library")
    here, hindi, opted_out, lapsed, cancelled = [await make_account(Role.STUDENT) for _ in range(5)]
    hour = dt.timedelta(hours=1)
    add_booking(owner_session, library, "A1", here.id, start=-hour, end=hour, status="checked_in")
    add_booking(owner_session, library, "A2", hindi.id, start=24 * hour, end=26 * hour)
    add_booking(
        owner_session, library, "A3", opted_out.id, start=-72 * hour, end=-70 * hour, status="completed"
    )
    add_booking(owner_session, library, "A1", lapsed.id, start=-40 * 24 * hour, end=-40 * 24 * hour + hour)
    add_booking(owner_session, library, "C1", cancelled.id, start=hour, end=2 * hour, status="cancelled")
    prefs = "/api/v1/users/me/notification-preferences"
    assert (
        await cloud_client.patch(prefs, json={"language": "hi"}, headers=hindi.headers)
    ).status_code == 200
    opt_out = {"disabled": {"owner_announcement": ["email"]}}
    assert (await cloud_client.patch(prefs, json=opt_out, headers=opted_out.headers)).status_code == 200
    fcm.fake.malformed_tokens.add(TRUNCATED_TOKEN)
    for token in (DEVICE_TOKEN, STALE_TOKEN, TRUNCATED_TOKEN):
        device = {"token": token, "platform": "android"}
        response = await cloud_client.post("/api/v1/users/me/push-tokens", json=device, headers=here.headers)
        assert response.status_code == 201, response.text

    body = {
        "subject": "Closed on Sunday",
        "message": "The hall is closed on Sunday for maintenance.",
        "translations": {"hi": {"subject": HINDI_SUBJECT, "message": "रविवार को हॉल बंद रहेगा।"}},
    }
    created = await cloud_client.post(path(library), json=body, headers=owner.headers)
    assert created.status_code == 201, created.text
    assert created.json()["recipients"] == 3  # here, hindi, opted_out: not the lapsed or cancelled ones

    push = PushChannel(settings(fcm.base_url, rsa_key_pem[0]))
    channels: dict[ChannelKind, Channel] = {
        ChannelKind.EMAIL: email_channel(smtp_plain.port),
        ChannelKind.PUSH: push,
        ChannelKind.CONSOLE: ConsoleChannel(io.StringIO()),
    }
    await OutboxWorker(cloud_app.state.session_factory, channels).drain()
    for channel in channels.values():
        await channel.aclose()

    inbox = smtp_plain.handler
    assert inbox.last_to(here.email)["Subject"] == "Sunrise Library: Closed on Sunday"
    assert inbox.last_to(hindi.email)["Subject"] == f"Sunrise Library: {HINDI_SUBJECT}"
    mailed = {address for envelope, _, _ in inbox.received for address in envelope.rcpt_tos}
    assert not mailed & {opted_out.email, lapsed.email, cancelled.email}
    pushed = [m["message"] for m in fcm.fake.messages if m["message"]["data"]["kind"] == "owner_announcement"]
    assert [(m["token"], m["notification"]["title"]) for m in pushed][-1:] == [
        (DEVICE_TOKEN, "Sunrise Library: Closed on Sunday")
    ]
    left = await cloud_client.get("/api/v1/users/me/push-tokens", headers=here.headers)
    assert [item["token_hint"] for item in left.json()] == ["…" + DEVICE_TOKEN[-8:]]  # both dead ones removed

    listed = (await cloud_client.get(path(library), headers=owner.headers)).json()
    assert [(item["subject"], item["recipients"]) for item in listed] == [("Closed on Sunday", 3)]
    assert listed[0]["translations"]["hi"]["subject"] == HINDI_SUBJECT
    audit = owner_session.execute(
        text(
            "SELECT count(*) FROM audit_log"
            " WHERE action = 'notifications.announcement.sent' AND tenant_id = :t"
        ),
        {"t": owner.tenant_id},
    ).scalar_one()
    assert audit == 1


async def test_daily_limit_validation_and_tenant_isolation(
    cloud_client: httpx.AsyncClient, make_account: Any
) -> None:
    owner = await make_account(Role.LIBRARY_OWNER)
    library = await build_library(cloud_client, owner)
    body = {"subject": "Notice", "message": "Fans are being serviced today."}
    for number in range(ANNOUNCEMENTS_PER_DAY):
        sent = await cloud_client.post(
            path(library), json=body | {"subject": f"Notice {number}"}, headers=owner.headers
        )
        assert sent.status_code == 201 and sent.json()["recipients"] == 0, sent.text
    refused = await cloud_client.post(path(library), json=body, headers=owner.headers)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) > 0
    listed = (await cloud_client.get(path(library), headers=owner.headers)).json()
    assert (
        len(listed) == ANNOUNCEMENTS_PER_DAY and listed[0]["subject"] == f"Notice {ANNOUNCEMENTS_PER_DAY - 1}"
    )

    other = await make_account(Role.LIBRARY_OWNER)
    for bad in (
        body | {"message": "x" * 2001},
        body | {"subject": "  "},
        body | {"translations": {"fr": {"subject": "Avis", "message": "Bonjour"}}},
        body | {"audience": "everyone"},
    ):
        response = await cloud_client.post(path(library), json=bad, headers=other.headers)
        assert response.status_code == 422 and "error" in response.json(), bad
    for method in ("POST", "GET"):  # the catalogue's rule: another tenant's library is forbidden
        response = await cloud_client.request(method, path(library), json=body, headers=other.headers)
        assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
    missing = f"/api/v1/libraries/{uuid.uuid4()}/announcements"
    assert (await cloud_client.post(missing, json=body, headers=owner.headers)).status_code == 404
