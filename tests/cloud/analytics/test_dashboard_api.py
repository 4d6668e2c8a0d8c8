"""Occupancy, summary, forecast and best-time over seeded history, through the HTTP API."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import httpx

from cloud.identity.roles import Role
from tests.cloud.booking.conftest import build_library

KOLKATA = "Asia/Kolkata"


async def test_dashboards_over_seeded_history(
    cloud_client: httpx.AsyncClient, make_account: Any, history_seeder: Any
) -> None:
    owner = await make_account(Role.LIBRARY_OWNER)
    setup = await build_library(cloud_client, owner, timezone=KOLKATA)
    counts = history_seeder(setup, days=28)
    assert counts["bookings"] > 50 and counts["no_shows"] > 0 and counts["telemetry_hours"] >= 28 * 24
    base = f"/api/v1/analytics/libraries/{setup.id}"

    occupancy = await cloud_client.get(f"{base}/occupancy?days=28", headers=owner.headers)
    assert occupancy.status_code == 200, occupancy.text
    body = occupancy.json()
    assert body["timezone"] == KOLKATA and body["seats"] == 4 and len(body["cells"]) == 168
    busiest = max(body["cells"], key=lambda cell: cell["avg_occupied"])
    assert busiest["weekday"] < 5 and 7 <= busiest["hour"] <= 21

    summary = await cloud_client.get(f"{base}/summary?days=30", headers=owner.headers)
    assert summary.status_code == 200, summary.text
    numbers = summary.json()
    assert numbers["bookings"] == counts["bookings"] and numbers["no_shows"] == counts["no_shows"]
    assert 0 < numbers["no_show_rate"] < 0.5
    assert numbers["energy_kwh"] > 0 and numbers["kwh_per_occupied_seat_hour"] > 0

    forecast = await cloud_client.get(f"{base}/forecast", headers=owner.headers)
    assert forecast.status_code == 200, forecast.text
    prediction = forecast.json()
    assert len(prediction["hours"]) == 168 and prediction["holdout_days"] == 7
    assert prediction["holdout_mae"] >= 0 and prediction["holdout_mape"] is not None
    assert prediction["hours"][0]["start"].endswith("+05:30")

    tomorrow = dt.datetime.now(zoneinfo.ZoneInfo(KOLKATA)).date() + dt.timedelta(days=1)
    hint = await cloud_client.get(f"/api/v1/libraries/{setup.id}/best-time?date={tomorrow}")
    assert hint.status_code == 200, hint.text
    advice = hint.json()
    assert len(advice["suggestions"]) == 3 and advice["hint"].startswith("Quietest")
    assert all(s["start"].endswith("+05:30") for s in advice["suggestions"])


async def test_best_time_picks_the_quietest_open_hours_of_the_forecast(
    cloud_client: httpx.AsyncClient, make_account: Any, history_seeder: Any
) -> None:
    owner = await make_account(Role.LIBRARY_OWNER)
    hours = {day: {"open": "07:00", "close": "21:00"} for day in ("mon", "tue", "wed", "thu", "fri", "sat")}
    setup = await build_library(cloud_client, owner, timezone=KOLKATA, extra={"opening_hours": hours})
    history_seeder(setup, days=28)
    forecast = await cloud_client.get(
        f"/api/v1/analytics/libraries/{setup.id}/forecast", headers=owner.headers
    )
    assert forecast.status_code == 200, forecast.text
    today = dt.datetime.now(zoneinfo.ZoneInfo(KOLKATA)).date()
    open_day = next(
        today + dt.timedelta(days=n) for n in range(2, 5) if (today + dt.timedelta(days=n)).weekday() != 6
    )
    sunday = next(
        today + dt.timedelta(days=n) for n in range(1, 8) if (today + dt.timedelta(days=n)).weekday() == 6
    )
    that_day = {
        hour["start"]: hour["expected_ratio"]
        for hour in forecast.json()["hours"]
        if hour["start"].startswith(open_day.isoformat()) and "07:00" <= hour["start"][11:16] < "21:00"
    }
    assert len(that_day) == 14

    advice = (await cloud_client.get(f"/api/v1/libraries/{setup.id}/best-time?date={open_day}")).json()
    suggested = {slot["start"]: slot["expected_ratio"] for slot in advice["suggestions"]}
    assert len(suggested) == 3 and list(suggested) == sorted(suggested)
    assert all(that_day[start] == ratio for start, ratio in suggested.items())
    others = [ratio for start, ratio in that_day.items() if start not in suggested]
    assert max(suggested.values()) <= min(others)

    closed = await cloud_client.get(f"/api/v1/libraries/{setup.id}/best-time?date={sunday}")
    assert closed.status_code == 200
    assert closed.json()["suggestions"] == [] and "closed" in closed.json()["hint"]
