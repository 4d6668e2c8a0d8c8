"""Monthly seat subscriptions: shared seats across shifts, conflicts, pause and resume, payment."""

from __future__ import annotations

from typing import Any

import httpx

from cloud.booking.subscriptions import one_month_later
from cloud.identity.roles import Role
from tests.cloud.booking.conftest import LibrarySetup
from tests.cloud.booking.helpers import hourly, local_day, slot

SUBS = "/api/v1/subscriptions"


async def _plan(
    client: httpx.AsyncClient, setup: LibrarySetup, name: str, start: str, end: str, price: int
) -> str:
    body = {
        "name": name,
        "kind": "monthly",
        "price_minor": price,
        "currency": "INR",
        "shift_start": start,
        "shift_end": end,
    }
    response = await client.post(
        f"/api/v1/libraries/{setup.id}/plans", json=body, headers=setup.owner.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_morning_and_evening_members_share_a_seat_but_shifts_cannot_overlap(
    cloud_client: httpx.AsyncClient, setup_library: LibrarySetup, student: Any, make_account: Any
) -> None:
    seat = setup_library.seat("A1")["id"]
    start = local_day(1).isoformat()
    morning = await _plan(cloud_client, setup_library, "Morning free", "06:00", "14:00", 0)
    evening = await _plan(cloud_client, setup_library, "Evening free", "14:00", "22:00", 0)
    midday = await _plan(cloud_client, setup_library, "Midday", "12:00", "16:00", 0)
    first = await cloud_client.post(
        SUBS, json={"plan_id": morning, "seat_id": seat, "start_date": start}, headers=student.headers
    )
    assert first.status_code == 201, first.text
    assert (
        first.json()["status"] == "active"
        and first.json()["end_date"] == one_month_later(local_day(1)).isoformat()
    )
    other = await make_account(Role.STUDENT)
    second = await cloud_client.post(
        SUBS, json={"plan_id": evening, "seat_id": seat, "start_date": start}, headers=other.headers
    )
    assert second.status_code == 201, second.text
    third = await cloud_client.post(
        SUBS,
        json={"plan_id": midday, "seat_id": seat, "start_date": local_day(5).isoformat()},
        headers=(await make_account(Role.STUDENT)).headers,
    )
    assert third.status_code == 409 and third.json()["error"]["code"] == "seat_taken"
    assert local_day(5).isoformat() in third.json()["error"]["details"]["dates"]
    hourly_clash = await cloud_client.post(
        "/api/v1/bookings", json=hourly(setup_library, "A1", slot(2, "10:00", "11:00")), headers=other.headers
    )
    assert hourly_clash.status_code == 409
    # the student's own hourly bookings are not limited by the 30 subscription days
    own = await cloud_client.post(
        "/api/v1/bookings",
        json=hourly(setup_library, "A2", slot(2, "10:00", "11:00")),
        headers=student.headers,
    )
    assert own.status_code == 201, own.text


async def test_pause_frees_the_days_and_resume_rebooks_them_unless_taken(
    cloud_client: httpx.AsyncClient, setup_library: LibrarySetup, student: Any, make_account: Any
) -> None:
    seat = setup_library.seat("A3")["id"]
    plan = await _plan(cloud_client, setup_library, "Morning free", "06:00", "14:00", 0)
    sub = (
        await cloud_client.post(
            SUBS,
            json={"plan_id": plan, "seat_id": seat, "start_date": local_day(1).isoformat()},
            headers=student.headers,
        )
    ).json()
    pause = {"paused_from": local_day(3).isoformat(), "paused_until": local_day(5).isoformat()}
    paused = await cloud_client.post(f"{SUBS}/{sub['id']}/pause", json=pause, headers=student.headers)
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    other = await make_account(Role.STUDENT)
    during_pause = hourly(setup_library, "A3", slot(3, "08:00", "10:00"))
    taken = await cloud_client.post("/api/v1/bookings", json=during_pause, headers=other.headers)
    assert taken.status_code == 201, taken.text
    blocked = await cloud_client.post(f"{SUBS}/{sub['id']}/resume", headers=student.headers)
    assert blocked.status_code == 409 and blocked.json()["error"]["details"]["dates"] == [
        local_day(3).isoformat()
    ]
    await cloud_client.post(f"/api/v1/bookings/{taken.json()['id']}/cancel", headers=other.headers)
    resumed = await cloud_client.post(f"{SUBS}/{sub['id']}/resume", headers=student.headers)
    assert resumed.status_code == 200 and resumed.json()["status"] == "active"
    again = await cloud_client.post("/api/v1/bookings", json=during_pause, headers=other.headers)
    assert again.status_code == 409
    bad = await cloud_client.post(
        f"{SUBS}/{sub['id']}/pause",
        json={"paused_from": local_day(5).isoformat(), "paused_until": local_day(4).isoformat()},
        headers=student.headers,
    )
    assert bad.status_code == 422


async def test_paid_subscription_is_held_until_confirmed_and_bad_input_is_rejected(
    cloud_client: httpx.AsyncClient, setup_library: LibrarySetup, student: Any
) -> None:
    monthly = setup_library.plans["Morning"]["id"]
    seat = setup_library.seat("C1")["id"]
    held = await cloud_client.post(
        SUBS,
        json={"plan_id": monthly, "seat_id": seat, "start_date": local_day(1).isoformat()},
        headers=student.headers,
    )
    assert held.status_code == 201 and held.json()["status"] == "pending_payment"
    confirmed = await cloud_client.post(
        f"{SUBS}/{held.json()['id']}/confirm", headers=setup_library.owner.headers
    )
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "active"
    for body, status, code in (
        (
            {
                "plan_id": setup_library.plans["Hourly"]["id"],
                "seat_id": seat,
                "start_date": local_day(1).isoformat(),
            },
            422,
            "not_a_monthly_plan",
        ),
        (
            {"plan_id": monthly, "seat_id": seat, "start_date": local_day(-3).isoformat()},
            422,
            "invalid_start_date",
        ),
        (
            {"plan_id": monthly, "seat_id": seat, "start_date": local_day(400).isoformat()},
            422,
            "invalid_start_date",
        ),
        ({"plan_id": monthly, "seat_id": seat, "start_date": "never"}, 422, "validation_error"),
    ):
        response = await cloud_client.post(SUBS, json=body, headers=student.headers)
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code


async def test_transfer_moves_the_remaining_days_atomically(
    cloud_client: httpx.AsyncClient, setup_library: LibrarySetup, student: Any, make_account: Any
) -> None:
    plan = await _plan(cloud_client, setup_library, "Morning free", "06:00", "14:00", 0)
    body = {
        "plan_id": plan,
        "seat_id": setup_library.seat("A1")["id"],
        "start_date": local_day(1).isoformat(),
    }
    sub = (await cloud_client.post(SUBS, json=body, headers=student.headers)).json()
    other = await make_account(Role.STUDENT)
    blocker = hourly(setup_library, "A2", slot(3, "08:00", "09:00"))
    assert (
        await cloud_client.post("/api/v1/bookings", json=blocker, headers=other.headers)
    ).status_code == 201
    refused = await cloud_client.post(
        f"{SUBS}/{sub['id']}/transfer",
        json={"seat_id": setup_library.seat("A2")["id"]},
        headers=student.headers,
    )
    assert refused.status_code == 409 and refused.json()["error"]["details"]["dates"] == [
        local_day(3).isoformat()
    ]
    a1_morning = hourly(setup_library, "A1", slot(2, "08:00", "09:00"))
    assert (
        await cloud_client.post("/api/v1/bookings", json=a1_morning, headers=other.headers)
    ).status_code == 409
    moved = await cloud_client.post(
        f"{SUBS}/{sub['id']}/transfer",
        json={"seat_id": setup_library.seat("A3")["id"]},
        headers=student.headers,
    )
    assert moved.status_code == 200 and moved.json()["seat_id"] == setup_library.seat("A3")["id"]
    assert (
        await cloud_client.post("/api/v1/bookings", json=a1_morning, headers=other.headers)
    ).status_code == 201
    a3_morning = hourly(setup_library, "A3", slot(2, "08:00", "09:00"))
    assert (
        await cloud_client.post("/api/v1/bookings", json=a3_morning, headers=other.headers)
    ).status_code == 409
