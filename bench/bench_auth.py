"""Auth benchmarks: login p50/p99 (argon2id at production cost), access-token verification rate,
and an authenticated GET at 50 concurrent clients. Runs the real app in-process on a throwaway
embedded PostgreSQL (ASGI transport, no network)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from bench.harness import BenchResult, measure, summarize
from cloud.app import close_app, create_app
from cloud.config import CloudSettings
from cloud.embedded_pg import EmbeddedPostgres, start_embedded_postgres
from cloud.migrations import upgrade

PASSWORD = "benchmark password 1"
LOGINS = 40
VERIFIES = 3000
CONCURRENT_CLIENTS = 50
ROUNDS = 6


def _make_database(data_dir: Path) -> tuple[EmbeddedPostgres, str]:
    pg = start_embedded_postgres(data_dir)
    engine = create_engine(pg.owner_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text('DROP DATABASE IF EXISTS "bench_auth" WITH (FORCE)'))
        conn.execute(text('CREATE DATABASE "bench_auth"'))
    engine.dispose()
    url = pg.url("bench_auth")
    upgrade(url)
    return pg, url


async def _run(settings: CloudSettings) -> list[BenchResult]:
    app = create_app(settings)
    results: list[BenchResult] = []
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            await client.post(
                "/api/v1/auth/register", json={"email": "bench@example.com", "password": PASSWORD}
            )
            samples = []
            for _ in range(LOGINS):
                start = time.perf_counter()
                response = await client.post(
                    "/api/v1/auth/login", json={"email": "bench@example.com", "password": PASSWORD}
                )
                samples.append(time.perf_counter() - start)
                response.raise_for_status()
            median, p99 = summarize(samples)
            results.append(
                BenchResult("login (argon2id default cost)", median * 1e3, p99 * 1e3, "ms", "p99 <= 100 ms")
            )

            token = response.json()["access_token"]
            tokens = app.state.tokens
            median, p99 = measure(lambda: tokens.verify(token), VERIFIES)
            results.append(
                BenchResult("access token verify", 1 / median, 1 / p99, "verifications/s", "<= 1 ms each")
            )
            results.append(
                BenchResult("access token verify latency", median * 1e3, p99 * 1e3, "ms", "<= 1 ms")
            )

            headers = {"Authorization": f"Bearer {token}"}

            async def one_get() -> float:
                start = time.perf_counter()
                (await client.get("/api/v1/users/me", headers=headers)).raise_for_status()
                return time.perf_counter() - start

            latencies: list[float] = []
            for _ in range(ROUNDS):
                latencies += await asyncio.gather(*(one_get() for _ in range(CONCURRENT_CLIENTS)))
            median, p99 = summarize(latencies)
            results.append(
                BenchResult("GET /users/me, 50 concurrent", median * 1e3, p99 * 1e3, "ms", "p99 <= 20 ms")
            )
    finally:
        await close_app(app)
    return results


def run() -> list[BenchResult]:
    root = Path(tempfile.mkdtemp(prefix="studyspot-bench-", dir="/tmp"))
    pg, url = _make_database(root)
    try:
        settings = CloudSettings(
            _env_file=None,
            database_url=url,
            redis_url=None,
            master_key="x" * 43 + "=",
            studyspot_data_dir=root / "data",
            rate_limit_enabled=False,
            db_pool_size=20,
        )
        return asyncio.run(_run(settings))
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    for result in run():
        print(result)
