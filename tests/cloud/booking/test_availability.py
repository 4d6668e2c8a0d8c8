"""Per-seat availability for a library, date and window; cached in Redis and invalidated on change."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import redis

from cloud.config import CloudSettings
from tests.cloud.booking.conftest import LibrarySetup
from tests.cloud.booking.helpers import at, hourly, local_day, slot


def _free(body: dict[str, Any]) -> dict[str, bool]:
    return {seat["label"]: seat["free"] for seat in body["seats"]}


async def test_availability_follows_bookings_and_cache_is_invalidated(
    cloud_client: httpx.AsyncClient, setup_library: LibrarySetup, student: Any, cloud_settings: CloudSettings
) -> None:
    url = f"/api/v1/libraries/{setup_library.id}/availability"
    params = {"date": local_day(2).isoformat(), "start": "10:00", "end": "12:00"}
    before = (await cloud_client.get(url, params=params)).json()
    assert _free(before) == {"A1": True, "A2": True, "A3": True, "C1": True}
    assert (
        dt.datetime.fromisoformat(before["start"]) == at(2, "10:00")
        and before["timezone"] == "America/New_York"
    )
    client = redis.Redis.from_url(cloud_settings.redis_url or "")
    assert client.keys("avail:*"), "the window was cached in Redis"
    booking = (
        await cloud_client.post(
            "/api/v1/bookings",
            json=hourly(setup_library, "A2", slot(2, "11:00", "13:00")),
            headers=student.headers,
        )
    ).json()
    assert _free((await cloud_client.get(url, params=params)).json())["A2"] is False
    after_window = {**params, "start": "13:00", "end": "15:00"}
    assert _free((await cloud_client.get(url, params=after_window)).json())["A2"] is True  # half-open
    await cloud_client.post(f"/api/v1/bookings/{booking['id']}/cancel", headers=student.headers)
    assert _free((await cloud_client.get(url, params=params)).json())["A2"] is True
    await cloud_client.patch(
        f"/api/v1/seats/{setup_library.seat('C1')['id']}",
        json={"active": False},
        headers=setup_library.owner.headers,
    )
    assert "C1" not in _free((await cloud_client.get(url, params=params)).json())
    client.close()


async def test_availability_bad_input(cloud_client: httpx.AsyncClient, setup_library: LibrarySetup) -> None:
    url = f"/api/v1/libraries/{setup_library.id}/availability"
    day = local_day(2).isoformat()
    for params, status, code in (
        ({"date": day, "start": "12:00", "end": "10:00"}, 422, "invalid_range"),
        ({"date": day, "start": "25:00"}, 422, "validation_error"),
        ({"date": "someday"}, 422, "validation_error"),
    ):
        response = await cloud_client.get(url, params=params)
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code
    missing = await cloud_client.get(
        "/api/v1/libraries/00000000-0000-0000-0000-000000000000/availability", params={"date": day}
    )
    assert missing.status_code == 404
