"""The worker's booking pass: expired holds free their seat in the cached availability."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from fastapi import FastAPI

from cloud.booking.jobs import run_booking_jobs
from tests.cloud.booking.conftest import LibrarySetup
from tests.cloud.booking.helpers import hourly, local_day, slot


async def test_job_pass_expires_holds_and_invalidates_availability(
    cloud_app: FastAPI, cloud_client: httpx.AsyncClient, setup_library: LibrarySetup, student: Any
) -> None:
    url = f"/api/v1/libraries/{setup_library.id}/availability"
    params = {"date": local_day(2).isoformat(), "start": "10:00", "end": "11:00"}
    await cloud_client.post(
        "/api/v1/bookings",
        json=hourly(setup_library, "A1", slot(2, "10:00", "11:00")),
        headers=student.headers,
    )
    seats = (await cloud_client.get(url, params=params)).json()["seats"]
    assert {s["label"]: s["free"] for s in seats}["A1"] is False  # now cached
    report = run_booking_jobs(cloud_app.state, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=11))
    assert (report.holds_expired, report.no_shows, report.waitlist_offers) == (1, 0, 0)
    seats = (await cloud_client.get(url, params=params)).json()["seats"]
    assert {s["label"]: s["free"] for s in seats}["A1"] is True
