"""A throwaway cloud database for benchmarks: embedded PostgreSQL in a temp dir, one migrated
database, and settings with rate limits off (benchmarks measure the work, not the limiter)."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, text

from cloud.config import CloudSettings
from cloud.embedded_pg import start_embedded_postgres
from cloud.migrations import upgrade


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
