"""Auth benchmarks: login p50/p99 (argon2id at production cost) and access-token verification rate
on the real app in-process (ASGI transport), and an authenticated GET at 50 concurrent clients
against `uvicorn --workers 2` over HTTP; all on a throwaway embedded PostgreSQL."""

from __future__ import annotations

import asyncio
import time

import httpx

from bench.cloud_rig import bench_cloud, bench_redis, cloud_workers
from bench.harness import BenchResult, measure, summarize
from bench.raw_http import RawHttpPool, request_bytes
from cloud.app import close_app, create_app
from cloud.config import CloudSettings
from cloud.identity.roles import permissions_of

PASSWORD = "benchmark password 1"
LOGINS = 40
VERIFIES = 3000
VERIFY_WARMUP = 10
CONCURRENT_CLIENTS = 50
ROUNDS = 20
WORKERS = 2


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
                BenchResult(
                    "login (argon2id, production cost)", median * 1e3, p99 * 1e3, "ms", "p99 <= 100 ms"
                )
            )

            token = response.json()["access_token"]
            tokens = app.state.tokens
            claims = tokens.verify(token)
            # a token's first verification checks its signature; later ones hit the verified cache
            unseen = iter(
                [
                    tokens.issue(claims.user_id, claims.tenant_id, claims.role, permissions_of(claims.role))
                    for _ in range(VERIFIES + VERIFY_WARMUP)
                ]
            )
            median, p99 = measure(lambda: tokens.verify(next(unseen)), VERIFIES, VERIFY_WARMUP)
            results.append(
                BenchResult("access token verify", 1 / median, 1 / p99, "verifications/s", "<= 1 ms each")
            )
            results.append(
                BenchResult("access token verify latency", median * 1e3, p99 * 1e3, "ms", "<= 1 ms")
            )
            median, p99 = measure(lambda: tokens.verify(token), VERIFIES, VERIFY_WARMUP)
            results.append(
                BenchResult("access token verify, token seen before (cached)", median * 1e3, p99 * 1e3, "ms")
            )

            results += await _concurrent_profile_reads(settings, token)
    finally:
        await close_app(app)
    return results


async def _concurrent_profile_reads(settings: CloudSettings, token: str) -> list[BenchResult]:
    """GET /users/me from CONCURRENT_CLIENTS closed-loop clients against `studyspot cloud serve
    --workers 2` (as deployed) over raw keep-alive HTTP/1.1 (`bench.raw_http`: the load generator
    shares the workers' 2 cores, and httpx cost it ~10 ms of CPU per request)."""
    with cloud_workers(settings, WORKERS) as base_url:
        pool = RawHttpPool(base_url)
        wire = request_bytes("GET", f"{base_url}/api/v1/users/me", {"Authorization": f"Bearer {token}"})

        async def one_get() -> float:
            start = time.perf_counter()
            status, answer = await pool.exchange(wire)
            if status != 200:
                raise RuntimeError(f"GET /users/me failed: {status} {answer.decode(errors='replace')}")
            return time.perf_counter() - start

        try:
            await asyncio.gather(*(one_get() for _ in range(CONCURRENT_CLIENTS)))  # connections, caches
            latencies: list[float] = []
            started = time.perf_counter()
            for _ in range(ROUNDS):
                latencies += await asyncio.gather(*(one_get() for _ in range(CONCURRENT_CLIENTS)))
            elapsed = time.perf_counter() - started
        finally:
            pool.close()
    median, p99 = summarize(latencies)
    figure = f"GET /users/me, {CONCURRENT_CLIENTS} concurrent, {WORKERS} workers"
    return [
        BenchResult(figure, median * 1e3, p99 * 1e3, "ms", "p99 <= 20 ms"),
        BenchResult(
            f"{figure}, throughput", len(latencies) / elapsed, len(latencies) / elapsed, "requests/s", ""
        ),
    ]


def run() -> list[BenchResult]:
    # two workers, as deployed: with Redis (`cloud serve` refuses several workers without it)
    with bench_redis() as redis_url, bench_cloud("bench_auth") as settings:
        return asyncio.run(_run(settings.model_copy(update={"redis_url": redis_url})))


if __name__ == "__main__":
    for result in run():
        print(result)
