"""Fleet fixtures: a real uvicorn cloud on a free port (module-scoped), a tenant with a library, an
owner with a bearer token, and helpers to make devices and enrolled edge stores.

The cloud runs in a thread of the test process (so tests can register booking hooks); the fault
tests start it as a separate process instead (`CloudProcess`) to kill it with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from cloud.app import create_app
from cloud.config import CloudSettings
from cloud.db import make_session_factory, normalize_url, platform_scope
from cloud.embedded_pg import EmbeddedPostgres
from cloud.identity import service as identity
from cloud.identity.roles import Role
from cloud.tenancy import service as tenancy
from cloud.tenancy.models import Library
from edge.enroll import enroll
from edge.store import Store
from tests.conftest import free_tcp_port

REPO = Path(__file__).resolve().parents[3]
TEST_PASSWORD = "correct horse battery"  # the same as tests/cloud/conftest.py's accounts


def _admin_execute(server: EmbeddedPostgres, *statements: str) -> None:
    engine = create_engine(server.owner_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


def make_settings(database_url: str, redis_url: str | None, master_key: str, data_dir: Path) -> CloudSettings:
    return CloudSettings(
        _env_file=None,
        database_url=database_url,
        redis_url=redis_url,
        master_key=master_key,
        studyspot_data_dir=data_dir,
        rate_limit_enabled=False,
        db_pool_size=4,
        password_hash_time_cost=1,
        password_hash_memory_kib=1024,
        hsts_enabled=False,
    )


@pytest.fixture(scope="module")
def fleet_database(pg_server: EmbeddedPostgres, pg_template: str) -> Iterator[str]:
    name = f"fleet_{uuid.uuid4().hex[:12]}"
    _admin_execute(pg_server, f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield pg_server.url(name)
    _admin_execute(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def fleet_settings(
    fleet_database: str, redis_server: str, master_key: str, tmp_path_factory: pytest.TempPathFactory
) -> CloudSettings:
    return make_settings(fleet_database, redis_server, master_key, tmp_path_factory.mktemp("cloud"))


@dataclass
class LiveCloud:
    url: str
    settings: CloudSettings
    session_factory: object

    def owner_session(self) -> Session:
        """A session as the database owner (bypasses RLS): for setup and for checking results."""
        engine = create_engine(normalize_url(self.settings.database_url or ""))
        return make_session_factory(engine)()


@pytest.fixture(scope="module")
def live_cloud(fleet_settings: CloudSettings) -> Iterator[LiveCloud]:
    app = create_app(fleet_settings)
    port = free_tcp_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=2
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    yield LiveCloud(f"http://127.0.0.1:{port}", fleet_settings, app.state.session_factory)
    server.should_exit = True
    thread.join(timeout=10)  # the app's lifespan shutdown runs close_app in the server's loop


@dataclass
class Tenant:
    tenant_id: uuid.UUID
    library_id: uuid.UUID
    owner_id: uuid.UUID
    owner_headers: dict[str, str]


def make_tenant(cloud: LiveCloud, *, pin: str | None = "4321") -> Tenant:
    email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    with cloud.owner_session() as session:
        platform_scope(session)
        tenant, owner = tenancy.create_tenant(
            session, name="Fleet Library", owner_email=email, owner_password=TEST_PASSWORD,
            owner_full_name="Olga Owner", actor_id=None,
        )  # fmt: skip
        if pin:
            tenancy.add_membership(session, tenant.id, owner.id, Role.LIBRARY_OWNER, pin=pin)
        library = Library(tenant_id=tenant.id, name="Main hall", timezone="Asia/Kolkata", capacity=40)
        session.add(library)
        session.commit()
        ids = (tenant.id, library.id, owner.id)
    token = login(cloud, email)
    return Tenant(ids[0], ids[1], ids[2], {"Authorization": f"Bearer {token}"})


def make_user(cloud: LiveCloud, role: Role) -> dict[str, str]:
    email = f"{role.value}-{uuid.uuid4().hex[:8]}@example.com"
    with cloud.owner_session() as session:
        platform_scope(session)
        identity.create_user(session, email, TEST_PASSWORD, is_super_admin=role is Role.SUPER_ADMIN)
        session.commit()
    return {"Authorization": f"Bearer {login(cloud, email)}"}


def login(cloud: LiveCloud, email: str) -> str:
    response = httpx.post(f"{cloud.url}/api/v1/auth/login", json={"email": email, "password": TEST_PASSWORD})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def create_device(cloud: LiveCloud, tenant: Tenant, name: str = "door pi") -> tuple[str, str]:
    response = httpx.post(
        f"{cloud.url}/api/v1/fleet/devices",
        json={"library_id": str(tenant.library_id), "name": name, "config": {"sync_interval": 30}},
        headers=tenant.owner_headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["device"]["id"], body["enrollment_token"]


def enrolled_store(cloud_url: str, tenant_cloud: LiveCloud, tenant: Tenant, path: Path) -> Store:
    """A real edge store, enrolled through the real enrolment endpoint."""
    _, token = create_device(tenant_cloud, tenant)
    store = Store(path)
    enroll(cloud_url, token, store)
    return store


@pytest.fixture(scope="module")
def tenant(live_cloud: LiveCloud) -> Tenant:
    return make_tenant(live_cloud)


class CloudProcess:
    """The cloud as its own uvicorn process, to SIGKILL and restart."""

    def __init__(self, settings: CloudSettings, port: int, log_path: Path) -> None:
        self.settings = settings
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = os.environ | {
            "DATABASE_URL": self.settings.database_url or "",
            "REDIS_URL": self.settings.redis_url or "",
            "MASTER_KEY": self.settings.master_key or "",
            "STUDYSPOT_DATA_DIR": str(self.settings.studyspot_data_dir),
            "RATE_LIMIT_ENABLED": "false",
            "DB_POOL_SIZE": "4",
        }
        code = (
            "import uvicorn\nfrom cloud.app import create_app\nfrom cloud.config import CloudSettings\n"
            f"uvicorn.run(create_app(CloudSettings(_env_file=None)), host='127.0.0.1', port={self.port},"
            " log_level='warning')"
        )
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], cwd=REPO, env=env, stdout=log, stderr=log
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code in (200, 503):
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"cloud process did not start: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None
