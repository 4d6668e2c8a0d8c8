"""A throwaway cloud database for benchmarks: embedded PostgreSQL in a temp dir, one migrated
database, and settings with rate limits off (benchmarks measure the work, not the limiter)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
import psutil
import redis
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


REDIS_SERVER_BIN = "/usr/bin/redis-server"
START_TIMEOUT_SECONDS = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until(ready: Callable[[], bool], process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.1)


@contextlib.contextmanager
def _running(command: list[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def bench_redis() -> Iterator[str]:
    """A throwaway redis-server on a free port; yields its URL."""
    port = _free_port()
    url = f"redis://127.0.0.1:{port}/0"
    command = [
        REDIS_SERVER_BIN,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    with _running(command) as process:
        client = redis.Redis.from_url(url)

        def pong() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        _wait_until(pong, process, "redis-server")
        client.close()
        yield url


SERVE_SCRIPT = "from cloud.cli import app; app()"


@contextlib.contextmanager
def cloud_workers(settings: CloudSettings, workers: int) -> Iterator[str]:
    """The cloud API as production runs it: `studyspot cloud serve --workers N` (separate processes,
    so the load generator does not share their interpreter; each worker on its own SO_REUSEPORT
    socket); yields its base URL once every worker listens."""
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "REDIS_URL": settings.redis_url or "",
        "MASTER_KEY": settings.master_key or "",
        "STUDYSPOT_DATA_DIR": str(settings.studyspot_data_dir),
        "RATE_LIMIT_ENABLED": "false",
        "DB_POOL_SIZE": str(settings.db_pool_size),
    }
    command = [sys.executable, "-c", SERVE_SCRIPT, "serve", "--port", str(port)]
    command += ["--workers", str(workers), "--log-level", "warning"]
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    with _running(command, env) as process:
        _wait_until(partial(_listeners, process.pid, port, workers), process, "API workers")
        _wait_until(healthy, process, "API workers")
        yield url


def _listeners(pid: int, port: int, expected: int) -> bool:
    """Whether `expected` processes of the tree under `pid` listen on `port`."""
    root = psutil.Process(pid)
    listening = 0
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            connections = process.net_connections("tcp")
            listening += any(
                c.status == psutil.CONN_LISTEN and c.laddr and c.laddr[1] == port for c in connections
            )
    return listening >= expected


def api_worker_processes() -> list[psutil.Process]:
    """The processes of `cloud_workers` that serve requests: the workers under each
    `cloud serve --workers N` started by this process, or that process itself when N is 1."""
    servers = [child for child in psutil.Process().children() if SERVE_SCRIPT in " ".join(child.cmdline())]
    workers = []
    for server in servers:
        spawned = [child for child in server.children() if "spawn_main" in " ".join(child.cmdline())]
        workers += spawned or [server]
    return workers
