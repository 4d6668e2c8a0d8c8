"""Fault injection on the cloud's dependencies, with real processes.

- PostgreSQL stopped and started under load: requests fail cleanly (503 `database_unavailable` in the
  envelope, never a 500), `/health` names postgres, and the same cloud process recovers on its own.
- Redis killed: `/health` is 503 naming redis, concurrent bookings of one seat still give exactly
  one winner, rate limits degrade to in-process counters (still enforced), then are shared again.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from cloud.config import CloudSettings
from cloud.db import normalize_url
from cloud.migrations import upgrade
from tests.cloud.booking.conftest import LibrarySetup, build_library
from tests.cloud.booking.helpers import hourly, slot
from tests.cloud.conftest import _admin_execute
from tests.edge.conftest import eventually
from tests.reliability.conftest import LiveApi, ThreadedServer, reliability_settings, seed_accounts
from tests.reliability.processes import RedisProcess, RestartablePostgres
from tests.reliability.report import Tally

LOAD_WORKERS = 6
AUTH_LIMIT = 5


@pytest.fixture(scope="module")
def restartable_pg() -> Iterator[RestartablePostgres]:
    # directly under /tmp: pytest's tmp dirs are 0700, the embedded server runs as another user
    root = Path(tempfile.mkdtemp(prefix="studyspot-pg-restart-", dir="/tmp"))
    server = RestartablePostgres(root)
    yield server
    server.close()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def redis_process() -> Iterator[RedisProcess]:
    process = RedisProcess()
    process.start()
    yield process
    process.stop()


def start_api(settings: CloudSettings) -> LiveApi:
    server = ThreadedServer(settings)
    server.start()
    api = LiveApi(server.url, settings, server, uuid.uuid4(), uuid.uuid4())
    seed_accounts(api)
    return api


@pytest.fixture
def api_on_restartable_pg(
    restartable_pg: RestartablePostgres, redis_url: str, master_key: str, tmp_path: Path
) -> Iterator[LiveApi]:
    name = f"restart_{uuid.uuid4().hex[:8]}"
    _admin_execute(restartable_pg.server, f'CREATE DATABASE "{name}"')
    upgrade(restartable_pg.url(name))
    api = start_api(reliability_settings(restartable_pg.url(name), redis_url, master_key, tmp_path))
    yield api
    api.server.stop()


class Load:
    """Workers calling a DB-backed endpoint in a loop, recording every status and error body."""

    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers
        self.statuses: Counter[int] = Counter()
        self.error_codes: Counter[str] = Counter()
        self.running = True

    async def worker(self) -> None:
        while self.running:
            response = await self.client.get("/api/v1/users/me", headers=self.headers)
            self.statuses[response.status_code] += 1
            if response.status_code >= 400:
                self.error_codes[response.json()["error"]["code"]] += 1

    @property
    def total(self) -> int:
        return sum(self.statuses.values())


@pytest.fixture
async def load_client(api_on_restartable_pg: LiveApi) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_on_restartable_pg.url, timeout=30) as client:
        yield client


async def test_postgres_restart_under_load_fails_cleanly_and_recovers(
    api_on_restartable_pg: LiveApi,
    restartable_pg: RestartablePostgres,
    load_client: httpx.AsyncClient,
    tally: Tally,
) -> None:
    load = Load(load_client, api_on_restartable_pg.headers["student"])
    workers = [asyncio.create_task(load.worker()) for _ in range(LOAD_WORKERS)]
    await eventually(lambda: load.statuses[200] >= 20, limit=30)

    await asyncio.to_thread(restartable_pg.stop)
    tally.add("faults")
    await eventually(lambda: load.statuses[503] >= 20, limit=30)
    health = await load_client.get("/health")
    assert health.status_code == 503
    assert health.json()["dependencies"]["postgres"]["status"] == "down"

    await asyncio.to_thread(restartable_pg.start)
    ok_before = load.statuses[200]
    await eventually(lambda: load.statuses[200] >= ok_before + 50, limit=30)
    load.running = False
    await asyncio.gather(*workers)
    tally.add("load", load.total)

    assert set(load.statuses) <= {200, 503}, load.statuses
    assert set(load.error_codes) == {"database_unavailable"}, load.error_codes
    assert (await load_client.get("/health")).status_code == 200


def redis_settings(database_url: str, redis: RedisProcess, master_key: str, data_dir: Path) -> CloudSettings:
    return reliability_settings(database_url, redis.url, master_key, data_dir).model_copy(
        update={
            "rate_limit_enabled": True,
            "rate_limit_auth": f"{AUTH_LIMIT}/minute",
            "rate_limit_booking": "10000/minute",
            "rate_limit_general": "10000/minute",
        }
    )


async def book_one_seat_concurrently(
    client: httpx.AsyncClient, setup: LibrarySetup, students: list[Any]
) -> Counter[int]:
    body = hourly(setup, "A2", slot(3, "10:00", "12:00"))
    responses = await asyncio.gather(
        *(client.post("/api/v1/bookings", json=body, headers=student.headers) for student in students)
    )
    return Counter(response.status_code for response in responses)


async def guess_logins(client: httpx.AsyncClient, client_ip: str) -> list[int]:
    """Wrong passwords from one client address (uvicorn trusts X-Forwarded-For from 127.0.0.1)."""
    body = {"email": f"nobody-{uuid.uuid4().hex[:6]}@example.com", "password": "guess-guess"}
    headers = {"X-Forwarded-For": client_ip}
    return [
        (await client.post("/api/v1/auth/login", json=body, headers=headers)).status_code
        for _ in range(AUTH_LIMIT + 2)
    ]


async def health_status(client: httpx.AsyncClient) -> int:
    """/health once Redis has had a moment to accept the client's reconnection (bounded)."""
    for _ in range(20):
        status = (await client.get("/health")).status_code
        if status == 200:
            return status
        await asyncio.sleep(0.1)
    return status


async def test_redis_down_health_503_bookings_correct_rate_limits_degrade(
    database_url: str, redis_process: RedisProcess, master_key: str, tmp_path: Path, tally: Tally
) -> None:
    api = start_api(redis_settings(database_url, redis_process, master_key, tmp_path))
    try:
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
            owner = SimpleNamespace(headers=api.headers["library_owner"])
            setup = await build_library(client, owner)
            students = [SimpleNamespace(headers=api.headers["student"])] * 12

            redis_process.stop()
            tally.add("faults")
            health = await client.get("/health")
            assert health.status_code == 503
            assert health.json()["dependencies"]["redis"]["status"] == "down"
            assert health.json()["dependencies"]["postgres"]["status"] == "up"

            assert await book_one_seat_concurrently(client, setup, students) == {201: 1, 409: 11}
            # the in-process fallback still throttles login guessing
            assert await guess_logins(client, "10.0.0.1") == [401] * AUTH_LIMIT + [429] * 2

            redis_process.start()
            assert await health_status(client) == 200
            # limits are shared through Redis again (which counts afresh: its counters died with it)
            assert await guess_logins(client, "10.0.0.2") == [401] * AUTH_LIMIT + [429] * 2
            tally.add("attacks", 2 * (AUTH_LIMIT + 2))
    finally:
        api.server.stop()
    engine = create_engine(normalize_url(database_url))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM bookings")).scalar_one() == 1
    engine.dispose()
