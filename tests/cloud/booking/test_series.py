"""Recurring and multi-date bookings: one row per occurrence linked by a series, every rule applied,
all or nothing unless partial, and a range cancellable at once."""

from __future__ import annotations

from typing import Any

import httpx

from cloud.identity.roles import Role
from tests.cloud.booking.conftest import LibrarySetup, build_library
from tests.cloud.booking.helpers import hourly, local_day, slot

SERIES = "/api/v1/bookings/series"
ROOMY = {"max_active_bookings": 20}


def _weekly(
    setup: LibrarySetup, seat: str, count: int, plan: str = "Free hour", **extra: Any
) -> dict[str, Any]:
    return {
        "plan_id": setup.plans[plan]["id"],
        "seat_id": setup.seat(seat)["id"],
        "start_time": "08:00",
        "end_time": "10:00",
        "weekly": {
            "weekdays": [local_day(1).strftime("%a").lower()],
            "start_date": local_day(1).isoformat(),
            "count": count,
        },
        **extra,
    }


async def test_weekly_series_books_one_row_per_week_in_the_library_zone(
    cloud_client: httpx.AsyncClient, owner: Any, student: Any, make_account: Any
) -> None:
    setup = await build_library(cloud_client, owner, rules=ROOMY)
    created = await cloud_client.post(SERIES, json=_weekly(setup, "A1", 3), headers=student.headers)
    assert created.status_code == 201, created.text
    series = created.json()
    starts = [booking["start"] for booking in series["bookings"]]
    assert starts == [slot(days, "08:00", "10:00")["start"] for days in (1, 8, 15)]
    assert {booking["status"] for booking in series["bookings"]} == {"confirmed"}
    assert series["skipped"] == []
    fetched = await cloud_client.get(f"{SERIES}/{series['id']}", headers=student.headers)
    assert [b["id"] for b in fetched.json()["bookings"]] == [b["id"] for b in series["bookings"]]
    stranger = await cloud_client.get(f"{SERIES}/{series['id']}", headers=owner.headers)
    assert stranger.status_code == 200  # staff/owner of the tenant see it
    mine = await cloud_client.get("/api/v1/bookings", headers=student.headers)
    assert len(mine.json()["items"]) == 3
    intruder = await make_account(Role.LIBRARY_OWNER)  # owner of another tenant
    for method, path in (("GET", f"{SERIES}/{series['id']}"), ("POST", f"{SERIES}/{series['id']}/cancel")):
        response = await cloud_client.request(method, path, headers=intruder.headers)
        assert response.status_code == 404, response.text


async def test_a_taken_date_books_nothing_unless_partial(
    cloud_client: httpx.AsyncClient, owner: Any, student: Any, make_account: Any
) -> None:
    setup = await build_library(cloud_client, owner, rules=ROOMY)
    other = await make_account(Role.STUDENT)
    taken = await cloud_client.post(
        "/api/v1/bookings",
        json=hourly(setup, "A1", slot(8, "09:00", "11:00"), "Free hour"),
        headers=other.headers,
    )
    assert taken.status_code == 201, taken.text

    refused = await cloud_client.post(SERIES, json=_weekly(setup, "A1", 3), headers=student.headers)
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "series_conflict"
    [problem] = error["details"]["dates"]
    assert problem["date"] == local_day(8).isoformat() and problem["code"] == "seat_taken"
    assert problem["alternatives"], "a conflicted date suggests other seats or times"
    assert (await cloud_client.get("/api/v1/bookings", headers=student.headers)).json()["items"] == []

    partial = await cloud_client.post(
        SERIES, json=_weekly(setup, "A1", 3, partial=True), headers=student.headers
    )
    assert partial.status_code == 201, partial.text
    booked = [b["start"][:10] for b in partial.json()["bookings"]]
    assert booked == [local_day(1).isoformat(), local_day(15).isoformat()]
    assert [p["date"] for p in partial.json()["skipped"]] == [local_day(8).isoformat()]


