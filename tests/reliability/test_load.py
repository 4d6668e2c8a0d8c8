"""Load through a real uvicorn server: many concurrent bookings of one seat (exactly one wins) and
WebSocket connect/disconnect churn on the live seat map (nothing leaks: Redis subscriptions and
connections, file descriptors, memory)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from types import SimpleNamespace

import httpx
import psutil
import pytest
import redis
from sqlalchemy import text
from websockets.asyncio.client import connect

from tests.cloud.booking.conftest import LibrarySetup, build_library
from tests.cloud.booking.helpers import hourly, slot
from tests.edge.conftest import eventually
from tests.reliability.conftest import LiveApi
from tests.reliability.report import Tally

WS_PARALLEL = 10  # below the pool size: a leak test, not an overload test
MIB = 2**20
FD_MARGIN = 20


async def build(api: LiveApi) -> LibrarySetup:
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
        return await build_library(client, SimpleNamespace(headers=api.headers["library_owner"]))


@pytest.fixture(scope="module")
def library(live_api: LiveApi) -> LibrarySetup:
    return asyncio.run(build(live_api))


async def book_concurrently(
    api: LiveApi, library: LibrarySetup, attempts: int, days_ahead: int
) -> Counter[int]:
    body = hourly(library, "A1", slot(days_ahead, "10:00", "12:00"))
    students = [api.headers["student"], api.headers["library_staff"], api.headers["super_admin"]]
    limits = httpx.Limits(max_connections=attempts, max_keepalive_connections=attempts)
    async with httpx.AsyncClient(base_url=api.url, limits=limits, timeout=600) as client:
        responses = await asyncio.gather(
            *(client.post("/api/v1/bookings", json=body, headers=students[i % 3]) for i in range(attempts))
        )
    return Counter(response.status_code for response in responses)


def bookings_of_seat(api: LiveApi, library: LibrarySetup) -> int:
    with api.owner_session() as session:
        seat = library.seat("A1")["id"]
        return int(
            session.execute(
                text("SELECT count(*) FROM bookings WHERE seat_id = :s"), {"s": seat}
            ).scalar_one()
        )


@pytest.mark.reliability
async def test_thousand_concurrent_bookings_of_one_seat_exactly_one_wins(
    live_api: LiveApi, library: LibrarySetup, tally: Tally
) -> None:
    before = bookings_of_seat(live_api, library)
    statuses = await book_concurrently(live_api, library, 1000, days_ahead=5)
    tally.add("load", 1000)
    # one winner; every loser refused in the envelope: 409 (seat taken, or a lost deadlock) or, when
    # the database sheds load, 503 database_unavailable
    assert statuses[201] == 1, statuses
    assert set(statuses) <= {201, 409, 503}, statuses
    assert bookings_of_seat(live_api, library) == before + 1


async def churn(url: str, connections: int) -> int:
    """Open, read the snapshot, close: `connections` times, WS_PARALLEL at once. Returns snapshots read."""
    gate = asyncio.Semaphore(WS_PARALLEL)
    read = 0

    async def once() -> None:
        nonlocal read
        async with gate, connect(url, open_timeout=60) as socket:
            message = json.loads(await asyncio.wait_for(socket.recv(), 60))
            read += message["type"] == "snapshot"

    await asyncio.gather(*(once() for _ in range(connections)))
    return read


def subscribers(client: redis.Redis, library_id: str) -> int:
    return int(dict(client.pubsub_numsub(f"live:{library_id}"))[f"live:{library_id}".encode()])


async def assert_ws_churn_leaks_nothing(
    api: LiveApi, library: LibrarySetup, connections: int, tally: Tally
) -> None:
    token = api.headers["student"]["Authorization"].split(" ", 1)[1]
    url = api.url.replace("http", "ws") + f"/api/v1/libraries/{library.id}/live?token={token}"
    me = psutil.Process()
    watcher = redis.Redis.from_url(api.settings.redis_url or "")
    try:
        assert await churn(url, 50) == 50  # warm-up: pools and caches reach their steady size
        await eventually(lambda: subscribers(watcher, library.id) == 0, limit=30)
        fds, rss, redis_clients = me.num_fds(), me.memory_info().rss, len(watcher.client_list())

        assert await churn(url, connections) == connections
        tally.add("load", connections)
        # a leak would keep one socket and one Redis connection per WebSocket: far above these margins
        await eventually(lambda: subscribers(watcher, library.id) == 0, limit=120)
        await eventually(lambda: me.num_fds() <= fds + FD_MARGIN, limit=120)
        assert len(watcher.client_list()) <= redis_clients + 5, (redis_clients, watcher.client_list())
        grown = me.memory_info().rss - rss
        assert grown < 64 * MIB, f"RSS grew {grown / MIB:.1f} MiB over {connections} connections"
    finally:
        watcher.close()


async def test_websocket_churn_leaks_nothing(live_api: LiveApi, library: LibrarySetup, tally: Tally) -> None:
    await assert_ws_churn_leaks_nothing(live_api, library, 100, tally)


@pytest.mark.reliability
@pytest.mark.timeout(3600)
async def test_ten_thousand_websocket_connects_leak_nothing(
    live_api: LiveApi, library: LibrarySetup, tally: Tally
) -> None:
    await assert_ws_churn_leaks_nothing(live_api, library, 10_000, tally)
