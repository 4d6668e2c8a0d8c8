"""Fixtures for analytics tests: an owner's library (through the API) with seeded past activity."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import text

from cloud.analytics.history import seed_history
from cloud.db import platform_scope

SeedHistory = Callable[..., dict[str, int]]


@pytest.fixture
def history_seeder(cloud_app: FastAPI) -> SeedHistory:
    """`history_seeder(setup, now=..., days=28)` runs `seed_history` for a `LibrarySetup` and commits."""

    def seed(setup: Any, *, now: dt.datetime | None = None, days: int = 28, seed: int = 7) -> dict[str, int]:
        with cloud_app.state.session_factory() as session:
            counts = seed_history(
                session,
                tenant_id=setup.owner.tenant_id,
                library_id=uuid.UUID(setup.id),
                now=now or dt.datetime.now(dt.UTC),
                days=days,
                seed=seed,
            )
            session.commit()
        return counts

    return seed


@pytest.fixture
def platform_sql(cloud_app: FastAPI) -> Callable[..., list[Any]]:
    """`platform_sql(sql, **params)`: run SQL as the app role in the platform scope, committed."""

    def run(sql: str, **params: Any) -> list[Any]:
        with cloud_app.state.session_factory() as session:
            platform_scope(session)
            result = session.execute(text(sql), params)
            rows = list(result.all()) if result.returns_rows else []
            session.commit()
        return rows

    return run


@pytest.fixture
def add_stay(platform_sql: Callable[..., list[Any]]) -> Callable[..., uuid.UUID]:
    """`add_stay(setup, seat_label, start, end, checked_in_at=..., status="completed")`: a past booking
    written straight to the table (as the edge check-in and the completion job leave it)."""

    def add(
        setup: Any,
        seat: str,
        start: dt.datetime,
        end: dt.datetime,
        *,
        checked_in_at: dt.datetime | None = None,
        status: str = "completed",
    ) -> uuid.UUID:
        booking_id = uuid.uuid4()
        platform_sql(
            "INSERT INTO bookings (id, tenant_id, library_id, seat_id, user_id, kind, status, during,"
            " price_minor, currency, checked_in_at, pass_id) VALUES (:id, :tenant, :library, :seat, :user,"
            " 'hourly', :status, tstzrange(:start, :end, '[)'), 0, 'INR', :checked_in_at, :pass_id)",
            id=booking_id, tenant=setup.owner.tenant_id, library=setup.id, seat=setup.seat(seat)["id"],
            user=setup.owner.id, status=status, start=start, end=end, checked_in_at=checked_in_at,
            pass_id=booking_id.hex[:16],
        )  # fmt: skip
        return booking_id

    return add


@pytest.fixture
def add_device(platform_sql: Callable[..., list[Any]]) -> Callable[[Any], uuid.UUID]:
    """`add_device(setup)`: an enrolled edge device row of the library (for events and telemetry)."""

    def add(setup: Any) -> uuid.UUID:
        device_id = uuid.uuid4()
        platform_sql(
            "INSERT INTO edge_devices (id, tenant_id, library_id, name, status, agent_version, last_seen_at,"
            " clock_skew_seconds) VALUES (:id, :tenant, :library, 'desk-pi', 'active', '0.1.0', now(), 42.0)",
            id=device_id, tenant=setup.owner.tenant_id, library=setup.id,
        )  # fmt: skip
        return device_id

    return add
