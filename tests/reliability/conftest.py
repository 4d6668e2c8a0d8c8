"""Fixtures for the reliability suite, reusing the cloud and edge fixtures by import.

- `live_api` (module): a real uvicorn cloud on an ephemeral port (in a thread) on its own database
  cloned from the migrated template, real redis; with a tenant, a library and a logged-in account of
  every role (`live_api.headers[role]`, `{}` for anonymous).
- `tally` (session): counters the `make reliability` summary reads (see `tests/reliability/report.py`).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from cloud.app import create_app
from cloud.config import CloudSettings
from cloud.db import make_session_factory, normalize_url, platform_scope
from cloud.embedded_pg import EmbeddedPostgres
from cloud.identity import service as identity
from cloud.identity.roles import Role
from cloud.tenancy import service as tenancy
from tests.cloud import conftest as cloud_fixtures
from tests.cloud.conftest import TEST_PASSWORD, _admin_execute
from tests.conftest import free_tcp_port
from tests.edge import conftest as edge_fixtures
from tests.reliability.report import Tally

# the cloud and edge fixtures, shared by name (pytest finds fixtures among a conftest's globals)
pg_server = cloud_fixtures.pg_server
pg_template = cloud_fixtures.pg_template
database_url = cloud_fixtures.database_url
redis_server = cloud_fixtures.redis_server
redis_url = cloud_fixtures.redis_url
master_key = cloud_fixtures.master_key
cloud_settings = cloud_fixtures.cloud_settings
cloud_app = cloud_fixtures.cloud_app
cloud_client = cloud_fixtures.cloud_client
owner_session = cloud_fixtures.owner_session
make_account = cloud_fixtures.make_account
passes = edge_fixtures.passes

ROLES = ("anonymous", "student", "library_staff", "library_owner", "super_admin")


@pytest.fixture(scope="session")
def tally() -> Tally:
    return Tally.current()


def reliability_settings(
    database_url: str, redis_url: str | None, master_key: str, data_dir: Path
) -> CloudSettings:
    return CloudSettings(
        _env_file=None,
        database_url=database_url,
        redis_url=redis_url,
        master_key=master_key,
        studyspot_data_dir=data_dir,
        rate_limit_enabled=False,
        db_pool_size=8,  # the load tests send hundreds of requests at once (as tests/cloud/booking does)
        password_hash_time_cost=1,
        password_hash_memory_kib=1024,
        cors_origins=["https://app.studyspot.example"],
    )


class ThreadedServer:
    """uvicorn serving an app in a thread of the test process, on an ephemeral port."""

    def __init__(self, settings: CloudSettings) -> None:
        self.app = create_app(settings)
        self.port = free_tcp_port()
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                host="127.0.0.1",
                port=self.port,
                log_level="error",
                lifespan="on",
                timeout_graceful_shutdown=2,
                ws_ping_interval=None,
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class LiveApi:
    url: str
    settings: CloudSettings
    server: ThreadedServer
    tenant_id: uuid.UUID
    library_id: uuid.UUID
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    def owner_session(self) -> Session:
        engine = create_engine(normalize_url(self.settings.database_url or ""))
        return make_session_factory(engine)()


def login(url: str, email: str) -> dict[str, str]:
    response = httpx.post(f"{url}/api/v1/auth/login", json={"email": email, "password": TEST_PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def seed_accounts(api: LiveApi) -> None:
    """A tenant with a library and one account of every role, logged in through the API."""
    from cloud.tenancy.models import Library

    emails = {role: f"{role}-{uuid.uuid4().hex[:8]}@example.com" for role in ROLES[1:]}
    with api.owner_session() as session:
        platform_scope(session)
        tenant, _ = tenancy.create_tenant(
            session, name="Reliability Library", owner_email=emails["library_owner"],
            owner_password=TEST_PASSWORD, actor_id=None,
        )  # fmt: skip
        library = Library(tenant_id=tenant.id, name="Main hall", timezone="Asia/Kolkata", capacity=40)
        session.add(library)
        identity.create_user(session, emails["student"], TEST_PASSWORD)
        identity.create_user(session, emails["super_admin"], TEST_PASSWORD, is_super_admin=True)
        staff = identity.create_user(session, emails["library_staff"], TEST_PASSWORD)
        tenancy.add_membership(session, tenant.id, staff.id, Role.LIBRARY_STAFF)
        session.commit()
        api.tenant_id, api.library_id = tenant.id, library.id
    api.headers = {"anonymous": {}} | {role: login(api.url, email) for role, email in emails.items()}


@pytest.fixture(scope="module")
def reliability_database(pg_server: EmbeddedPostgres, pg_template: str) -> Iterator[str]:
    name = f"rel_{uuid.uuid4().hex[:12]}"
    _admin_execute(pg_server, f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield pg_server.url(name)
    _admin_execute(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def live_api(
    reliability_database: str, redis_server: str, master_key: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApi]:
    settings = reliability_settings(
        reliability_database, redis_server, master_key, tmp_path_factory.mktemp("cloud")
    )
    server = ThreadedServer(settings)
    server.start()
    api = LiveApi(server.url, settings, server, uuid.uuid4(), uuid.uuid4())
    seed_accounts(api)
    yield api
    server.stop()
