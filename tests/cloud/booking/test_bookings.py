"""Bookings through the API: time zones, holds, conflicts with alternatives, rules, modify, cancel."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.orm import Session

from cloud.booking import service
from cloud.db import platform_scope
from cloud.identity.roles import Role
from tests.cloud.booking.conftest import LibrarySetup, build_library, new_id
from tests.cloud.booking.helpers import ALL_DAY, at, hourly, local_day, slot

BOOKINGS = "/api/v1/bookings"


async def _book(client: httpx.AsyncClient, account: Any, body: dict[str, Any]) -> httpx.Response:
    return await client.post(BOOKINGS, json=body, headers=account.headers)


async def test_hourly_booking_is_held_stored_utc_and_shown_in_library_zone(
    cloud_client: httpx.AsyncClient, setup_library: LibrarySetup, student: Any, owner_session: Session
) -> None:
    # sent in UTC, shown back in New York time
    response = await _book(
        cloud_client, student, hourly(setup_library, "A1", slot(2, "10:00", "12:00", utc=True))
    )
    assert response.status_code == 201, response.text
    booking = response.json()
    assert booking["status"] == "pending_payment" and booking["checked_in_at"] is None
    assert booking["timezone"] == "America/New_York"
    assert dt.datetime.fromisoformat(booking["start"]) == at(2, "10:00")
    assert booking["start"].startswith(at(2, "10:00").strftime("%Y-%m-%dT10:00:00"))
    assert booking["start"].endswith(at(2, "10:00").strftime("%z")[:3] + ":00")
    assert (booking["price_minor"], booking["currency"]) == (10000, "INR")
    held_for = dt.datetime.fromisoformat(booking["hold_expires_at"]) - dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=9) < held_for <= dt.timedelta(minutes=10)
    stored = owner_session.execute(
        text("SELECT lower(during), upper(during), lower_inc(during), upper_inc(during) FROM bookings")
    ).one()
    assert stored[0] == at(2, "10:00").astimezone(dt.UTC) and stored[1] == at(2, "12:00").astimezone(dt.UTC)
    assert (stored[2], stored[3]) == (True, False)


async def test_free_plan_is_confirmed_and_day_pass_covers_the_opening_hours(
    cloud_client: httpx.AsyncClient, setup_library: LibrarySetup, student: Any
) -> None:
    free = await _book(
        cloud_client, student, hourly(setup_library, "A1", slot(1, "08:00", "09:00"), "Free hour")
    )
    assert free.status_code == 201 and free.json()["status"] == "confirmed"
    assert free.json()["hold_expires_at"] is None
    body = {
        "plan_id": setup_library.plans["Day pass"]["id"],
        "seat_id": setup_library.seat("C1")["id"],
        "date": local_day(3).isoformat(),
    }
    day = await _book(cloud_client, student, body)
    assert day.status_code == 201, day.text
    assert dt.datetime.fromisoformat(day.json()["start"]) == at(3, "06:00")
    assert dt.datetime.fromisoformat(day.json()["end"]) == at(3, "22:00")
    assert day.json()["price_minor"] == 30000 and day.json()["kind"] == "day_pass"


async def test_overlap_loses_with_409_and_alternatives_but_back_to_back_is_fine(
    cloud_client: httpx.AsyncClient, setup_library: LibrarySetup, student: Any, make_account: Any
) -> None:
    other = await make_account(Role.STUDENT)
    assert (
        await _book(cloud_client, student, hourly(setup_library, "A1", slot(2, "10:00", "12:00")))
    ).status_code == 201
    clash = await _book(cloud_client, other, hourly(setup_library, "A1", slot(2, "11:00", "13:00")))
    assert clash.status_code == 409
    error = clash.json()["error"]
    assert error["code"] == "seat_taken"
    alternatives = error["details"]["alternatives"]
    assert 1 <= len(alternatives) <= 3
    assert [alt["seat_label"] for alt in alternatives] == ["A2", "A3", "C1"]  # same zone first
    assert dt.datetime.fromisoformat(alternatives[0]["start"]) == at(2, "11:00")
    back_to_back = await _book(cloud_client, other, hourly(setup_library, "A1", slot(2, "12:00", "14:00")))
    assert back_to_back.status_code == 201, back_to_back.text


async def test_later_slots_of_the_same_seat_are_offered_when_no_other_seat_is_free(
    cloud_client: httpx.AsyncClient, setup_library: LibrarySetup, student: Any, make_account: Any
) -> None:
    other = await make_account(Role.STUDENT)
    for seat, account in (("A1", student), ("A2", student), ("A3", student), ("C1", other)):
        response = await _book(cloud_client, account, hourly(setup_library, seat, slot(2, "10:00", "11:00")))
        assert response.status_code == 201, response.text
    clash = await _book(cloud_client, other, hourly(setup_library, "A1", slot(2, "10:00", "11:00")))
    alternatives = clash.json()["error"]["details"]["alternatives"]
    assert [(a["seat_label"], dt.datetime.fromisoformat(a["start"])) for a in alternatives] == [
        ("A1", at(2, "11:00")),
        ("A1", at(2, "12:00")),
        ("A1", at(2, "13:00")),
    ]


async def test_zone_booking_takes_any_free_seat_until_the_zone_is_full(
    cloud_client: httpx.AsyncClient, setup_library: LibrarySetup, make_account: Any
) -> None:
    body = {
        "plan_id": setup_library.plans["Hourly"]["id"],
        "zone_id": setup_library.zones["Quiet"]["id"],
        **slot(2, "10:00", "11:00"),
    }
    labels = []
    for _ in range(3):
        response = await _book(cloud_client, await make_account(Role.STUDENT), body)
        assert response.status_code == 201, response.text
        labels.append(response.json()["seat_label"])
    assert sorted(labels) == ["A1", "A2", "A3"]
    full = await _book(cloud_client, await make_account(Role.STUDENT), body)
    assert full.status_code == 409 and full.json()["error"]["code"] == "zone_full"
    assert full.json()["error"]["details"]["alternatives"][0]["seat_label"] == "C1"


async def test_bad_booking_input_gets_a_clear_4xx(
    cloud_client: httpx.AsyncClient, setup_library: LibrarySetup, student: Any, owner: Any
) -> None:
    await cloud_client.patch(
        f"/api/v1/libraries/{setup_library.id}",
        json={"closures": [{"date": local_day(4).isoformat(), "reason": "Holiday"}]},
        headers=owner.headers,
    )
    other = await build_library(cloud_client, owner, name="Other Library")
    plan = setup_library.plans["Hourly"]["id"]
    seat = setup_library.seat("A1")["id"]
    naive = at(2, "10:00").replace(tzinfo=None).isoformat()
    far = dt.datetime(2999, 1, 1, 10, tzinfo=dt.UTC)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({**hourly(setup_library, "A1", slot(2, "04:00", "05:00"))}, 422, "outside_opening_hours"),
        ({**hourly(setup_library, "A1", slot(2, "21:00", "23:00"))}, 422, "outside_opening_hours"),
        ({**hourly(setup_library, "A1", slot(2, "12:00", "10:00"))}, 422, "invalid_range"),
        ({**hourly(setup_library, "A1", slot(-2, "10:00", "12:00"))}, 422, "in_past"),
        ({**hourly(setup_library, "A1", slot(2, "10:00", "10:10"))}, 422, "invalid_duration"),
        ({**hourly(setup_library, "A1", slot(2, "06:00", "21:00"))}, 422, "invalid_duration"),
        ({**hourly(setup_library, "A1", slot(4, "10:00", "12:00"))}, 422, "library_closed"),
        ({**hourly(setup_library, "A1", slot(60, "10:00", "12:00"))}, 422, "beyond_booking_window"),
        (
            {
                "plan_id": plan,
                "seat_id": seat,
                "start": far.isoformat(),
                "end": (far + dt.timedelta(days=400)).isoformat(),
            },
            422,
            "beyond_booking_window",
        ),
        (
            {
                "plan_id": plan,
                "seat_id": seat,
                "start": "0001-01-01T00:00:00Z",
                "end": "9999-12-31T00:00:00Z",
            },
            422,
            "in_past",
        ),
        (
            {"plan_id": plan, "seat_id": other.seat("A1")["id"], **slot(2, "10:00", "12:00")},
            422,
            "seat_not_in_library",
        ),
        (
            {"plan_id": plan, "zone_id": other.zones["Quiet"]["id"], **slot(2, "10:00", "12:00")},
            422,
            "zone_not_in_library",
        ),
        ({"plan_id": new_id(), "seat_id": seat, **slot(2, "10:00", "12:00")}, 422, "unknown_plan"),
        ({"plan_id": plan, "seat_id": new_id(), **slot(2, "10:00", "12:00")}, 422, "unknown_seat"),
        (
            {"plan_id": setup_library.plans["Morning"]["id"], "seat_id": seat, **slot(2, "10:00", "12:00")},
            422,
            "plan_not_bookable",
        ),
        ({"plan_id": plan, "seat_id": seat, "date": local_day(2).isoformat()}, 422, "start_and_end_required"),
        (
            {"plan_id": setup_library.plans["Day pass"]["id"], "seat_id": seat, **slot(2, "10:00", "12:00")},
            422,
            "date_required",
        ),
        ({"plan_id": plan, "seat_id": seat, "start": naive, "end": naive}, 422, "validation_error"),
        (
            {
                "plan_id": plan,
                "seat_id": seat,
                "zone_id": setup_library.zones["Quiet"]["id"],
                **slot(2, "10:00", "12:00"),
            },
            422,
            "validation_error",
        ),
        ({"plan_id": plan, "seat_id": seat, "start": "yesterday", "end": "soon"}, 422, "validation_error"),
        (
            {"plan_id": plan, "seat_id": seat, **slot(2, "10:00", "12:00"), "user_id": new_id()},
            403,
            "forbidden",
        ),
        (
            {
                "plan_id": plan,
                "seat_id": seat,
                "start": "2026-11-30T10:00:30Z",
                "end": "2026-11-30T12:00:00Z",
            },
            422,
            "unaligned_time",
        ),
    ]
    for body, status, code in cases:
        response = await _book(cloud_client, student, body)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["code"] == code, (body, response.text)
    mine = await cloud_client.get(BOOKINGS, headers=student.headers)
    assert mine.json()["items"] == []  # nothing half-made


async def test_max_active_bookings_per_student(
    cloud_client: httpx.AsyncClient, setup_library: LibrarySetup, student: Any
) -> None:
    await cloud_client.patch(
        f"/api/v1/libraries/{setup_library.id}",
        json={"rules": {"max_active_bookings": 2}},
        headers=setup_library.owner.headers,
    )
    for seat in ("A1", "A2"):
        assert (
            await _book(cloud_client, student, hourly(setup_library, seat, slot(2, "10:00", "11:00")))
        ).status_code == 201
    third = await _book(cloud_client, student, hourly(setup_library, "A3", slot(3, "10:00", "11:00")))
    assert third.status_code == 409 and third.json()["error"]["code"] == "too_many_active_bookings"


async def test_staff_books_for_a_student_and_student_sees_it_in_history(
    cloud_client: httpx.AsyncClient, setup_library: LibrarySetup, student: Any, staff: Any
) -> None:
    body = {**hourly(setup_library, "A2", slot(2, "10:00", "11:00")), "user_id": str(student.id)}
    response = await _book(cloud_client, staff, body)
    assert response.status_code == 201, response.text
    for days in (3, 4):
        await _book(
            cloud_client, student, hourly(setup_library, "A1", slot(days, "10:00", "11:00"), "Free hour")
        )
    first = (await cloud_client.get(BOOKINGS, params={"limit": 2}, headers=student.headers)).json()
    second = (
        await cloud_client.get(
            BOOKINGS, params={"limit": 2, "cursor": first["next_cursor"]}, headers=student.headers
        )
    ).json()
    starts = [dt.datetime.fromisoformat(item["start"]) for item in first["items"] + second["items"]]
    assert starts == [at(4, "10:00"), at(3, "10:00"), at(2, "10:00")]
    assert second["next_cursor"] is None
    bad = await cloud_client.get(BOOKINGS, params={"cursor": "garbage!"}, headers=student.headers)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_cursor"


async def test_staff_booking_for_an_unknown_account_is_a_422_and_leaves_the_seat_free(
    cloud_client: httpx.AsyncClient, setup_library: LibrarySetup, student: Any, staff: Any
) -> None:
    body = hourly(setup_library, "A3", slot(2, "14:00", "15:00"))
    unknown = await _book(cloud_client, staff, {**body, "user_id": new_id()})
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_user"
    response = await _book(cloud_client, staff, {**body, "user_id": str(student.id)})
    assert response.status_code == 201, response.text


async def test_other_students_and_tenants_cannot_see_a_booking(
    cloud_client: httpx.AsyncClient, setup_library: LibrarySetup, student: Any, make_account: Any
) -> None:
    booking = (
        await _book(cloud_client, student, hourly(setup_library, "A1", slot(2, "10:00", "11:00")))
    ).json()
    for account in (await make_account(Role.STUDENT), await make_account(Role.LIBRARY_OWNER)):
        for path in ("", "/pass"):
            response = await cloud_client.get(f"{BOOKINGS}/{booking['id']}{path}", headers=account.headers)
            assert response.status_code == 404, response.text
        cancel = await cloud_client.post(f"{BOOKINGS}/{booking['id']}/cancel", headers=account.headers)
        assert cancel.status_code == 404
    staff_view = await cloud_client.get(f"{BOOKINGS}/{booking['id']}", headers=setup_library.owner.headers)
    assert staff_view.status_code == 200


async def test_modify_moves_seat_and_time_atomically(
    cloud_client: httpx.AsyncClient, setup_library: LibrarySetup, student: Any, make_account: Any
) -> None:
    other = await make_account(Role.STUDENT)
    mine = (await _book(cloud_client, student, hourly(setup_library, "A1", slot(2, "10:00", "12:00")))).json()
    await _book(cloud_client, other, hourly(setup_library, "A2", slot(2, "13:00", "15:00")))
    clash = await cloud_client.patch(
        f"{BOOKINGS}/{mine['id']}",
        json={"seat_id": setup_library.seat("A2")["id"], **slot(2, "14:00", "16:00")},
        headers=student.headers,
    )
    assert clash.status_code == 409 and clash.json()["error"]["code"] == "seat_taken"
    unchanged = (await cloud_client.get(f"{BOOKINGS}/{mine['id']}", headers=student.headers)).json()
    assert (unchanged["seat_label"], unchanged["start"]) == ("A1", mine["start"])
    moved = await cloud_client.patch(
        f"{BOOKINGS}/{mine['id']}",
        json={"seat_id": setup_library.seat("A2")["id"], **slot(2, "15:00", "17:00")},
        headers=student.headers,
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["seat_label"] == "A2" and dt.datetime.fromisoformat(moved.json()["start"]) == at(
        2, "15:00"
    )
    # the freed slot is bookable again; the moved booking overlapping itself is not a conflict
    assert (
        await _book(cloud_client, other, hourly(setup_library, "A1", slot(2, "10:00", "12:00")))
    ).status_code == 201
    extend = await cloud_client.patch(
        f"{BOOKINGS}/{mine['id']}", json=slot(2, "15:00", "18:00"), headers=student.headers
    )
    assert extend.status_code == 200 and extend.json()["price_minor"] == 15000
    bad = await cloud_client.patch(
        f"{BOOKINGS}/{mine['id']}", json=slot(2, "18:00", "15:00"), headers=student.headers
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_range"


async def test_cancel_respects_the_cutoff_for_students_but_not_staff(
    cloud_client: httpx.AsyncClient, student: Any, owner: Any
) -> None:
    setup = await build_library(cloud_client, owner, name="Night Owl", extra={"opening_hours": ALL_DAY})
    soon = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(minutes=30)
    times = {"start": soon.isoformat(), "end": (soon + dt.timedelta(hours=1)).isoformat()}
    confirmed = (await _book(cloud_client, student, hourly(setup, "A1", times, "Free hour"))).json()
    late = await cloud_client.post(f"{BOOKINGS}/{confirmed['id']}/cancel", headers=student.headers)
    assert late.status_code == 409 and late.json()["error"]["code"] == "cancellation_cutoff_passed"
    by_staff = await cloud_client.post(
        f"{BOOKINGS}/{confirmed['id']}/cancel", json={"reason": "seat broken"}, headers=owner.headers
    )
    assert by_staff.status_code == 200 and by_staff.json()["status"] == "cancelled"
    assert by_staff.json()["cancel_reason"] == "seat broken"
    held = (await _book(cloud_client, student, hourly(setup, "A2", times))).json()
    assert (
        await cloud_client.post(f"{BOOKINGS}/{held['id']}/cancel", headers=student.headers)
    ).status_code == 200
    again = await cloud_client.post(f"{BOOKINGS}/{held['id']}/cancel", headers=student.headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_cancellable"


async def test_unpaid_holds_expire_and_free_the_seat(
    cloud_app: FastAPI,
    cloud_client: httpx.AsyncClient,
    setup_library: LibrarySetup,
    student: Any,
    make_account: Any,
) -> None:
    held = (await _book(cloud_client, student, hourly(setup_library, "A1", slot(2, "10:00", "12:00")))).json()
    paid = (await _book(cloud_client, student, hourly(setup_library, "A2", slot(2, "10:00", "12:00")))).json()
    assert (
        await cloud_client.post(f"{BOOKINGS}/{paid['id']}/confirm", headers=setup_library.owner.headers)
    ).json()["status"] == "confirmed"
    with cloud_app.state.session_factory() as session:
        platform_scope(session)
        early = service.expire_holds(session, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5))
        expired = service.expire_holds(session, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=11))
    assert early == [] and [r.booking_id for r in expired] == [uuid.UUID(held["id"])]
    after = (await cloud_client.get(f"{BOOKINGS}/{held['id']}", headers=student.headers)).json()
    assert (after["status"], after["cancel_reason"]) == ("cancelled", "hold_expired")
    other = await make_account(Role.STUDENT)
    assert (
        await _book(cloud_client, other, hourly(setup_library, "A1", slot(2, "10:00", "12:00")))
    ).status_code == 201
    late_payment = await cloud_client.post(
        f"{BOOKINGS}/{held['id']}/confirm", headers=setup_library.owner.headers
    )
    assert late_payment.status_code == 409 and late_payment.json()["error"]["code"] == "not_pending"


async def test_staff_day_sheet_lists_the_library_bookings_of_a_local_date(
    cloud_client: httpx.AsyncClient, setup_library: LibrarySetup, student: Any, staff: Any
) -> None:
    for seat, times in (
        ("A1", slot(2, "10:00", "11:00")),
        ("A2", slot(2, "08:00", "09:00")),
        ("A3", slot(3, "08:00", "09:00")),
    ):
        assert (await _book(cloud_client, student, hourly(setup_library, seat, times))).status_code == 201
    url = f"/api/v1/libraries/{setup_library.id}/bookings"
    sheet = await cloud_client.get(url, params={"date": local_day(2).isoformat()}, headers=staff.headers)
    assert sheet.status_code == 200, sheet.text
    assert [row["seat_label"] for row in sheet.json()] == ["A2", "A1"]
    denied = await cloud_client.get(url, params={"date": local_day(2).isoformat()}, headers=student.headers)
    assert denied.status_code == 403
