"""A throwaway cloud database for benchmarks: embedded PostgreSQL in a temp dir, one migrated
database, and settings with rate limits off (benchmarks measure the work, not the limiter)."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from cloud.config import CloudSettings
from cloud.db import platform_scope
from cloud.embedded_pg import start_embedded_postgres
from cloud.migrations import upgrade
from cloud.tenancy import service as tenancy
from cloud.tenancy.models import Library, Seat, Tenant


@contextlib.contextmanager
def bench_cloud(database: str) -> Iterator[CloudSettings]:
    """Settings of a freshly migrated database `database`; everything is removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="studyspot-bench-", dir="/tmp"))
    pg = start_embedded_postgres(root)
    try:
        engine = create_engine(pg.owner_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{database}"'))
        engine.dispose()
        url = pg.url(database)
        upgrade(url)
        yield CloudSettings(
            _env_file=None,
            database_url=url,
            redis_url=None,
            master_key="x" * 43 + "=",
            studyspot_data_dir=root / "data",
            rate_limit_enabled=False,
            db_pool_size=20,
        )
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class BenchLibrary:
    tenant: Tenant
    library: Library
    seats: list[Seat]
    plan_id: uuid.UUID


def bench_library(session: Session, *, seats: int, hourly_price_minor: int) -> BenchLibrary:
    """Tenant "Bench" with one Asia/Kolkata library of `seats` seats and an hourly plan (not committed)."""
    platform_scope(session)
    tenant, _ = tenancy.create_tenant(
        session,
        name="Bench",
        owner_email="owner@bench.example",
        owner_password="bench owner pw 1",
        actor_id=None,
    )
    library = tenancy.create_library(session, tenant.id, name="Bench Library", timezone="Asia/Kolkata")
    seat_rows = tenancy.add_seats(session, library, [f"S{i:03d}" for i in range(seats)])
    plan_id = session.execute(
        text(
            "INSERT INTO plans (tenant_id, library_id, name, kind, price_minor, currency) "
            "VALUES (:t, :l, 'Hourly', 'hourly', :price, 'INR') RETURNING id"
        ),
        {"t": tenant.id, "l": library.id, "price": hourly_price_minor},
    ).scalar_one()
    return BenchLibrary(tenant, library, seat_rows, plan_id)
