"""Catalog CRUD through the API: libraries, zones, seats, plans, RBAC and tenant isolation."""

from __future__ import annotations

from typing import Any

import httpx

from cloud.identity.roles import Role
from tests.cloud.booking.conftest import LibrarySetup, build_library, new_id


async def test_owner_builds_a_library_with_zones_seats_and_plans(
    cloud_client: httpx.AsyncClient, setup_library: LibrarySetup
) -> None:
    library_id = setup_library.id
    detail = (await cloud_client.get(f"/api/v1/libraries/{library_id}")).json()
    assert detail["timezone"] == "America/New_York"
    assert detail["opening_hours"]["mon"] == {"open": "06:00", "close": "22:00"}
    assert detail["capacity"] == 4
    assert detail["amenities"] == ["ac", "wifi"]
    assert detail["rules"]["hold_minutes"] == 10
    seats = (await cloud_client.get(f"/api/v1/libraries/{library_id}/seats")).json()
    assert [(s["label"], s["zone"], s["seat_type"]) for s in seats] == [
        ("A1", "Quiet", "open_desk"),
        ("A2", "Quiet", "open_desk"),
        ("A3", "Quiet", "open_desk"),
        ("C1", "Cabins", "cabin"),
    ]
    plans = (await cloud_client.get(f"/api/v1/libraries/{library_id}/plans")).json()
    monthly = next(p for p in plans if p["kind"] == "monthly")
    assert (monthly["shift_start"], monthly["shift_end"], monthly["price_minor"]) == (
        "06:00:00",
        "14:00:00",
        150000,
    )
    zones = (await cloud_client.get(f"/api/v1/libraries/{library_id}/zones")).json()
    assert sorted(z["name"] for z in zones) == ["Cabins", "Quiet"]


async def test_owner_updates_details_hours_closures_photos_and_rules(
    cloud_client: httpx.AsyncClient, setup_library: LibrarySetup
) -> None:
    patch = {
        "description": "Silent hall",
        "photos": ["https://img.example.com/a.jpg"],
        "closures": [{"date": "2026-12-25", "reason": "Holiday"}],
        "opening_hours": {"mon": {"open": "08:00", "close": "20:00"}, "sun": None},
        "rules": {"max_active_bookings": 2, "hold_minutes": 5},
    }
    response = await cloud_client.patch(
        f"/api/v1/libraries/{setup_library.id}", json=patch, headers=setup_library.owner.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["photos"] == ["https://img.example.com/a.jpg"]
    assert body["closures"] == [{"date": "2026-12-25", "reason": "Holiday"}]
    assert body["opening_hours"]["sun"] is None and body["opening_hours"]["tue"] is None
    assert body["rules"]["max_active_bookings"] == 2 and body["rules"]["hold_minutes"] == 5
    assert body["rules"]["min_duration_minutes"] == 60


async def test_seat_zone_type_and_active_flag_can_change(
    cloud_client: httpx.AsyncClient, setup_library: LibrarySetup
) -> None:
    seat = setup_library.seat("A3")
    cabins = setup_library.zones["Cabins"]
    response = await cloud_client.patch(
        f"/api/v1/seats/{seat['id']}",
        json={"zone_id": cabins["id"], "seat_type": "ac", "active": False},
        headers=setup_library.owner.headers,
    )
    assert response.status_code == 200, response.text
    assert (response.json()["zone"], response.json()["seat_type"], response.json()["active"]) == (
        "Cabins",
        "ac",
        False,
    )


async def test_bad_catalog_input_gets_clear_errors(
    cloud_client: httpx.AsyncClient, setup_library: LibrarySetup
) -> None:
    headers = setup_library.owner.headers
    cases: list[tuple[str, str, dict[str, Any], int, str]] = [
        ("post", "/api/v1/libraries", {"name": "X", "timezone": "Mars/Olympus"}, 422, "validation_error"),
        (
            "patch",
            f"/api/v1/libraries/{setup_library.id}",
            {"opening_hours": {"mon": {"open": "22:00", "close": "06:00"}}},
            422,
            "validation_error",
        ),
        (
            "patch",
            f"/api/v1/libraries/{setup_library.id}",
            {"rules": {"min_duration_minutes": 600, "max_duration_minutes": 60}},
            422,
            "validation_error",
        ),
        (
            "patch",
            f"/api/v1/libraries/{setup_library.id}",
            {"latitude": 10.0, "longitude": None},
            422,
            "invalid_location",
        ),
        ("post", f"/api/v1/libraries/{setup_library.id}/seats", {"labels": ["A1"]}, 409, "seat_exists"),
        (
            "post",
            f"/api/v1/libraries/{setup_library.id}/seats",
            {"labels": ["Z1"], "zone_id": new_id()},
            422,
            "zone_not_in_library",
        ),
        ("post", f"/api/v1/libraries/{setup_library.id}/zones", {"name": "Quiet"}, 409, "zone_exists"),
        (
            "post",
            f"/api/v1/libraries/{setup_library.id}/plans",
            {"name": "M", "kind": "monthly", "price_minor": 1, "currency": "INR"},
            422,
            "validation_error",
        ),
        (
            "post",
            f"/api/v1/libraries/{setup_library.id}/plans",
            {"name": "H", "kind": "hourly", "price_minor": -1, "currency": "INR"},
            422,
            "validation_error",
        ),
        (
            "post",
            f"/api/v1/libraries/{setup_library.id}/plans",
            {"name": "H", "kind": "hourly", "price_minor": 1, "currency": "rupees"},
            422,
            "validation_error",
        ),
        ("post", f"/api/v1/libraries/{new_id()}/zones", {"name": "Q"}, 404, "not_found"),
    ]
    for method, url, body, status, code in cases:
        response = await getattr(cloud_client, method)(url, json=body, headers=headers)
        assert response.status_code == status, (url, body, response.text)
        assert response.json()["error"]["code"] == code, (url, body, response.text)


async def test_students_cannot_write_and_other_tenants_cannot_touch_the_library(
    cloud_client: httpx.AsyncClient, setup_library: LibrarySetup, student: Any, make_account: Any
) -> None:
    response = await cloud_client.post(
        f"/api/v1/libraries/{setup_library.id}/zones", json={"name": "Mine"}, headers=student.headers
    )
    assert response.status_code == 403
    other_owner = await make_account(Role.LIBRARY_OWNER)
    for method, url, body in (
        ("patch", f"/api/v1/libraries/{setup_library.id}", {"name": "Stolen"}),
        ("post", f"/api/v1/libraries/{setup_library.id}/seats", {"labels": ["X9"]}),
        ("patch", f"/api/v1/seats/{setup_library.seat('A1')['id']}", {"active": False}),
        ("patch", f"/api/v1/plans/{setup_library.plans['Hourly']['id']}", {"price_minor": 1}),
    ):
        response = await getattr(cloud_client, method)(url, json=body, headers=other_owner.headers)
        assert response.status_code == 403, (url, response.text)
        assert response.json()["error"]["code"] == "forbidden"
    assert (await cloud_client.get(f"/api/v1/libraries/{setup_library.id}")).json()[
        "name"
    ] == "Sunrise Library"


async def test_staff_can_manage_the_catalog_of_their_tenant(
    cloud_client: httpx.AsyncClient, owner: Any, staff: Any
) -> None:
    setup = await build_library(cloud_client, owner)
    response = await cloud_client.post(
        f"/api/v1/libraries/{setup.id}/seats", json={"labels": ["S1", "S2"]}, headers=staff.headers
    )
    assert response.status_code == 201, response.text
