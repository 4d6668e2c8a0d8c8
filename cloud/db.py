"""SQLAlchemy 2 engine on psycopg 3, sessions, and the per-transaction row-level-security scope.

The API connects as the non-owner role (see `app_url`), so PostgreSQL row-level security applies.
A session carries its scope in `session.info`; at the start of EVERY transaction the scope is
applied with `set_config(..., true)` (= SET LOCAL), so it never leaks to the next user of a pooled
connection and survives `commit()` (the next transaction gets it again).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from cloud.config import CloudSettings

SCOPE_TENANT = "scope_tenant_id"
SCOPE_USER = "scope_user_id"
SCOPE_PLATFORM = "scope_platform"
# A pooled connection idle longer than this is pinged before use (see `_ping_idle_connections`).
PING_IDLE_AFTER_SECONDS = 2.0
_CHECKED_IN_AT = "studyspot_checked_in_at"


class Base(DeclarativeBase):
    """Declarative base of every cloud table."""


def owner_url(settings: CloudSettings) -> str:
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL is not set (call cloud.bootstrap.ensure_database first)")
    return normalize_url(settings.database_url)


def normalize_url(url: str) -> str:
    """Use the psycopg 3 driver whatever scheme the URL was given with."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def app_url(settings: CloudSettings) -> str:
    """URL of the non-owner role the API runs as."""
    if settings.app_database_url:
        return normalize_url(settings.app_database_url)
    parsed = make_url(owner_url(settings)).set(
        username=settings.app_db_role, password=settings.app_db_password
    )
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    engine = create_engine(normalize_url(url), pool_size=pool_size, max_overflow=pool_size)
    _ping_idle_connections(engine)
    return engine


def _ping_idle_connections(engine: Engine) -> None:
    """`pool_pre_ping` for connections that sat idle in the pool, not for those back in use at once.

    pool_pre_ping costs a round trip on every checkout (3-6% of the worker's CPU per edge sync
    request, and a statement for PostgreSQL). A connection idle for a while is where a server restart,
    an idle timeout or a dropped NAT entry shows, and it is still pinged (a dead one is replaced, and
    the pool's older connections with it). One reused within PING_IDLE_AFTER_SECONDS is not: if the
    server went away meanwhile, its first statement fails as a disconnect, SQLAlchemy invalidates the
    whole pool, and that request answers 503 `database_unavailable` like those made while the server
    was down.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(
        dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
    ) -> None:
        checked_in_at = record.info.get(_CHECKED_IN_AT)
        if checked_in_at is None or time.monotonic() - checked_in_at < PING_IDLE_AFTER_SECONDS:
            return  # a fresh connection, or one in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # dead (or unusable: never seen, but a raw driver error would be a 500): the pool drops
            # it and its older connections and checks out a new one, whose failure to connect is
            # the usual OperationalError (503)
            raise exc.InvalidatePoolError(str(error)) from error


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@event.listens_for(Session, "after_begin")
def _apply_scope(session: Session, transaction: SessionTransaction, connection: Connection) -> None:
    if transaction.nested:
        return  # a SAVEPOINT runs inside a transaction whose scope is already set (one round trip less)
    _set_scope_settings(connection, session.info)


# Driver SQL (psycopg's placeholders): it runs at the start of every scoped transaction, and skipping
# SQLAlchemy's statement compilation and parameter processing saves about a third of its CPU time.
_SET_SCOPE = (
    "SELECT set_config('app.tenant_id', %(tenant)s, true), set_config('app.user_id', %(user)s, true), "
    "set_config('app.platform', %(platform)s, true)"
)


def _set_scope_settings(connection: Connection, info: dict[str, Any]) -> None:
    tenant = info.get(SCOPE_TENANT)
    user = info.get(SCOPE_USER)
    platform = info.get(SCOPE_PLATFORM)
    if tenant is None and user is None and not platform:
        return
    connection.exec_driver_sql(
        _SET_SCOPE,
        {
            "tenant": str(tenant) if tenant else "",
            "user": str(user) if user else "",
            "platform": "on" if platform else "",
        },
    )


def tenant_scope(session: Session, tenant_id: uuid.UUID | None, user_id: uuid.UUID | None) -> None:
    """Scope every transaction of `session` to a tenant and/or a user (RLS reads these settings)."""
    _remember_scope(session, tenant_id, user_id, platform=False)
    _reapply(session)


def platform_scope(session: Session, user_id: uuid.UUID | None = None) -> None:
    """Explicit cross-tenant access (auth lookups, super-admin, seeding). Callers audit its use."""
    _remember_scope(session, None, user_id, platform=True)
    _reapply(session)


def row_tenant_scope_sql(tenant_column: str) -> str:
    """SELECT-list expressions that scope the running transaction to the tenant of the row read, as
    `tenant_scope(session, tenant, None)` does, in the statement that finds the tenant (one round trip
    less). The row itself was read under the scope in force: RLS filters rows before the select list
    is evaluated. Record it with `tenant_scope_applied` once the row came back."""
    return (
        f"set_config('app.tenant_id', CAST({tenant_column} AS text), true), "
        "set_config('app.user_id', '', true), set_config('app.platform', '', true)"
    )


def tenant_scope_applied(session: Session, tenant_id: uuid.UUID) -> None:
    """`tenant_scope(session, tenant_id, None)` for a transaction a `row_tenant_scope_sql` statement
    already scoped: only the session's later transactions need it set."""
    _remember_scope(session, tenant_id, None, platform=False)


def _remember_scope(
    session: Session, tenant_id: uuid.UUID | None, user_id: uuid.UUID | None, *, platform: bool
) -> None:
    """The scope `_apply_scope` sets at the start of each of the session's transactions."""
    session.info[SCOPE_TENANT] = tenant_id
    session.info[SCOPE_USER] = user_id
    session.info[SCOPE_PLATFORM] = platform


def _reapply(session: Session) -> None:
    if session.in_transaction():
        _set_scope_settings(session.connection(), session.info)


@contextmanager
def scoped_transaction(
    factory: sessionmaker[Session],
    *,
    tenant_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
    platform: bool = False,
) -> Iterator[Session]:
    """One session, one transaction, committed on success and rolled back on error."""
    with factory() as session:
        if platform:
            platform_scope(session, user_id)
        else:
            tenant_scope(session, tenant_id, user_id)
        with session.begin():
            yield session
