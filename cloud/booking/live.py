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
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis
from redis import asyncio as aioredis
from sqlalchemy.orm import Session

from cloud.booking import service
from cloud.errors import ApiError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveEvent:
    """A numbered seat change, serialised once however many sockets it goes to."""

    seq: int
    data: dict[str, Any]
    text: str = field(init=False)

    def __post_init__(self) -> None:
        # the wire form of starlette's send_json
        object.__setattr__(self, "text", json.dumps(self.data, separators=(",", ":"), ensure_ascii=False))

    @classmethod
    def numbered(cls, seq: int, event: dict[str, Any]) -> LiveEvent:
        return cls(seq, {**event, "seq": seq})


class LiveHub(Protocol):
    def publish(self, library_id: uuid.UUID, event: dict[str, Any]) -> None: ...

    async def current_seq(self, library_id: uuid.UUID) -> int: ...

    def subscription(self, library_id: uuid.UUID) -> Any: ...


class MemoryLiveHub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seq: dict[uuid.UUID, int] = {}
        self._subscribers: dict[
            uuid.UUID, set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[LiveEvent]]]
        ] = {}

    def publish(self, library_id: uuid.UUID, event: dict[str, Any]) -> None:
        with self._lock:
            seq = self._seq[library_id] = self._seq.get(library_id, 0) + 1
            targets = list(self._subscribers.get(library_id, ()))
        message = LiveEvent.numbered(seq, event)
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Queue[LiveEvent]]] = {}
        for loop, queue in targets:
            by_loop.setdefault(loop, []).append(queue)
        for loop, queues in by_loop.items():  # one wake-up per loop, not one per socket
            loop.call_soon_threadsafe(_deliver, queues, message)

    async def current_seq(self, library_id: uuid.UUID) -> int:
        with self._lock:
            return self._seq.get(library_id, 0)

    @asynccontextmanager
    async def subscription(self, library_id: uuid.UUID) -> AsyncIterator[asyncio.Queue[LiveEvent]]:
        entry = (asyncio.get_running_loop(), asyncio.Queue[LiveEvent]())
        with self._lock:
            self._subscribers.setdefault(library_id, set()).add(entry)
        try:
            yield entry[1]
        finally:
            with self._lock:
                self._subscribers[library_id].discard(entry)


def _deliver(queues: list[asyncio.Queue[LiveEvent]], message: LiveEvent) -> None:
    for queue in queues:
        queue.put_nowait(message)


# INCR the library's sequence and PUBLISH the event carrying it in one round trip (EVALSHA): the
# event's JSON up to its closing brace comes as ARGV[1], the script appends `"seq":N}`.
_NUMBER_AND_PUBLISH = """
local seq = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', KEYS[2], ARGV[1] .. seq .. '}')
return seq
"""


def _unnumbered_prefix(event: dict[str, Any]) -> str:
    """`LiveEvent.numbered(seq, event).text` without its `seq` value and closing brace."""
    text = LiveEvent.numbered(0, {key: value for key, value in event.items() if key != "seq"}).text
    return text[: -len("0}")]  # numbered() puts seq last


class RedisLiveHub:
    def __init__(self, url: str) -> None:
        self._url = url
        self._sync = redis.Redis.from_url(url)
        self._number_and_publish = self._sync.register_script(_NUMBER_AND_PUBLISH)
        self._lock = threading.Lock()
        self._fanouts: dict[asyncio.AbstractEventLoop, _RedisFanout] = {}

    def publish(self, library_id: uuid.UUID, event: dict[str, Any]) -> None:
        try:
            self._number_and_publish(
                keys=[f"live:seq:{library_id}", f"live:{library_id}"], args=[_unnumbered_prefix(event)]
            )
        except redis.RedisError:
            log.exception("live seat event not published")

    async def current_seq(self, library_id: uuid.UUID) -> int:
        raw = await self._fanout().client.get(f"live:seq:{library_id}")
        return int(raw) if raw else 0

    @asynccontextmanager
    async def subscription(self, library_id: uuid.UUID) -> AsyncIterator[asyncio.Queue[LiveEvent]]:
        fanout = self._fanout()
        queue: asyncio.Queue[LiveEvent] = asyncio.Queue()
        await fanout.add(f"live:{library_id}", queue)
        try:
            yield queue
        finally:
            await fanout.remove(f"live:{library_id}", queue)

    def _fanout(self) -> _RedisFanout:
        """This event loop's shared subscriber (Redis clients belong to the loop they were made on)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            for stale in [other for other in self._fanouts if other.is_closed()]:
                del self._fanouts[stale]
            fanout = self._fanouts.get(loop)
            if fanout is None:
                fanout = self._fanouts[loop] = _RedisFanout(self._url)
        return fanout


class _RedisFanout:
    """One pub/sub connection per worker: each library channel is subscribed once, however many
    sockets watch it, and every message is parsed once and handed to each socket's queue."""

    def __init__(self, url: str) -> None:
        self.client = aioredis.Redis.from_url(url)
        self._pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self._queues: dict[str, set[asyncio.Queue[LiveEvent]]] = {}
        self._pump: asyncio.Task[None] | None = None
        self._changing = asyncio.Lock()

    async def add(self, channel: str, queue: asyncio.Queue[LiveEvent]) -> None:
        async with self._changing:
            if channel not in self._queues:
                await self._pubsub.subscribe(channel)
            self._queues.setdefault(channel, set()).add(queue)
            if self._pump is None or self._pump.done():  # it ends when nothing is subscribed
                self._pump = asyncio.create_task(self._dispatch())

    async def remove(self, channel: str, queue: asyncio.Queue[LiveEvent]) -> None:
        async with self._changing:
            queues = self._queues.get(channel, set())
            queues.discard(queue)
            if not queues:
                self._queues.pop(channel, None)
                try:
                    await self._pubsub.unsubscribe(channel)
                except redis.RedisError:
                    log.warning("could not unsubscribe from %s", channel)

    async def _dispatch(self) -> None:
        async for message in self._pubsub.listen():
            if message.get("type") != "message":
                continue
            channel = (
                message["channel"].decode() if isinstance(message["channel"], bytes) else message["channel"]
            )
            data = json.loads(message["data"])
            event = LiveEvent(int(data["seq"]), data)
            for queue in list(self._queues.get(channel, ())):
                queue.put_nowait(event)


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
