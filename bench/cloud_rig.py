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
import uvicorn
from fastapi import FastAPI
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from cloud.app import create_app
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


LOG_LEVEL = "warning"
WS_MAX_QUEUE = 64
UVICORN_OPTIONS = ["--log-level", LOG_LEVEL, "--ws-max-queue", str(WS_MAX_QUEUE)]
UVICORN_OPTIONS += ["--ws-per-message-deflate", "false"]  # as `studyspot cloud serve`


@contextlib.contextmanager
def cloud_workers(settings: CloudSettings, workers: int, *, reuse_port: bool = False) -> Iterator[str]:
    """The cloud API as a production deployment runs it: `uvicorn --workers N` (separate processes, so
    the load generator does not share their interpreter); yields its base URL.

    `reuse_port`: each worker listens on its own SO_REUSEPORT socket and the kernel spreads new
    connections over them, as behind nginx/gunicorn `reuseport`. On uvicorn's one shared socket, the
    worker that wakes first accepts a whole burst: a load generator's 50 keep-alive connections all
    went to one of the two workers."""
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
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    if not reuse_port:
        command = [sys.executable, "-m", "uvicorn", "--factory", "bench.cloud_rig:app_from_environment"]
        command += ["--workers", str(workers), "--host", "127.0.0.1", "--port", str(port), *UVICORN_OPTIONS]
        with _running(command, env) as process:
            _wait_until(healthy, process, "uvicorn workers")
            yield url
        return
    with contextlib.ExitStack() as stack:
        for _ in range(workers):
            command = [sys.executable, "-m", "bench.cloud_rig", str(port)]
            process = stack.enter_context(_running(command, env))
            _wait_until(partial(_listens, process.pid, port), process, "uvicorn worker")
        _wait_until(healthy, process, "uvicorn workers")
        yield url


def _listens(pid: int, port: int) -> bool:
    connections = psutil.Process(pid).net_connections("tcp")
    return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr[1] == port for c in connections)


def _serve_on_shared_port(port: int) -> None:
    """One worker of `cloud_workers(reuse_port=True)`: uvicorn on its own SO_REUSEPORT socket."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(
        "bench.cloud_rig:app_from_environment",
        factory=True,
        log_level=LOG_LEVEL,
        ws_max_queue=WS_MAX_QUEUE,
        ws_per_message_deflate=False,
    )
    uvicorn.Server(config).run(sockets=[sock])


def app_from_environment() -> FastAPI:
    """`uvicorn --factory` entry point of `cloud_workers`: settings from the environment."""
    return create_app(CloudSettings(_env_file=None))


if __name__ == "__main__":
    _serve_on_shared_port(int(sys.argv[1]))
