"""Occupancy counts real check-ins in the library's own local hours."""

from __future__ import annotations

import datetime as dt
import json
import uuid
import zoneinfo
from typing import Any

import httpx

from cloud.identity.roles import Role
from tests.cloud.analytics.helpers import library_view
from tests.cloud.booking.conftest import build_library

UTC = dt.UTC


def cell(body: dict[str, Any], weekday: int, hour: int) -> float:
    return next(c["avg_occupied"] for c in body["cells"] if c["weekday"] == weekday and c["hour"] == hour)


def two_days_ago_at(hour: int) -> dt.datetime:
    day = dt.datetime.now(UTC).date() - dt.timedelta(days=2)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=UTC)


async def occupancy(client: httpx.AsyncClient, setup: Any, days: int = 7) -> dict[str, Any]:
    return await library_view(client, setup, "occupancy", f"days={days}")


async def test_the_same_check_in_lands_in_each_librarys_local_hour(
    cloud_client: httpx.AsyncClient, make_account: Any, add_stay: Any
) -> None:
    owner = await make_account(Role.LIBRARY_OWNER)
    kolkata = await build_library(cloud_client, owner, name="Kolkata", timezone="Asia/Kolkata")
    new_york = await build_library(cloud_client, owner, name="New York", timezone="America/New_York")
    start = two_days_ago_at(4)  # 04:00 UTC = 09:30 IST = 23:00 EST (the day before)
    for setup in (kolkata, new_york):
        add_stay(setup, "A1", start, start + dt.timedelta(hours=1), checked_in_at=start)

    ist = start.astimezone(zoneinfo.ZoneInfo("Asia/Kolkata"))
    body = await occupancy(cloud_client, kolkata)
    assert body["seats"] == 4 and body["days"] == 7
    assert (cell(body, ist.weekday(), 9), cell(body, ist.weekday(), 10)) == (0.5, 0.5)
    assert sum(c["avg_occupied"] for c in body["cells"]) == 1.0
    assert (
        next(c for c in body["cells"] if c["weekday"] == ist.weekday() and c["hour"] == 9)["occupancy_ratio"]
        == 0.125
    )

    est = start.astimezone(zoneinfo.ZoneInfo("America/New_York"))
    body = await occupancy(cloud_client, new_york)
    assert est.hour == 23 and cell(body, est.weekday(), 23) == 1.0
    assert sum(c["avg_occupied"] for c in body["cells"]) == 1.0


async def test_occupancy_runs_from_check_in_to_the_doors_check_out(
    cloud_client: httpx.AsyncClient,
    make_account: Any,
    add_stay: Any,
    add_device: Any,
    platform_sql: Any,
) -> None:
    owner = await make_account(Role.LIBRARY_OWNER)
    setup = await build_library(cloud_client, owner, timezone="UTC")
    start = two_days_ago_at(9)
    # came 30 min late, left through the door at 10:00 of a 09:00-12:00 booking
    late = add_stay(
        setup, "A1", start, start + dt.timedelta(hours=3), checked_in_at=start + dt.timedelta(minutes=30)
    )
    add_stay(setup, "A2", start, start + dt.timedelta(hours=1), status="no_show")
    add_stay(setup, "A3", start, start + dt.timedelta(hours=1), status="cancelled")
    device = add_device(setup)
    platform_sql(
        "INSERT INTO edge_events (id, tenant_id, device_id, library_id, kind, occurred_at, payload)"
        " VALUES (:id, :tenant, :device, :library, 'checkout', :at, CAST(:payload AS jsonb))",
        id=uuid.uuid4(), tenant=owner.tenant_id, device=device, library=setup.id,
        at=start + dt.timedelta(hours=1),
        payload=json.dumps({"door_id": "main", "pass_id": late.hex[:16], "direction": "out"}),
    )  # fmt: skip
    body = await occupancy(cloud_client, setup)
    assert cell(body, start.weekday(), 9) == 0.5
    assert sum(c["avg_occupied"] for c in body["cells"]) == 0.5

    summary = await cloud_client.get(
        f"/api/v1/analytics/libraries/{setup.id}/summary?days=7", headers=owner.headers
    )
    assert summary.status_code == 200, summary.text
    numbers = summary.json()
    assert (numbers["bookings"], numbers["no_shows"], numbers["no_show_rate"]) == (2, 1, 0.5)
    assert numbers["occupied_seat_hours"] == 0.5 and numbers["kwh_per_occupied_seat_hour"] is None


async def test_a_student_and_another_tenants_owner_cannot_read_a_librarys_analytics(
    cloud_client: httpx.AsyncClient, make_account: Any, history_seeder: Any
) -> None:
    owner_b = await make_account(Role.LIBRARY_OWNER)
    library_b = await build_library(cloud_client, owner_b, name="Tenant B")
    history_seeder(library_b, days=7)
    owner_a = await make_account(Role.LIBRARY_OWNER)
    staff_b = await make_account(Role.LIBRARY_STAFF, tenant_id=owner_b.tenant_id)
    student = await make_account(Role.STUDENT)
    for view in ("occupancy", "summary", "forecast"):
        path = f"/api/v1/analytics/libraries/{library_b.id}/{view}"
        assert (await cloud_client.get(path, headers=owner_a.headers)).status_code == 404
        assert (await cloud_client.get(path, headers=student.headers)).status_code == 403
        assert (await cloud_client.get(path, headers=staff_b.headers)).status_code == 200
        assert (await cloud_client.get(path, headers=owner_b.headers)).status_code == 200


async def test_a_super_admin_reads_any_library_and_the_read_is_audited(
    cloud_client: httpx.AsyncClient, make_account: Any, history_seeder: Any, platform_sql: Any
) -> None:
    owner = await make_account(Role.LIBRARY_OWNER)
    setup = await build_library(cloud_client, owner)
    history_seeder(setup, days=7)
    admin = await make_account(Role.SUPER_ADMIN)
    response = await cloud_client.get(
        f"/api/v1/analytics/libraries/{setup.id}/summary", headers=admin.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["bookings"] > 0
    audited = "SELECT actor_id, tenant_id, target FROM audit_log WHERE action = 'analytics.summary.read'"
    rows = [tuple(row) for row in platform_sql(audited)]
    assert rows == [(admin.id, owner.tenant_id, f"library:{setup.id}")]


async def test_bad_query_values_get_a_422_envelope(
    cloud_client: httpx.AsyncClient, make_account: Any
) -> None:
    owner = await make_account(Role.LIBRARY_OWNER)
    setup = await build_library(cloud_client, owner)
    base = f"/api/v1/analytics/libraries/{setup.id}"
    for path in (f"{base}/occupancy?days=0", f"{base}/summary?days=9999", f"{base}/occupancy?days=x"):
        response = await cloud_client.get(path, headers=owner.headers)
        assert response.status_code == 422 and "error" in response.json(), path
    past = await cloud_client.get(f"/api/v1/libraries/{setup.id}/best-time?date=2020-01-01")
    assert past.status_code == 422 and past.json()["error"]["code"] == "date_out_of_range"
    garbage = await cloud_client.get(f"/api/v1/libraries/{setup.id}/best-time?date=tomorrow")
    assert garbage.status_code == 422
    unknown = await cloud_client.get(f"/api/v1/libraries/{uuid.uuid4()}/best-time")
    assert unknown.status_code == 404
