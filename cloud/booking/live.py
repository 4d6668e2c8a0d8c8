"""Live seat map: a snapshot, then seq-numbered seat changes, fanned out across workers.

With REDIS_URL: the sequence is `INCR live:seq:<library>` and events go through `PUBLISH live:<library>`
(every worker's sockets subscribe). Without: an in-process hub (one worker only). Sequence numbers
only grow; a client seeing a gap re-opens the socket for a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import redis
from redis import asyncio as aioredis
from sqlalchemy.orm import Session

from cloud.booking import service
from cloud.errors import ApiError

log = logging.getLogger(__name__)


class LiveHub(Protocol):
    def publish(self, library_id: uuid.UUID, event: dict[str, Any]) -> None: ...

    async def current_seq(self, library_id: uuid.UUID) -> int: ...

    def subscription(self, library_id: uuid.UUID) -> Any: ...


class MemoryLiveHub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seq: dict[uuid.UUID, int] = {}
        self._subscribers: dict[
            uuid.UUID, set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any]]]]
        ] = {}

    def publish(self, library_id: uuid.UUID, event: dict[str, Any]) -> None:
        with self._lock:
            seq = self._seq[library_id] = self._seq.get(library_id, 0) + 1
            targets = list(self._subscribers.get(library_id, ()))
        message = {**event, "seq": seq}
        for loop, queue in targets:
            loop.call_soon_threadsafe(queue.put_nowait, message)

    async def current_seq(self, library_id: uuid.UUID) -> int:
        with self._lock:
            return self._seq.get(library_id, 0)

    @asynccontextmanager
    async def subscription(self, library_id: uuid.UUID) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        entry = (asyncio.get_running_loop(), asyncio.Queue[dict[str, Any]]())
        with self._lock:
            self._subscribers.setdefault(library_id, set()).add(entry)
        try:
            yield entry[1]
        finally:
            with self._lock:
                self._subscribers[library_id].discard(entry)


class RedisLiveHub:
    def __init__(self, url: str) -> None:
        self._url = url
        self._sync = redis.Redis.from_url(url)

    def publish(self, library_id: uuid.UUID, event: dict[str, Any]) -> None:
        try:
            seq = int(self._sync.incr(f"live:seq:{library_id}"))
            self._sync.publish(f"live:{library_id}", json.dumps({**event, "seq": seq}))
        except redis.RedisError:
            log.exception("live seat event not published")

    async def current_seq(self, library_id: uuid.UUID) -> int:
        client = aioredis.Redis.from_url(self._url)
        try:
            raw = await client.get(f"live:seq:{library_id}")
        finally:
            await client.aclose()
        return int(raw) if raw else 0

    @asynccontextmanager
    async def subscription(self, library_id: uuid.UUID) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        client = aioredis.Redis.from_url(self._url)
        pubsub = client.pubsub()
        await pubsub.subscribe(f"live:{library_id}")
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        async def pump() -> None:
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    await queue.put(json.loads(message["data"]))

        task = asyncio.create_task(pump())
        try:
            yield queue
        finally:
            task.cancel()
            await pubsub.aclose()
            await client.aclose()


_CREATE_LOCK = threading.Lock()


def live_hub_for(state: Any) -> LiveHub:
    """The app's hub, created on first use (kept on `app.state.live_hub`)."""
    hub: LiveHub | None = getattr(state, "live_hub", None)
    if hub is not None:
        return hub
    with _CREATE_LOCK:
        hub = getattr(state, "live_hub", None)
        if hub is None:
            url = state.settings.redis_url
            hub = RedisLiveHub(url) if url else MemoryLiveHub()
            state.live_hub = hub
    return hub


def seat_event(kind: str, booking: Any) -> dict[str, Any]:
    """A change message: kind is booked, released, occupied or vacated."""
    return {
        "type": "seat",
        "event": kind,
        "seat_id": str(booking.seat_id),
        "booking_id": str(booking.id),
        "start": booking.start.isoformat(),
        "end": booking.end.isoformat(),
    }


def snapshot(
    session: Session, library_id: uuid.UUID, now: dt.datetime, viewer_tenant: uuid.UUID | None = None
) -> list[dict[str, Any]]:
    """Every active seat's state right now: free, booked (held/confirmed) or occupied (checked in).
    A tenant-bound viewer (staff/owner token) may only watch its own tenant's libraries;
    students and super admins (no tenant) may watch any."""
    library = service.load_library(session, library_id)
    if viewer_tenant is not None and library.tenant_id != viewer_tenant:
        raise ApiError(403, "forbidden", "this library belongs to another tenant")
    states = service.seat_states_at(session, library_id, now)
    return [
        {
            "seat_id": str(seat.id),
            "label": seat.label,
            "zone": seat.zone,
            "state": states.get(seat.id, "free"),
        }
        for seat in service.active_seats(session, library_id)
    ]
