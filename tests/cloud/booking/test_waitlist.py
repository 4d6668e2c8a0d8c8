"""Waitlist: a freed seat is offered to the first in line as a hold; a lapsed hold moves to the next."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from fastapi import FastAPI

from cloud.booking import service, waitlist
from cloud.db import platform_scope
from cloud.identity.roles import Role
from tests.cloud.booking.conftest import LibrarySetup
from tests.cloud.booking.helpers import local_day


def _promote(app: FastAPI, now: dt.datetime) -> list[Any]:
    with app.state.session_factory() as session:
        platform_scope(session)
        service.expire_holds(session, now)
        return [entry.user_id for entry in waitlist.promote_waitlist(session, now)]


async def _entries(client: httpx.AsyncClient, account: Any) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/waitlist", headers=account.headers)
    assert response.status_code == 200, response.text
    return list(response.json())


async def test_waitlist_offers_freed_seats_in_order_and_moves_on_when_a_hold_lapses(
    cloud_app: FastAPI, cloud_client: httpx.AsyncClient, setup_library: LibrarySetup, make_account: Any
) -> None:
    day = local_day(2).isoformat()
    day_pass = setup_library.plans["Day pass"]["id"]
    owner = setup_library.owner.headers
    url = f"/api/v1/libraries/{setup_library.id}/waitlist"
    first = await make_account(Role.STUDENT)
    early = await cloud_client.post(url, json={"plan_id": day_pass, "date": day}, headers=first.headers)
    assert early.status_code == 409 and early.json()["error"]["code"] == "seats_available"
    holders = []
    for seat in setup_library.seats:
        holder = await make_account(Role.STUDENT)
        body = {"plan_id": day_pass, "seat_id": seat["id"], "date": day}
        booking = (await cloud_client.post("/api/v1/bookings", json=body, headers=holder.headers)).json()
        await cloud_client.post(f"/api/v1/bookings/{booking['id']}/confirm", headers=owner)
        holders.append((holder, booking))
    second = await make_account(Role.STUDENT)
    for account in (first, second):
        joined = await cloud_client.post(
            url, json={"plan_id": day_pass, "date": day}, headers=account.headers
        )
        assert joined.status_code == 201, joined.text
    again = await cloud_client.post(url, json={"plan_id": day_pass, "date": day}, headers=first.headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_waiting"
    hourly = await cloud_client.post(
        url, json={"plan_id": setup_library.plans["Hourly"]["id"], "date": day}, headers=first.headers
    )
    assert hourly.status_code == 422 and hourly.json()["error"]["code"] == "invalid_plan"

    now = dt.datetime.now(dt.UTC)
    assert _promote(cloud_app, now) == []  # nothing freed yet
    holder, booking = holders[0]
    await cloud_client.post(f"/api/v1/bookings/{booking['id']}/cancel", headers=owner)
    assert _promote(cloud_app, now) == [first.id]
    offer = (await _entries(cloud_client, first))[0]
    assert offer["status"] == "offered"
    held = (await cloud_client.get(f"/api/v1/bookings/{offer['booking_id']}", headers=first.headers)).json()
    assert (held["status"], held["seat_label"], held["kind"]) == (
        "pending_payment",
        booking["seat_label"],
        "day_pass",
    )

    # the first student lets the hold lapse: the seat goes to the second in line
    assert _promote(cloud_app, now + dt.timedelta(minutes=11)) == [second.id]
    assert (await _entries(cloud_client, first))[0]["status"] == "lapsed"
    second_offer = (await _entries(cloud_client, second))[0]
    await cloud_client.post(f"/api/v1/bookings/{second_offer['booking_id']}/confirm", headers=owner)
    assert _promote(cloud_app, now) == []
    assert (await _entries(cloud_client, second))[0]["status"] == "booked"


async def test_leaving_the_waitlist(
    cloud_client: httpx.AsyncClient, setup_library: LibrarySetup, student: Any, make_account: Any
) -> None:
    day = local_day(3).isoformat()
    day_pass = setup_library.plans["Day pass"]["id"]
    for seat in setup_library.seats:
        body = {"plan_id": day_pass, "seat_id": seat["id"], "date": day}
        account = await make_account(Role.STUDENT)
        assert (
            await cloud_client.post("/api/v1/bookings", json=body, headers=account.headers)
        ).status_code == 201
    entry = (
        await cloud_client.post(
            f"/api/v1/libraries/{setup_library.id}/waitlist",
            json={"plan_id": day_pass, "date": day},
            headers=student.headers,
        )
    ).json()
    stranger = await make_account(Role.STUDENT)
    assert (
        await cloud_client.delete(f"/api/v1/waitlist/{entry['id']}", headers=stranger.headers)
    ).status_code == 404
    left = await cloud_client.delete(f"/api/v1/waitlist/{entry['id']}", headers=student.headers)
    assert left.status_code == 200 and left.json()["status"] == "cancelled"