async def test_every_booking_rule_applies_to_each_date(
    cloud_client: httpx.AsyncClient, owner: Any, student: Any
) -> None:
    setup = await build_library(
        cloud_client, owner, rules={"max_active_bookings": 2, "booking_window_days": 10}
    )
    too_many = await cloud_client.post(
        SERIES, json=_weekly(setup, "A2", 1) | {"dates": None}, headers=student.headers
    )
    assert too_many.status_code == 201, too_many.text
    dates = {"dates": [local_day(2).isoformat(), local_day(3).isoformat()], "weekly": None}
    over = await cloud_client.post(SERIES, json=_weekly(setup, "A2", 1) | dates, headers=student.headers)
    assert over.status_code == 409 and over.json()["error"]["code"] == "too_many_active_bookings", over.text
    assert over.json()["error"]["details"]["room"] == 1

    far = {"dates": [local_day(4).isoformat(), local_day(12).isoformat()], "weekly": None}
    beyond = await cloud_client.post(SERIES, json=_weekly(setup, "A3", 1) | far, headers=student.headers)
    assert beyond.status_code == 422 and beyond.json()["error"]["code"] == "series_invalid", beyond.text
    [problem] = beyond.json()["error"]["details"]["dates"]
    assert problem == {**problem, "date": local_day(12).isoformat(), "code": "beyond_booking_window"}

    night = _weekly(setup, "A3", 1) | {"start_time": "21:00", "end_time": "23:00"}
    closed = await cloud_client.post(SERIES, json=night, headers=student.headers)
    assert closed.json()["error"]["details"]["dates"][0]["code"] == "outside_opening_hours"
    for bad in (
        {"weekly": None},
        {"start_time": "25:00"},
        {"end_time": None},
        {"weekly": {"weekdays": ["xyz"], "start_date": local_day(1).isoformat(), "count": 2}},
        {"weekly": {"weekdays": ["mon"], "start_date": local_day(1).isoformat()}},
        {"weekly": {"weekdays": ["mon"], "start_date": local_day(1).isoformat(), "count": 61}},
        {"seat_id": None},
    ):
        response = await cloud_client.post(
            SERIES, json=_weekly(setup, "A3", 1) | bad, headers=student.headers
        )
        assert response.status_code == 422, (bad, response.text)
        assert "error" in response.json()


async def test_day_pass_dates_and_cancelling_a_range_from_a_date(
    cloud_client: httpx.AsyncClient, owner: Any, student: Any
) -> None:
    setup = await build_library(cloud_client, owner, rules=ROOMY)
    body = {
        "plan_id": setup.plans["Day pass"]["id"],
        "zone_id": setup.zones["Quiet"]["id"],
        "dates": [local_day(days).isoformat() for days in (3, 1, 2, 3)],
    }
    created = await cloud_client.post(SERIES, json=body, headers=student.headers)
    assert created.status_code == 201, created.text
    bookings = created.json()["bookings"]
    assert [b["start"][:10] for b in bookings] == [local_day(d).isoformat() for d in (1, 2, 3)]
    assert {b["status"] for b in bookings} == {"pending_payment"}  # paid day passes are held
    series_id = created.json()["id"]

    cancel = await cloud_client.post(
        f"{SERIES}/{series_id}/cancel", json={"from_date": local_day(2).isoformat()}, headers=student.headers
    )
    assert cancel.status_code == 200, cancel.text
    assert [b["start"][:10] for b in cancel.json()["cancelled"]] == [local_day(d).isoformat() for d in (2, 3)]
    after = (await cloud_client.get(f"{SERIES}/{series_id}", headers=student.headers)).json()["bookings"]
    assert [b["status"] for b in after] == ["pending_payment", "cancelled", "cancelled"]

    rest = await cloud_client.post(f"{SERIES}/{series_id}/cancel", headers=student.headers)
    assert [b["start"][:10] for b in rest.json()["cancelled"]] == [local_day(1).isoformat()]
    missing = await cloud_client.post(f"{SERIES}/{setup.id}/cancel", headers=student.headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
