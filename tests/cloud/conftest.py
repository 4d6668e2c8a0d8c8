"""Fixtures for every cloud test (real embedded PostgreSQL, real redis-server).

Reuse these from any `tests/cloud/**` test:

- `pg_server` (session): one embedded PostgreSQL per test session (per xdist worker), under /tmp.
- `pg_template` (session): name of a database with every migration applied, used as a template.
- `database_url` (function): OWNER URL of a fresh database cloned from the template
  (`CREATE DATABASE ... TEMPLATE`, ~50 ms); dropped after the test.
- `redis_server` (session): a real `redis-server` on a free port; `redis_url` (function) is its
  URL after FLUSHALL.
- `master_key` (session): base64 master key shared by apps of the session (MASTER_KEY).
- `cloud_settings` (function): `CloudSettings` for the two above, a tmp data dir, a fixed master
  key and rate limits high enough not to get in the way (tests of limits build their own).
- `cloud_app` (function): `create_app(cloud_settings)`; `cloud_client` (function): an
  `httpx.AsyncClient` on it through `ASGITransport`, base URL http://test.
- `owner_session` (function): a SQLAlchemy session as the owner role (bypasses RLS: for setup and
  for checking what the API wrote).
- `make_account` (function): `await make_account(role, ...)` creates an account with that role
  directly through the services and returns an `Account` with `id`, `email`, `password`,
  `tenant_id`, `headers` (a bearer token from a real login through the API).
"""

from __future__ import annotations

import base64
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from fastapi import FastAPI
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from cloud.app import close_app, create_app
from cloud.config import CloudSettings
from cloud.db import make_session_factory, normalize_url, platform_scope
from cloud.embedded_pg import EmbeddedPostgres, start_embedded_postgres
from cloud.identity import service as identity
from cloud.identity.roles import Role
from cloud.migrations import upgrade
from cloud.tenancy import service as tenancy

REDIS_SERVER_BIN = "/usr/bin/redis-server"
TEMPLATE_DB = "studyspot_template"
TEST_PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[EmbeddedPostgres]:
    root = Path(tempfile.mkdtemp(prefix="studyspot-pg-", dir="/tmp"))
    server = start_embedded_postgres(root)
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


def _admin_execute(server: EmbeddedPostgres, *statements: str) -> None:
    engine = create_engine(server.owner_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def pg_template(pg_server: EmbeddedPostgres) -> str:
    _admin_execute(
        pg_server,
        f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}" WITH (FORCE)',
        f'CREATE DATABASE "{TEMPLATE_DB}"',
    )
    upgrade(pg_server.url(TEMPLATE_DB))
    return TEMPLATE_DB


@pytest.fixture
def database_url(pg_server: EmbeddedPostgres, pg_template: str) -> Iterator[str]:
    name = f"test_{uuid.uuid4().hex[:16]}"
    _admin_execute(pg_server, f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield pg_server.url(name)
    _admin_execute(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [REDIS_SERVER_BIN, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)
    client.close()
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    client = redis.Redis.from_url(redis_server)
    client.flushall()
    client.close()
    return redis_server


@pytest.fixture(scope="session")
def master_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture
def cloud_settings(database_url: str, redis_url: str, master_key: str, tmp_path: Path) -> CloudSettings:
    return CloudSettings(
        _env_file=None,
        database_url=database_url,
        redis_url=redis_url,
        master_key=master_key,
        studyspot_data_dir=tmp_path / "data",
        rate_limit_auth="10000/minute",
        rate_limit_booking="10000/minute",
        rate_limit_general="10000/minute",
        rate_limit_upload="10000/minute",
        db_pool_size=4,
        # still argon2id, at a test-friendly cost (production uses the library defaults)
        password_hash_time_cost=1,
        password_hash_memory_kib=1024,
    )


@pytest.fixture
async def cloud_app(cloud_settings: CloudSettings) -> AsyncIterator[FastAPI]:
    app = create_app(cloud_settings)
    yield app
    await close_app(app)


@pytest.fixture
async def cloud_client(cloud_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=cloud_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture
def owner_session(database_url: str) -> Iterator[Session]:
    engine = create_engine(normalize_url(database_url))
    with make_session_factory(engine)() as session:
        yield session
    engine.dispose()


@dataclass
class Account:
    id: uuid.UUID
    email: str
    password: str
    role: Role
    tenant_id: uuid.UUID | None
    headers: dict[str, str]


MakeAccount = Callable[..., Awaitable[Account]]


@pytest.fixture
def make_account(cloud_app: FastAPI, cloud_client: httpx.AsyncClient) -> MakeAccount:
    """`await make_account(Role.X, tenant_id=None, email=None)`: a logged-in account with that role.

    Owners and staff get a new tenant unless `tenant_id` is given.
    """

    async def make(role: Role, *, tenant_id: uuid.UUID | None = None, email: str | None = None) -> Account:
        email = email or f"{role.value}-{uuid.uuid4().hex[:8]}@example.com"
        with cloud_app.state.session_factory() as session:
            platform_scope(session)
            user = identity.create_user(
                session, email, TEST_PASSWORD, full_name=role.value, is_super_admin=role is Role.SUPER_ADMIN
            )
            if role in (Role.LIBRARY_OWNER, Role.LIBRARY_STAFF):
                if tenant_id is None:
                    tenant, _ = tenancy.create_tenant(
                        session,
                        name=f"Tenant {uuid.uuid4().hex[:6]}",
                        owner_email=email,
                        owner_password=None,
                        actor_id=None,
                    )
                    tenant_id = tenant.id
                tenancy.add_membership(session, tenant_id, user.id, role)
            session.commit()
            user_id = user.id
        response = await cloud_client.post(
            "/api/v1/auth/login", json={"email": email, "password": TEST_PASSWORD}
        )
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        return Account(user_id, email, TEST_PASSWORD, role, tenant_id, {"Authorization": f"Bearer {token}"})

    return make
