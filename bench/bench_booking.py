"""Booking benchmarks: POST /bookings at 50 concurrent clients (p50, p99, bookings/s), library
search p99 over 10,000 generated libraries (fuzzy text, and distance within a radius), and live
seat-map fan-out from a booking to 1,000 WebSockets.

The cloud runs as production runs it: `studyspot cloud serve --workers WORKERS`, each worker on its
own SO_REUSEPORT socket so the kernel spreads connections over them (`bench.cloud_rig.cloud_workers`),
with a real redis-server (REDIS_URL: live events cross workers through Redis pub/sub), on a
throwaway embedded PostgreSQL. The load generator (this process) talks HTTP and WebSocket to it
over loopback TCP; the bookings go over raw keep-alive HTTP/1.1 (`bench.raw_http`), so the
generator's CPU (it shares the 2 cores) stays small next to the workers' (reported per booking).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import time
import uuid
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from bench.cloud_rig import api_worker_processes, bench_cloud, bench_library, bench_redis, cloud_workers
from bench.harness import BenchResult, cpu_seconds, summarize
from bench.live_reader import LiveSocket, open_live_socket
from bench.raw_http import RawHttpPool, request_bytes
from cloud.app import close_app, create_app
from cloud.config import CloudSettings
from cloud.db import platform_scope
from cloud.identity import service as identity
from cloud.identity.roles import Role, permissions_of

CLIENTS = 50
BOOKINGS_PER_CLIENT = 20  # 1,000 timed bookings: the p99 is the 10th slowest, not the 5th
# what httpx sent besides Authorization (`json=` adds the content type)
BOOKING_HEADERS = {"Content-Type": "application/json", "Accept": "*/*", "User-Agent": "bench"}
WARMUP_BOOKINGS_PER_CLIENT = 2
SEATS = CLIENTS
LIBRARIES = 10_000
SEARCHES = 100
SEARCH_WARMUP = 10
SOCKETS = 1000
FANOUT_ROUNDS = 20
FANOUT_WARMUP_ROUNDS = 2  # the first events on fresh sockets and a fresh HTTP client are not timed
WORKERS = 2
WORDS = (
    "sunrise",
    "moonlight",
    "quiet",
    "scholar",
    "lotus",
    "cedar",
    "harbor",
    "summit",
    "maple",
    "orchid",
    "river",
    "meadow",
    "zenith",
    "nova",
    "pearl",
    "galaxy",
    "study",
    "reading",
    "focus",
    "silent",
)
KINDS = ("Library", "Study Hall", "Reading Room", "Study Centre", "Learning Hub")


def _seed(app: Any) -> tuple[str, list[str], list[dict[str, str]]]:
    """A 24-hour library with SEATS seats and a free hourly plan; CLIENTS student tokens."""
    with app.state.session_factory() as session:
        bench = bench_library(session, seats=SEATS, hourly_price_minor=0)
        session.execute(
            text("UPDATE libraries SET max_active_bookings = 100, booking_window_days = 365 WHERE id = :id"),
            {"id": bench.library.id},
        )
        plan_id, seats = bench.plan_id, bench.seats
        students = [identity.create_user(session, f"s{i}@bench.example", None) for i in range(CLIENTS)]
        session.commit()
        seat_ids = [str(seat.id) for seat in seats]
        student_ids = [student.id for student in students]
    headers = [
        {
            "Authorization": "Bearer "
            + app.state.tokens.issue(sid, None, Role.STUDENT, permissions_of(Role.STUDENT))
        }
        for sid in student_ids
    ]
    return str(plan_id), seat_ids, headers


async def _bench_bookings(
    base_url: str, plan_id: str, seats: list[str], headers: list[dict[str, str]]
) -> list[BenchResult]:
    """Each client books its own seat, one request at a time, over raw keep-alive HTTP/1.1 (the
    requests are built before the clock starts: the load generator shares the workers' 2 cores)."""
    day0 = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    url = f"{base_url}/api/v1/bookings"
    pool = RawHttpPool(base_url)
    latencies: list[float] = []

    def wire(index: int, n: int) -> bytes:
        start = day0 + dt.timedelta(days=n // 12, hours=2 * (n % 12))
        body = {
            "plan_id": plan_id,
            "seat_id": seats[index],
            "start": start.isoformat(),
            "end": (start + dt.timedelta(hours=1)).isoformat(),
        }
        return request_bytes("POST", url, headers[index] | BOOKING_HEADERS, json.dumps(body).encode())

    async def one_client(wires: list[bytes]) -> None:
        for request in wires:
            began = time.perf_counter()
            status, answer = await pool.exchange(request)
            latencies.append(time.perf_counter() - began)
            if status != 201:
                raise RuntimeError(f"booking failed: {status} {answer.decode(errors='replace')}")

    def requests(first: int, count: int) -> list[list[bytes]]:
        return [[wire(i, n) for n in range(first, first + count)] for i in range(CLIENTS)]

    worker_pids = [worker.pid for worker in api_worker_processes()]
    try:
        # warm-up, not counted: every worker opens its pool connections and fills its statement caches
        await asyncio.gather(
            *(one_client(w) for w in requests(BOOKINGS_PER_CLIENT, WARMUP_BOOKINGS_PER_CLIENT))
        )
        timed = requests(0, BOOKINGS_PER_CLIENT)
        latencies.clear()
        cpu_before, generator_before = cpu_seconds(*worker_pids), time.process_time()
        began = time.perf_counter()
        await asyncio.gather(*(one_client(w) for w in timed))
        elapsed = time.perf_counter() - began
        worker_ms = (cpu_seconds(*worker_pids) - cpu_before) * 1e3 / len(latencies)
        generator_ms = (time.process_time() - generator_before) * 1e3 / len(latencies)
    finally:
        pool.close()
    median, p99 = summarize(latencies)
    rate = len(latencies) / elapsed
    return [
        BenchResult("POST /bookings, 50 concurrent clients", median * 1e3, p99 * 1e3, "ms", "p99 <= 50 ms"),
        BenchResult("bookings created per second, 50 clients", rate, rate, "bookings/s", ">= 500/s"),
        BenchResult(
            "CPU per booking: cloud workers (median column), load generator (p99 column)",
            worker_ms,
            generator_ms,
            "ms",
        ),
    ]


def _generate_libraries(url: str) -> None:
    rng = random.Random(7)
    engine = create_engine(url)
    with engine.begin() as conn:
        tenant = conn.execute(
            text("INSERT INTO tenants (name, slug) VALUES ('Gen', 'gen') RETURNING id")
        ).scalar_one()
        rows = [
            {
                "id": uuid.uuid4(),
                "t": tenant,
                "name": f"{rng.choice(WORDS).title()} {rng.choice(WORDS).title()} {rng.choice(KINDS)}",
                "lat": 8 + rng.random() * 25,
                "lon": 70 + rng.random() * 20,
                "amen": '["wifi"]' if rng.random() < 0.5 else '["wifi", "ac"]',
            }
            for _ in range(LIBRARIES)
        ]
        conn.execute(
            text(
                "INSERT INTO libraries (id, tenant_id, name, timezone, latitude, longitude, amenities) "
                "VALUES (:id, :t, :name, 'Asia/Kolkata', :lat, :lon, CAST(:amen AS jsonb))"
            ),
            rows,
        )
        conn.execute(text("ANALYZE libraries"))
    engine.dispose()


async def _bench_search(client: httpx.AsyncClient) -> list[BenchResult]:
    rng = random.Random(11)
    queries: list[tuple[str, dict[str, Any]]] = []
    for _ in range(SEARCHES):
        word = rng.choice(WORDS)
        typo = word[:-2] + word[-1] + word[-2]  # swap the last two letters
        queries.append(("text", {"q": f"{typo} {rng.choice(KINDS).split()[0].lower()}"}))
        queries.append(
            (
                "geo",
                {
                    "lat": 8 + rng.random() * 25,
                    "lon": 70 + rng.random() * 20,
                    "radius_km": 25,
                    "amenities": "wifi",
                },
            )
        )
    for _, params in queries[:SEARCH_WARMUP]:  # not counted: the planner's and workers' first queries
        (await client.get("/api/v1/libraries", params=params)).raise_for_status()
    samples: dict[str, list[float]] = {"text": [], "geo": []}
    for kind, params in queries:
        began = time.perf_counter()
        response = await client.get("/api/v1/libraries", params=params)
        samples[kind].append(time.perf_counter() - began)
        response.raise_for_status()
    results = []
    for kind, label in (("text", "fuzzy text"), ("geo", "distance within 25 km + amenity")):
        median, p99 = summarize(samples[kind])
        results.append(
            BenchResult(
                f"search {LIBRARIES} libraries: {label}", median * 1e3, p99 * 1e3, "ms", "p99 <= 30 ms"
            )
        )
    return results


async def _bench_fanout(
    app: Any, base_url: str, plan_id: str, seat: str, headers: dict[str, str]
) -> list[BenchResult]:
    """From sending POST /bookings to each of SOCKETS sockets receiving the 'booked' event.

    The readers share the 2 cores with the server, so each is a bare protocol that stamps a frame
    when its bytes arrive (bench/live_reader.py); every socket's payload is checked after the round."""
    library_id = _library_of(app, seat)
    ws_base = base_url.replace("http://", "ws://")
    url = f"{ws_base}/api/v1/libraries/{library_id}/live?token={headers['Authorization'][7:]}"
    arrivals = _Arrivals()
    sockets: list[LiveSocket] = []
    try:
        for _ in range(SOCKETS):
            sockets.append((await open_live_socket(url, arrivals.arrived))[0])
        latencies: list[float] = []
        day0 = (dt.datetime.now(dt.UTC) + dt.timedelta(days=40)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        async with httpx.AsyncClient(base_url=base_url) as client:
            for n in range(FANOUT_WARMUP_ROUNDS + FANOUT_ROUNDS):
                start = day0 + dt.timedelta(hours=2 * n)
                body = {
                    "plan_id": plan_id,
                    "seat_id": seat,
                    "start": start.isoformat(),
                    "end": (start + dt.timedelta(hours=1)).isoformat(),
                }
                arrivals.expect(SOCKETS)
                sent = time.perf_counter()
                response = await client.post("/api/v1/bookings", json=body, headers=headers)
                response.raise_for_status()
                await asyncio.wait_for(arrivals.complete.wait(), timeout=60)
                received = {json.loads(payload)["booking_id"] for payload in arrivals.payloads}
                if received != {response.json()["id"]}:
                    raise RuntimeError("the sockets received another event than the booking's")
                if n >= FANOUT_WARMUP_ROUNDS:
                    latencies += [moment - sent for moment in arrivals.stamps]
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets))
    median, p99 = summarize(latencies)
    return [
        BenchResult(
            f"booking -> live event on {SOCKETS} sockets", median * 1e3, p99 * 1e3, "ms", "p99 <= 50 ms"
        )
    ]


class _Arrivals:
    """Arrival times and payloads of one round's event on every socket; `complete` is set when all
    arrived."""

    def __init__(self) -> None:
        self.stamps: list[float] = []
        self.payloads: list[bytes] = []
        self.expected = 0
        self.complete = asyncio.Event()

    def expect(self, count: int) -> None:
        self.stamps, self.payloads, self.expected = [], [], count
        self.complete.clear()

    def arrived(self, stamp: float, payload: bytes) -> None:
        self.stamps.append(stamp)
        self.payloads.append(payload)
        if len(self.stamps) == self.expected:
            self.complete.set()


def _library_of(app: Any, seat: str) -> str:
    with app.state.session_factory() as session:
        platform_scope(session)
        return str(
            session.execute(text("SELECT library_id FROM seats WHERE id = :s"), {"s": seat}).scalar_one()
        )


async def _run(settings: CloudSettings, url: str) -> list[BenchResult]:
    app = create_app(settings)  # seeds and issues tokens; the load goes to the worker processes
    try:
        plan_id, seats, headers = _seed(app)
        with cloud_workers(settings, WORKERS) as base_url:
            limits = httpx.Limits(max_connections=CLIENTS * 2)
            async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
                results = await _bench_bookings(base_url, plan_id, seats, headers)
                _generate_libraries(url)
                results += await _bench_search(client)
            results += await _bench_fanout(app, base_url, plan_id, seats[-1], headers[-1])
    finally:
        await close_app(app)
    return results


def run() -> list[BenchResult]:
    with bench_redis() as redis_url, bench_cloud("bench_booking") as settings:
        assert settings.database_url is not None
        database_url = settings.database_url
        return asyncio.run(_run(settings.model_copy(update={"redis_url": redis_url}), database_url))


if __name__ == "__main__":
    for result in run():
        print(result)
