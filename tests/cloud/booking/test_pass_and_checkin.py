"""QR passes (signed with the tenant key, verifiable offline), revocations, staff check-in, the demo."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import uuid
from typing import Any

import httpx
import segno
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.orm import Session

from cloud.booking import service
from cloud.db import platform_scope
from cloud.identity.roles import Role
from shared.passes import public_key_from_text, short_id, verify_pass
from tests.cloud.booking.conftest import LibrarySetup, build_library
from tests.cloud.booking.helpers import ALL_DAY, hourly, now_slot, slot

BOOKINGS = "/api/v1/bookings"


def _public_keys(owner_session: Session) -> dict[str, Any]:
    rows = owner_session.execute(text("SELECT kid, public_key FROM pass_signing_keys")).all()
    return {kid: public_key_from_text(public) for kid, public in rows}


def _decode_qr(image: Any) -> str:
    result = subprocess.run(
        ["zbarimg", "--quiet", "--raw", str(image)], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


async def _now_library(client: httpx.AsyncClient, owner: Any) -> LibrarySetup:
    return await build_library(client, owner, name="Always Open", extra={"opening_hours": ALL_DAY})


async def test_pass_is_signed_by_the_tenant_key_and_verifies_offline(
    cloud_client: httpx.AsyncClient, owner: Any, student: Any, owner_session: Session
) -> None:
    setup = await _now_library(cloud_client, owner)
    booking = (
        await cloud_client.post(
            BOOKINGS, json=hourly(setup, "A1", now_slot(), "Free hour"), headers=student.headers
        )
    ).json()
    response = await cloud_client.get(f"{BOOKINGS}/{booking['id']}/pass", headers=student.headers)
    assert response.status_code == 200, response.text
    payload = response.json()["qr_payload"]
    assert len(payload) <= 180
    claims = verify_pass(
        payload,
        public_keys=_public_keys(owner_session),
        library=short_id(setup.id),
        now=dt.datetime.now(dt.UTC),
    )
    assert claims.target == short_id(setup.seat("A1")["id"]) and claims.holder == short_id(student.id)
    assert claims.valid_until == dt.datetime.fromisoformat(booking["end"])
    again = (await cloud_client.get(f"{BOOKINGS}/{booking['id']}/pass", headers=student.headers)).json()
    assert again["pass_id"] == claims.pass_id  # one pass per booking, re-signed on demand
    assert int(segno.make(payload, error="m", micro=False).version) <= 7


async def test_pass_png_is_a_qr_code_of_the_payload(
    cloud_client: httpx.AsyncClient, owner: Any, student: Any, tmp_path: Any
) -> None:
    setup = await _now_library(cloud_client, owner)
    booking = (
        await cloud_client.post(
            BOOKINGS, json=hourly(setup, "A1", now_slot(), "Free hour"), headers=student.headers
        )
    ).json()
    png = await cloud_client.get(f"{BOOKINGS}/{booking['id']}/pass.png", headers=student.headers)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    image = tmp_path / "pass.png"
    image.write_bytes(png.content)
    decoded = _decode_qr(image)
    payload = (await cloud_client.get(f"{BOOKINGS}/{booking['id']}/pass", headers=student.headers)).json()
    assert decoded == payload["qr_payload"]


async def test_concurrent_first_pass_requests_agree_on_one_pass_id(
    cloud_client: httpx.AsyncClient, owner: Any, student: Any, owner_session: Session
) -> None:
    """The student page asks for the pass and its PNG at once: the first signing assigns the pass id,
    and a request racing it must sign the same one (a second id would open the door offline while the
    edge's seat map and the cloud's check-in know only the stored one)."""
    setup = await _now_library(cloud_client, owner)
    for seat in ("A1", "A2", "A3"):  # the library allows 3 active bookings per student
        booking = (
            await cloud_client.post(
                BOOKINGS, json=hourly(setup, seat, now_slot(), "Free hour"), headers=student.headers
            )
        ).json()
        assert "id" in booking, booking
        url = f"{BOOKINGS}/{booking['id']}/pass"
        answers = await asyncio.gather(*(cloud_client.get(url, headers=student.headers) for _ in range(6)))
        pass_ids = {answer.json()["pass_id"] for answer in answers}
        stored = owner_session.execute(
            text("SELECT pass_id FROM bookings WHERE id = :id"), {"id": booking["id"]}
        ).scalar_one()
        assert pass_ids == {stored}


async def test_no_pass_before_payment_and_cancel_revokes_it(
    cloud_client: httpx.AsyncClient, setup_library: LibrarySetup, student: Any, owner_session: Session
) -> None:
    held = (
        await cloud_client.post(
            BOOKINGS, json=hourly(setup_library, "A1", slot(2, "10:00", "12:00")), headers=student.headers
        )
    ).json()
    unpaid = await cloud_client.get(f"{BOOKINGS}/{held['id']}/pass", headers=student.headers)
    assert unpaid.status_code == 409 and unpaid.json()["error"]["code"] == "payment_pending"
    await cloud_client.post(f"{BOOKINGS}/{held['id']}/confirm", headers=setup_library.owner.headers)
    issued = (await cloud_client.get(f"{BOOKINGS}/{held['id']}/pass", headers=student.headers)).json()
    cancel = await cloud_client.post(f"{BOOKINGS}/{held['id']}/cancel", headers=student.headers)
    assert cancel.status_code == 200, cancel.text
    revoked = owner_session.execute(text("SELECT pass_id, reason, library_id FROM revocations")).all()
    assert [(r.pass_id, r.reason, str(r.library_id)) for r in revoked] == [
        (issued["pass_id"], "cancelled", setup_library.id)
    ]
    gone = await cloud_client.get(f"{BOOKINGS}/{held['id']}/pass", headers=student.headers)
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "pass_revoked"


async def test_moving_a_booking_revokes_the_old_pass(
    cloud_client: httpx.AsyncClient, setup_library: LibrarySetup, student: Any, owner_session: Session
) -> None:
    body = hourly(setup_library, "A1", slot(2, "10:00", "12:00"), "Free hour")
    booking = (await cloud_client.post(BOOKINGS, json=body, headers=student.headers)).json()
    old = (await cloud_client.get(f"{BOOKINGS}/{booking['id']}/pass", headers=student.headers)).json()
    moved = await cloud_client.patch(
        f"{BOOKINGS}/{booking['id']}",
        json={"seat_id": setup_library.seat("A3")["id"]},
        headers=student.headers,
    )
    assert moved.status_code == 200, moved.text
    new = (await cloud_client.get(f"{BOOKINGS}/{booking['id']}/pass", headers=student.headers)).json()
    assert new["pass_id"] != old["pass_id"]
    reasons = owner_session.execute(text("SELECT pass_id, reason FROM revocations")).all()
    assert [tuple(r) for r in reasons] == [(old["pass_id"], "reissued")]


async def test_staff_check_in_sets_checked_in_within_the_window(
    cloud_client: httpx.AsyncClient, owner: Any, student: Any, make_account: Any
) -> None:
    setup = await _now_library(cloud_client, owner)
    now_booking = (
        await cloud_client.post(
            BOOKINGS, json=hourly(setup, "A1", now_slot(), "Free hour"), headers=student.headers
        )
    ).json()
    denied = await cloud_client.post(f"{BOOKINGS}/{now_booking['id']}/check-in", headers=student.headers)
    assert denied.status_code == 403
    outsider = await make_account(Role.LIBRARY_OWNER)
    foreign = await cloud_client.post(f"{BOOKINGS}/{now_booking['id']}/check-in", headers=outsider.headers)
    assert foreign.status_code == 404
    done = await cloud_client.post(f"{BOOKINGS}/{now_booking['id']}/check-in", headers=owner.headers)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "checked_in" and done.json()["checked_in_at"] is not None
    later = (
        await cloud_client.post(
            BOOKINGS,
            json=hourly(setup, "A2", slot(2, "10:00", "11:00"), "Free hour"),
            headers=student.headers,
        )
    ).json()
    early = await cloud_client.post(f"{BOOKINGS}/{later['id']}/check-in", headers=owner.headers)
    assert early.status_code == 409 and early.json()["error"]["code"] == "outside_checkin_window"


async def test_no_show_release_and_completion_jobs(
    cloud_app: FastAPI, cloud_client: httpx.AsyncClient, owner: Any, student: Any
) -> None:
    setup = await _now_library(cloud_client, owner)
    absent = (
        await cloud_client.post(
            BOOKINGS, json=hourly(setup, "A1", now_slot(), "Free hour"), headers=student.headers
        )
    ).json()
    present = (
        await cloud_client.post(
            BOOKINGS, json=hourly(setup, "A2", now_slot(), "Free hour"), headers=student.headers
        )
    ).json()
    await cloud_client.post(f"{BOOKINGS}/{present['id']}/check-in", headers=owner.headers)
    start = dt.datetime.fromisoformat(absent["start"])
    with cloud_app.state.session_factory() as session:
        platform_scope(session)
        assert service.release_no_shows(session, start + dt.timedelta(minutes=14)) == []
        released = service.release_no_shows(session, start + dt.timedelta(minutes=15))
        completed = service.complete_finished(session, start + dt.timedelta(hours=1))
    assert [r.booking_id for r in released] == [uuid.UUID(absent["id"])] and completed == 1
    statuses = {
        b["id"]: b["status"]
        for b in (await cloud_client.get(BOOKINGS, headers=student.headers)).json()["items"]
    }
    assert statuses == {absent["id"]: "no_show", present["id"]: "completed"}


async def test_issue_demo_booking_returns_a_pass_valid_now(
    cloud_app: FastAPI, cloud_client: httpx.AsyncClient, owner: Any, student: Any, owner_session: Session
) -> None:
    setup = await build_library(cloud_client, owner)  # opening hours do not restrict the demo pass
    with cloud_app.state.session_factory() as session:
        booking_id, payload = service.issue_demo_booking(
            session,
            library_id=uuid.UUID(setup.id),
            seat_id=uuid.UUID(setup.seat("A1")["id"]),
            user_id=student.id,
            master_key=cloud_app.state.master_key,
        )
    claims = verify_pass(
        payload,
        public_keys=_public_keys(owner_session),
        library=short_id(setup.id),
        now=dt.datetime.now(dt.UTC),
    )
    assert claims.holder == short_id(student.id)
    booking = (await cloud_client.get(f"{BOOKINGS}/{booking_id}", headers=student.headers)).json()
    assert booking["status"] == "confirmed"
    same = (await cloud_client.get(f"{BOOKINGS}/{booking_id}/pass", headers=student.headers)).json()
    assert same["pass_id"] == claims.pass_id


async def test_repeated_no_shows_block_self_service_booking(
    cloud_app: FastAPI, cloud_client: httpx.AsyncClient, owner: Any, student: Any
) -> None:
    setup = await _now_library(cloud_client, owner)
    rules = {"no_show_limit": 2, "no_show_window_days": 30, "no_show_block_days": 7}
    await cloud_client.patch(f"/api/v1/libraries/{setup.id}", json={"rules": rules}, headers=owner.headers)
    for seat in ("A1", "A2"):
        body = hourly(setup, seat, now_slot(), "Free hour")
        assert (await cloud_client.post(BOOKINGS, json=body, headers=student.headers)).status_code == 201
    with cloud_app.state.session_factory() as session:
        platform_scope(session)
        assert len(service.release_no_shows(session, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=16))) == 2
    later = hourly(setup, "A3", slot(2, "10:00", "11:00"), "Free hour")
    blocked = await cloud_client.post(BOOKINGS, json=later, headers=student.headers)
    assert blocked.status_code == 403 and blocked.json()["error"]["code"] == "booking_blocked"
    until = dt.datetime.fromisoformat(blocked.json()["error"]["details"]["until"])
    assert dt.timedelta(days=6) < until - dt.datetime.now(dt.UTC) <= dt.timedelta(days=7, minutes=17)
    by_staff = await cloud_client.post(
        BOOKINGS, json={**later, "user_id": str(student.id)}, headers=owner.headers
    )
    assert by_staff.status_code == 201, by_staff.text
