"""Auth benchmarks: login p50/p99 (argon2id at production cost) and access-token verification rate
on the real app in-process (ASGI transport), and an authenticated GET at 50 concurrent clients
against `uvicorn --workers 2` over HTTP; all on a throwaway embedded PostgreSQL."""

from __future__ import annotations

import asyncio
import time

import httpx

from bench.cloud_rig import bench_cloud, cloud_workers
from bench.harness import BenchResult, measure, summarize
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
    """GET /users/me from CONCURRENT_CLIENTS closed-loop clients against `uvicorn --workers 2`
    (as deployed) over loopback HTTP, the load generator in this process, not the workers'."""
    headers = {"Authorization": f"Bearer {token}"}
    with cloud_workers(settings, WORKERS) as base_url:
        limits = httpx.Limits(max_connections=CONCURRENT_CLIENTS * 2)
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:

            async def one_get() -> float:
                start = time.perf_counter()
                (await client.get("/api/v1/users/me", headers=headers)).raise_for_status()
                return time.perf_counter() - start

            await asyncio.gather(*(one_get() for _ in range(CONCURRENT_CLIENTS)))  # connections, caches
            latencies: list[float] = []
            started = time.perf_counter()
            for _ in range(ROUNDS):
                latencies += await asyncio.gather(*(one_get() for _ in range(CONCURRENT_CLIENTS)))
            elapsed = time.perf_counter() - started
    median, p99 = summarize(latencies)
    figure = f"GET /users/me, {CONCURRENT_CLIENTS} concurrent, {WORKERS} workers"
    return [
        BenchResult(figure, median * 1e3, p99 * 1e3, "ms", "p99 <= 20 ms"),
        BenchResult(
            f"{figure}, throughput", len(latencies) / elapsed, len(latencies) / elapsed, "requests/s", ""
        ),
    ]


def run() -> list[BenchResult]:
    with bench_cloud("bench_auth") as settings:
        return asyncio.run(_run(settings))


if __name__ == "__main__":
    for result in run():
        print(result)
