"""Alembic migrations of the cloud schema, runnable from code: `upgrade(owner_url)`.

Migrations run as the OWNER role. They create the non-owner API role (default `studyspot_app`,
LOGIN, NOBYPASSRLS) and grant it what it needs; tables that later migrations create are granted to it
by default privileges, but each tenant table still needs its own ENABLE/FORCE RLS and policies.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import create_engine, text

from cloud.db import normalize_url

MIGRATIONS_DIR = Path(__file__).resolve().parent
DEFAULT_APP_ROLE = "studyspot_app"


def alembic_config(owner_url: str, app_role: str = DEFAULT_APP_ROLE) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation: escape '%' of url-encoded socket paths
    config.set_main_option("sqlalchemy.url", normalize_url(owner_url).replace("%", "%%"))
    config.attributes["app_role"] = app_role
    return config


def upgrade(
    owner_url: str,
    revision: str = "heads",
    *,
    app_role: str = DEFAULT_APP_ROLE,
    app_password: str | None = None,
) -> None:
    """Bring the database at `owner_url` to `revision` (default: every head)."""
    command.upgrade(alembic_config(owner_url, app_role), revision)
    if app_password:
        set_role_password(owner_url, app_role, app_password)


def app_role() -> str:
    """Inside a migration: the API role's name, checked to be safe to paste into GRANT statements."""
    role = str(context.config.attributes.get("app_role", DEFAULT_APP_ROLE))
    if not role.replace("_", "").isalnum():
        raise ValueError(f"unsafe role name {role!r}")
    return role


def downgrade(owner_url: str, revision: str, *, app_role: str = DEFAULT_APP_ROLE) -> None:
    command.downgrade(alembic_config(owner_url, app_role), revision)


def set_role_password(owner_url: str, role: str, password: str) -> None:
    engine = create_engine(normalize_url(owner_url))
    try:
        with engine.begin() as conn:
            quoted_role = conn.dialect.identifier_preparer.quote(role)
            literal = conn.execute(text("SELECT quote_literal(:p)"), {"p": password}).scalar_one()
            conn.execute(text(f"ALTER ROLE {quoted_role} PASSWORD {literal}"))
    finally:
        engine.dispose()
