"""Sync against the real booking tables: a booked pass reaches the door, the door's check-in marks
the booking checked_in, a cancellation reaches the door as a revocation."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from cloud import crypto
from cloud.booking.service import issue_demo_booking
from cloud.db import platform_scope
from cloud.fleet.pull import LAG
from cloud.identity import service as identity
from edge.store import Store, iso, utcnow
from edge.sync import SyncClient
from edge.sync_store import SyncStore
from shared.passes import short_id

from .conftest import TEST_PASSWORD, LiveCloud, Tenant, enrolled_store


@pytest.fixture
def booked(live_cloud: LiveCloud, tenant: Tenant) -> tuple[uuid.UUID, str]:
    """A confirmed booking with its pass, made by the booking service; (booking id, pass id)."""
    with live_cloud.owner_session() as session:
        platform_scope(session)
        student = identity.create_user(session, f"s-{uuid.uuid4().hex[:8]}@example.com", TEST_PASSWORD)
        seat_id = session.execute(
            text("INSERT INTO seats (tenant_id, library_id, label) VALUES (:t, :l, :label) RETURNING id"),
            {"t": tenant.tenant_id, "l": tenant.library_id, "label": f"B{uuid.uuid4().hex[:4]}"},
        ).scalar_one()
        session.execute(
            text(
                "INSERT INTO plans (tenant_id, library_id, name, kind, price_minor, currency)"
                " VALUES (:t, :l, 'Hourly desk', 'hourly', 4000, 'INR')"
            ),
            {"t": tenant.tenant_id, "l": tenant.library_id},
        )
        session.commit()
        booking_id, _ = issue_demo_booking(
            session, library_id=tenant.library_id, seat_id=seat_id, user_id=student.id,
            master_key=crypto.load_master_key(live_cloud.settings),
        )  # fmt: skip
        pass_id = session.execute(
            text("SELECT pass_id FROM bookings WHERE id = :b"), {"b": booking_id}
        ).scalar_one()
    time.sleep(LAG.total_seconds() + 0.1)
    return booking_id, str(pass_id)


@pytest.fixture
def edge(live_cloud: LiveCloud, tenant: Tenant, tmp_path: Path) -> Iterator[Store]:
    store = enrolled_store(live_cloud.url, live_cloud, tenant, tmp_path / "edge.sqlite3")
    yield store
    store.close()


async def test_pass_checkin_and_cancellation_round_trip(
    live_cloud: LiveCloud, booked: tuple[uuid.UUID, str], edge: Store
) -> None:
    booking_id, pass_id = booked
    client = SyncClient(edge)
    await client.pull_once()
    passes = {row["pass_id"]: row for row in edge.db.query("SELECT * FROM passes")}
    assert passes[pass_id]["booking_id"] == str(booking_id) and passes[pass_id]["status"] == "active"
    assert edge.get_setting("pass_keys") not in (None, "{}")
    (plan,) = SyncStore(edge).plans()
    assert (plan["name"], plan["kind"], plan["price_minor"], plan["currency"]) == (
        "Hourly desk",
        "hourly",
        4000,
        "INR",
    )

    now = utcnow()
    edge.record_checkin(
        pass_id=pass_id, holder="h", door_id="front", direction="in", method="qr", at=now,
        outbox_payload={"pass_id": pass_id, "door_id": "front", "direction": "in", "occurred_at": iso(now)},
    )  # fmt: skip
    await client.drain()
    with live_cloud.owner_session() as session:
        status, consumed = session.execute(
            text(
                "SELECT b.status, e.consumed_at IS NOT NULL FROM bookings b JOIN edge_events e"
                " ON e.payload->>'pass_id' = b.pass_id WHERE b.id = :b"
            ),
            {"b": booking_id},
        ).one()
        assert (status, consumed) == ("checked_in", True)
        session.execute(text("UPDATE bookings SET status = 'cancelled' WHERE id = :b"), {"b": booking_id})
        session.commit()
    await asyncio.sleep(LAG.total_seconds() + 0.1)
    await client.pull_once()
    assert edge.is_revoked(pass_id)
    await client.stop()


async def test_seats_reach_the_edge_with_their_zone_and_follow_changes(
    live_cloud: LiveCloud, tenant: Tenant, edge: Store
) -> None:
    with live_cloud.owner_session() as session:
        params = {"t": tenant.tenant_id, "l": tenant.library_id, "z": f"Quiet {uuid.uuid4().hex[:4]}"}
        zone_id = session.execute(
            text("INSERT INTO zones (tenant_id, library_id, name) VALUES (:t, :l, :z) RETURNING id"), params
        ).scalar_one()
        seat_id = session.execute(
            text(
                "INSERT INTO seats (tenant_id, library_id, label, zone_id, seat_type)"
                " VALUES (:t, :l, :label, :zone, 'cabin') RETURNING id"
            ),
            params | {"label": f"Q{uuid.uuid4().hex[:4]}", "zone": zone_id},
        ).scalar_one()
        session.commit()
    await asyncio.sleep(LAG.total_seconds() + 0.1)
    client = SyncClient(edge)
    await client.pull_once()
    seats = {row["seat_id"]: row for row in edge.seats()}
    mine = seats[str(seat_id)]
    assert (mine["zone_id"], mine["zone_name"], mine["seat_type"], mine["active"]) == (
        str(zone_id), params["z"], "cabin", True,
    )  # fmt: skip
    assert mine["short_id"] == short_id(seat_id)

    with live_cloud.owner_session() as session:  # a zone rename and a retired seat come as a delta
        session.execute(text("UPDATE zones SET name = 'Silent hall' WHERE id = :z"), {"z": zone_id})
        session.commit()
    await asyncio.sleep(LAG.total_seconds() + 0.1)
    await client.pull_once()
    assert {row["seat_id"]: row for row in edge.seats()}[str(seat_id)]["zone_name"] == "Silent hall"
    with live_cloud.owner_session() as session:
        session.execute(text("UPDATE seats SET status = 'inactive' WHERE id = :s"), {"s": seat_id})
        session.commit()
    await asyncio.sleep(LAG.total_seconds() + 0.1)
    await client.pull_once()
    assert str(seat_id) not in {row["seat_id"] for row in edge.seats()}

    edge.db.execute("INSERT INTO seats (seat_id, short_id, label, active) VALUES ('stale', 'x', 'X', 1)")
    edge.db.execute("DELETE FROM settings WHERE key = 'sync_cursor'")  # a full resync replaces the set
    await client.pull_once()
    labels = {row["seat_id"] for row in edge.seats()}
    assert "stale" not in labels and labels == set(seats) - {str(seat_id)}
    await client.stop()
