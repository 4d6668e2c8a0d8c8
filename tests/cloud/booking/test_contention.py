"""Many concurrent requests for one seat and slot through a real uvicorn server: exactly one wins."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.orm import Session

from cloud.identity.roles import Role
from tests.cloud.booking.conftest import LibrarySetup
from tests.cloud.booking.helpers import hourly, slot

REQUESTS = 150
STUDENTS = 5


async def test_exactly_one_of_many_concurrent_bookings_wins(
    live_server: str, setup_library: LibrarySetup, make_account: Any, owner_session: Session
) -> None:
    students = [await make_account(Role.STUDENT) for _ in range(STUDENTS)]
    body = hourly(setup_library, "A1", slot(2, "10:00", "12:00"))
    limits = httpx.Limits(max_connections=REQUESTS, max_keepalive_connections=REQUESTS)
    async with httpx.AsyncClient(base_url=live_server, limits=limits, timeout=60) as client:
        responses = await asyncio.gather(
            *(
                client.post("/api/v1/bookings", json=body, headers=students[i % STUDENTS].headers)
                for i in range(REQUESTS)
            )
        )
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {201: 1, 409: REQUESTS - 1}, statuses
    losers = [r.json()["error"] for r in responses if r.status_code == 409]
    assert {error["code"] for error in losers} == {"seat_taken"}
    assert all(1 <= len(error["details"]["alternatives"]) <= 3 for error in losers)
    rows = owner_session.execute(text("SELECT count(*) FROM bookings")).scalar_one()
    assert rows == 1
