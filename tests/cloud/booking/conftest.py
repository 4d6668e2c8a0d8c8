"""Fixtures for catalog/booking/search tests: an owner with a library, zones, seats and plans.

`setup_library` builds everything through the HTTP API; `student` is a logged-in student.
The library is in America/New_York on purpose (not the server's zone, which is UTC).
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn

from cloud.app import create_app
from cloud.config import CloudSettings
from cloud.identity.roles import Role

LIBRARY_TZ = "America/New_York"


@dataclass
class LibrarySetup:
    owner: Any
    library: dict[str, Any]
    zones: dict[str, dict[str, Any]]
    seats: list[dict[str, Any]]
    plans: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(self.library["id"])

    def seat(self, label: str) -> dict[str, Any]:
        return next(seat for seat in self.seats if seat["label"] == label)


async def build_library(
    client: httpx.AsyncClient,
    owner: Any,
    *,
    name: str = "Sunrise Library",
    timezone: str = LIBRARY_TZ,
    rules: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> LibrarySetup:
    body: dict[str, Any] = {
        "name": name,
        "timezone": timezone,
        "address": "12 Main Street",
        "latitude": 40.7128,
        "longitude": -74.0060,
        "amenities": ["wifi", "ac"],
        "opening_hours": {
            day: {"open": "06:00", "close": "22:00"}
            for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        },
    }
    if rules:
        body["rules"] = rules
    body.update(extra or {})
    response = await client.post("/api/v1/libraries", json=body, headers=owner.headers)
    assert response.status_code == 201, response.text
    library = response.json()
    zones = {}
    for zone_name in ("Quiet", "Cabins"):
        response = await client.post(
            f"/api/v1/libraries/{library['id']}/zones", json={"name": zone_name}, headers=owner.headers
        )
        assert response.status_code == 201, response.text
        zones[zone_name] = response.json()
    seats = []
    for zone_name, labels, seat_type in (
        ("Quiet", ["A1", "A2", "A3"], "open_desk"),
        ("Cabins", ["C1"], "cabin"),
    ):
        response = await client.post(
            f"/api/v1/libraries/{library['id']}/seats",
            json={"labels": labels, "zone_id": zones[zone_name]["id"], "seat_type": seat_type},
            headers=owner.headers,
        )
        assert response.status_code == 201, response.text
        seats.extend(response.json())
    setup = LibrarySetup(owner, library, zones, seats)
    for plan in (
        {"name": "Hourly", "kind": "hourly", "price_minor": 5000, "currency": "INR"},
        {"name": "Day pass", "kind": "day_pass", "price_minor": 30000, "currency": "INR"},
        {"name": "Free hour", "kind": "hourly", "price_minor": 0, "currency": "INR"},
        {
            "name": "Morning",
            "kind": "monthly",
            "price_minor": 150000,
            "currency": "INR",
            "shift_start": "06:00",
            "shift_end": "14:00",
        },
    ):
        response = await client.post(f"/api/v1/libraries/{setup.id}/plans", json=plan, headers=owner.headers)
        assert response.status_code == 201, response.text
        setup.plans[str(plan["name"])] = response.json()
    return setup


@pytest.fixture
async def owner(make_account: Any) -> Any:
    return await make_account(Role.LIBRARY_OWNER)


@pytest.fixture
async def setup_library(cloud_client: httpx.AsyncClient, owner: Any) -> LibrarySetup:
    return await build_library(cloud_client, owner)


@pytest.fixture
async def student(make_account: Any) -> Any:
    return await make_account(Role.STUDENT)


@pytest.fixture
async def staff(make_account: Any, owner: Any) -> Any:
    return await make_account(Role.LIBRARY_STAFF, tenant_id=owner.tenant_id)


def new_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def live_server(cloud_settings: CloudSettings) -> Iterator[str]:
    """A second app on the same database behind a real uvicorn server on an ephemeral port."""
    app = create_app(cloud_settings.model_copy(update={"db_pool_size": 8}))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()
    app.state.engine.dispose()
