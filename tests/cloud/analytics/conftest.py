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
