"""Bring up the cloud's database: embedded PostgreSQL when DATABASE_URL is unset, then migrations.

Used by `studyspot cloud serve|migrate` and by the demo:

    settings, pg = ensure_database(CloudSettings())   # pg is None with an external DATABASE_URL
    app = create_app(settings)
    ...
    if pg: pg.stop()
"""

from __future__ import annotations

import logging

from sqlalchemy import create_engine, text

from cloud.config import CloudSettings
from cloud.db import normalize_url
from cloud.embedded_pg import EmbeddedPostgres, start_embedded_postgres
from cloud.migrations import upgrade

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "studyspot"


def ensure_database(
    settings: CloudSettings, *, migrate: bool = True
) -> tuple[CloudSettings, EmbeddedPostgres | None]:
    """Return settings whose DATABASE_URL points at a migrated database (and the embedded server)."""
    pg: EmbeddedPostgres | None = None
    if not settings.database_url:
        pg = start_embedded_postgres(settings.data_dir)
        create_database_if_missing(pg.owner_url, EMBEDDED_DATABASE)
        settings = settings.model_copy(update={"database_url": pg.url(EMBEDDED_DATABASE)})
    assert settings.database_url is not None
    if migrate:
        upgrade(settings.database_url, app_role=settings.app_db_role, app_password=settings.app_db_password)
    return settings, pg


def create_database_if_missing(maintenance_url: str, name: str) -> None:
    engine = create_engine(normalize_url(maintenance_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            if exists is None:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
                log.info("created database %s", name)
    finally:
        engine.dispose()
