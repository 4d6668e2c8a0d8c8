"""Search `free_on` + `shift`: libraries with at least one seat free for the whole shift that day."""

from __future__ import annotations

from typing import Any

import httpx

from cloud.identity.roles import Role
from tests.cloud.booking.conftest import build_library
from tests.cloud.booking.helpers import hourly, local_day, slot

SEARCH = "/api/v1/libraries"


async def _names(client: httpx.AsyncClient, **params: str) -> set[str]:
    response = await client.get(SEARCH, params=params)
    assert response.status_code == 200, response.text
    return {hit["name"] for hit in response.json()["items"]}


async def test_free_on_shift_finds_libraries_with_a_free_seat(
    cloud_client: httpx.AsyncClient, make_account: Any
) -> None:
    day = local_day(2)
    rules = {"max_active_bookings": 10}
    full = await build_library(
        cloud_client, await make_account(Role.LIBRARY_OWNER), name="Alpha Hall", rules=rules
    )
    await build_library(cloud_client, await make_account(Role.LIBRARY_OWNER), name="Beta Hall")
    closed = {"closures": [{"date": day.isoformat()}]}
    await build_library(cloud_client, await make_account(Role.LIBRARY_OWNER), name="Gamma Hall", extra=closed)
    student = await make_account(Role.STUDENT)
    for seat in full.seats:  # every seat of Alpha taken for the morning (06-14) only
        body = hourly(full, seat["label"], slot(2, "06:00", "14:00"), "Free hour")
        booked = await cloud_client.post("/api/v1/bookings", json=body, headers=student.headers)
        assert booked.status_code == 201, booked.text

    on_day = {"free_on": day.isoformat()}
    assert await _names(cloud_client, **on_day, shift="morning") == {"Beta Hall"}
    assert await _names(cloud_client, **on_day, shift="evening") == {"Alpha Hall", "Beta Hall"}
    assert await _names(cloud_client, **on_day, shift="13:00-15:00") == {"Beta Hall"}
    assert await _names(cloud_client, **on_day, shift="14:00-16:00") == {"Alpha Hall", "Beta Hall"}
    assert await _names(cloud_client, **on_day) == {"Beta Hall"}  # default: the whole opening day
    next_day = {"free_on": local_day(3).isoformat(), "shift": "morning"}
    assert await _names(cloud_client, **next_day) == {"Alpha Hall", "Beta Hall", "Gamma Hall"}
    assert await _names(cloud_client, **on_day, shift="05:00-06:00") == set()  # before opening

    for bad in ("noon", "14:00-10:00", "25:00-26:00", "10:00", "10:xx-11:00"):
        response = await cloud_client.get(SEARCH, params={**on_day, "shift": bad})
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["error"]["code"] == "invalid_shift"
    nonsense = await cloud_client.get(SEARCH, params={"free_on": "2026-13-45"})
    assert nonsense.status_code == 422 and "error" in nonsense.json()
