"""Energy from the edge's per-minute meter rows (live, then rolled up by hour), the seeder's
idempotence, and the platform admin's overview and fleet health."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
from fastapi import FastAPI

from cloud.analytics.jobs import hour_floor, run_analytics_jobs
from cloud.identity.roles import Role
from tests.cloud.analytics.helpers import library_view
from tests.cloud.booking.conftest import build_library

MINUTE_SQL = """
INSERT INTO edge_telemetry (tenant_id, library_id, edge_device_id, sensor, metric, minute, samples, total,
  minimum, maximum, last)
VALUES (:tenant, :library, :device, 'main-meter', 'energy', :minute, 6, :reading * 6, :reading, :reading,
  :reading)
"""


async def summary(client: httpx.AsyncClient, setup: Any) -> dict[str, Any]:
    return await library_view(client, setup, "summary", "days=1")


async def test_energy_is_the_meters_rise_before_and_after_the_hourly_roll_up(
    cloud_app: FastAPI,
    cloud_client: httpx.AsyncClient,
    make_account: Any,
    add_device: Any,
    add_stay: Any,
    platform_sql: Any,
) -> None:
    owner = await make_account(Role.LIBRARY_OWNER)
    setup = await build_library(cloud_client, owner)
    device = add_device(setup)
    start = hour_floor(dt.datetime.now(dt.UTC)) - dt.timedelta(hours=3)
    readings = [100.0 + 0.01 * n for n in range(150)]  # a cumulative kWh meter, one row a minute
    readings[100:] = [0.01 * n for n in range(1, 51)]  # ...reset to zero at minute 100
    for n, reading in enumerate(readings):
        platform_sql(
            MINUTE_SQL, tenant=owner.tenant_id, library=setup.id, device=device,
            minute=start + dt.timedelta(minutes=n), reading=reading,
        )  # fmt: skip
    add_stay(setup, "A1", start, start + dt.timedelta(hours=2), checked_in_at=start)
    expected_kwh = 0.99 + 0.01 + 0.49  # 99 rises, the reset minute counts its reading, 49 rises

    live = await summary(cloud_client, setup)
    assert abs(live["energy_kwh"] - expected_kwh) < 1e-6
    assert live["occupied_seat_hours"] == 2.0
    assert abs(live["kwh_per_occupied_seat_hour"] - round(expected_kwh / 2, 4)) < 1e-9

    now = dt.datetime.now(dt.UTC)
    assert run_analytics_jobs(cloud_app.state, now) == 3  # hours start, +1 h, +2 h (the current one is open)
    assert run_analytics_jobs(cloud_app.state, now) == 0  # done for this hour
    assert run_analytics_jobs(cloud_app.state, now, force=True) == 3  # idempotent: the same rows again
    rows = platform_sql("SELECT hour, minutes, increase FROM telemetry_hourly ORDER BY hour")
    assert [row.minutes for row in rows] == [60, 60, 30]
    assert abs(sum(row.increase for row in rows) - expected_kwh) < 1e-9
    rolled = await summary(cloud_client, setup)
    assert abs(rolled["energy_kwh"] - expected_kwh) < 1e-6


async def test_seed_history_is_idempotent(
    cloud_client: httpx.AsyncClient, make_account: Any, history_seeder: Any
) -> None:
    owner = await make_account(Role.LIBRARY_OWNER)
    setup = await build_library(cloud_client, owner)
    now = dt.datetime.now(dt.UTC)
    first = history_seeder(setup, now=now, days=7)
    assert first["bookings"] > 0 and first["payments"] > 0 and first["telemetry_hours"] > 0
    again = history_seeder(setup, now=now, days=7)
    assert {key: again[key] for key in ("bookings", "payments", "refunds", "telemetry_hours")} == {
        "bookings": 0, "payments": 0, "refunds": 0, "telemetry_hours": 0,
    }  # fmt: skip
    # a day later only the new day is added; the overlap keeps its ids
    later = history_seeder(setup, now=now + dt.timedelta(days=1), days=7)
    assert later["telemetry_hours"] in (23, 24, 25)  # one local day of hours (DST days differ)
    assert 0 <= later["bookings"] < first["bookings"]


async def test_the_admin_overview_and_fleet_health(
    cloud_client: httpx.AsyncClient, make_account: Any, add_device: Any, history_seeder: Any
) -> None:
    owner = await make_account(Role.LIBRARY_OWNER)
    setup = await build_library(cloud_client, owner)
    history_seeder(setup, days=3)
    device = add_device(setup)
    admin = await make_account(Role.SUPER_ADMIN)

    fleet = await cloud_client.get("/api/v1/admin/fleet", headers=admin.headers)
    assert fleet.status_code == 200, fleet.text
    row = next(item for item in fleet.json() if item["device_id"] == str(device))
    assert row["tenant_id"] == str(owner.tenant_id) and row["library_id"] == setup.id
    assert row["online"] is True and row["agent_version"] == "0.1.0"
    assert (row["clock_skew_s"], row["skew_flagged"], row["revoked"]) == (42.0, True, False)
    assert (row["queue_depth"], row["dead_letters"]) == (0, 0)

    overview = await cloud_client.get("/api/v1/admin/analytics/overview", headers=admin.headers)
    assert overview.status_code == 200, overview.text
    body = overview.json()
    assert body["tenants"] >= 1 and body["libraries"] >= 1
    assert (body["edges"], body["edges_online"]) == (1, 1)
    mine = [item for item in body["revenue_by_tenant"] if item["tenant_id"] == str(owner.tenant_id)]
    assert len(mine) == 1 and mine[0]["currency"] == "INR" and mine[0]["net_minor"] > 0

    for path in ("/api/v1/admin/fleet", "/api/v1/admin/analytics/overview"):
        assert (await cloud_client.get(path, headers=owner.headers)).status_code == 403
    assert uuid.UUID(row["device_id"]) == device
