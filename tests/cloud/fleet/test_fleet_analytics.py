"""Analytics over the real sync path: a door check-in and a meter's minutes pushed by an enrolled
edge show up in the owner's summary (issue 6 §7, issue 9 §4)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import httpx
from sqlalchemy import text

from cloud import crypto
from cloud.booking.service import issue_demo_booking
from cloud.db import platform_scope
from cloud.identity import service as identity
from edge.store import iso, utcnow
from edge.sync import SyncClient
from edge.sync_store import SyncStore

from .conftest import TEST_PASSWORD, LiveCloud, Tenant, enrolled_store


def _booked_pass(live_cloud: LiveCloud, tenant: Tenant) -> str:
    with live_cloud.owner_session() as session:
        platform_scope(session)
        student = identity.create_user(session, f"s-{uuid.uuid4().hex[:8]}@example.com", TEST_PASSWORD)
        seat_id = session.execute(
            text("INSERT INTO seats (tenant_id, library_id, label) VALUES (:t, :l, 'AN1') RETURNING id"),
            {"t": tenant.tenant_id, "l": tenant.library_id},
        ).scalar_one()
        session.commit()
        booking_id, _ = issue_demo_booking(
            session, library_id=tenant.library_id, seat_id=seat_id, user_id=student.id,
            master_key=crypto.load_master_key(live_cloud.settings),
        )  # fmt: skip
        return str(
            session.execute(
                text("SELECT pass_id FROM bookings WHERE id = :b"), {"b": booking_id}
            ).scalar_one()
        )


async def test_a_door_check_in_and_meter_minutes_reach_the_owners_summary(
    live_cloud: LiveCloud, tenant: Tenant, tmp_path: Path
) -> None:
    pass_id = _booked_pass(live_cloud, tenant)
    edge = enrolled_store(live_cloud.url, live_cloud, tenant, tmp_path / "edge.sqlite3")
    client = SyncClient(edge)
    try:
        now = utcnow()
        door = {"pass_id": pass_id, "door_id": "front", "direction": "in", "occurred_at": iso(now)}
        edge.record_checkin(
            pass_id=pass_id, holder="h", door_id="front", direction="in", method="qr", at=now,
            outbox_payload=door,
        )  # fmt: skip
        first_minute = now.replace(second=0, microsecond=0) - dt.timedelta(minutes=10)
        for n in range(10):  # a cumulative kWh meter, one reading a minute
            edge.record_telemetry(
                "main-meter", "energy", 5.0 + 0.01 * n, first_minute + dt.timedelta(minutes=n)
            )
        assert SyncStore(edge).queue_closed_telemetry(now) == 10
        await client.drain()
    finally:
        await client.stop()
        edge.close()

    async with httpx.AsyncClient(base_url=live_cloud.url) as http:
        response = await http.get(
            f"/api/v1/analytics/libraries/{tenant.library_id}/summary?days=1", headers=tenant.owner_headers
        )
    assert response.status_code == 200, response.text
    summary = response.json()
    assert (summary["bookings"], summary["checkins_today"], summary["no_shows"]) == (1, 1, 0)
    assert abs(summary["energy_kwh"] - 0.09) < 1e-6  # nine rises of 0.01 kWh
