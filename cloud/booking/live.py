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
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
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


SendText = Callable[[str], Coroutine[Any, Any, None]]


class LiveSubscriber:
    """One socket's place in its worker's fan-out. An event is sent from the loop that hands it
    out, with no task per socket per event: the send starts at once and, as a WebSocket send does
    when the transport takes the bytes, finishes without waiting. Only a send that has to wait (a
    client that stopped reading) goes on in a task, and that socket's next events queue behind it.
    Events that come before `start` (the snapshot is on its way) are held, then sent if newer."""

    def __init__(self, send_text: SendText) -> None:
        self._send_text = send_text  # must not raise for a socket that went away
        self._after_seq: int | None = None
        self._held: deque[LiveEvent] = deque()
        self._waiting: asyncio.Task[None] | None = None

    def deliver(self, event: LiveEvent) -> None:
        if self._after_seq is None or self._waiting is not None or self._held:
            self._held.append(event)
        else:
            self._send(event)

    def start(self, after_seq: int) -> None:
        self._after_seq = after_seq
        self._send_held()

    def stop(self) -> None:
        self._held.clear()
        if self._waiting is not None:
            self._waiting.cancel()

    def _send_held(self) -> None:
        while self._held and self._waiting is None:
            self._send(self._held.popleft())

    def _send(self, event: LiveEvent) -> None:
        assert self._after_seq is not None
        if event.seq <= self._after_seq:
            return
        self._after_seq = event.seq
        try:
            waiting = start_eagerly(self._send_text(event.text))
        except Exception:  # a bug in one socket's send must not stop the fan-out to the others
            log.exception("live seat event not sent")
            return
        if waiting is not None:
            self._waiting = waiting
            waiting.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._waiting = None
        if task.cancelled():
            return
        if task.exception() is not None:
            log.error("live seat event not sent", exc_info=task.exception())
        self._send_held()


def start_eagerly(coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Run `coroutine` now up to its first wait (what Python 3.12's eager tasks do): None when it
    finished without waiting, else the task that finishes it."""
    try:
        waits_on = coroutine.send(None)
    except StopIteration:
        return None
    return asyncio.get_running_loop().create_task(_finish(coroutine, waits_on))


async def _finish(coroutine: Coroutine[Any, Any, None], waits_on: Any) -> None:
    """Drive `coroutine` on from a wait it began outside a task, as a task would: resume it once
    the future it yielded is done (it reads the outcome itself), or at the next turn of the loop."""
    while True:
        try:
            if waits_on is None:  # a bare yield: asyncio.sleep(0)
                await asyncio.sleep(0)
            else:
                waits_on._asyncio_future_blocking = False
                await asyncio.wait([waits_on])
        except asyncio.CancelledError:
            coroutine.close()
            raise
        try:
            waits_on = coroutine.send(None)
        except StopIteration:
            return


class LiveHub(Protocol):
    def publish(self, library_id: uuid.UUID, event: dict[str, Any]) -> None: ...

    async def current_seq(self, library_id: uuid.UUID) -> int: ...

    def subscription(self, library_id: uuid.UUID, subscriber: LiveSubscriber) -> Any: ...


class MemoryLiveHub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seq: dict[uuid.UUID, int] = {}
        self._subscribers: dict[uuid.UUID, set[tuple[asyncio.AbstractEventLoop, LiveSubscriber]]] = {}

    def publish(self, library_id: uuid.UUID, event: dict[str, Any]) -> None:
        with self._lock:
            seq = self._seq[library_id] = self._seq.get(library_id, 0) + 1
            targets = list(self._subscribers.get(library_id, ()))
        message = LiveEvent.numbered(seq, event)
        by_loop: dict[asyncio.AbstractEventLoop, list[LiveSubscriber]] = {}
        for loop, subscriber in targets:
            by_loop.setdefault(loop, []).append(subscriber)
        for loop, subscribers in by_loop.items():  # one wake-up per loop, not one per socket
            loop.call_soon_threadsafe(_deliver, subscribers, message)

    async def current_seq(self, library_id: uuid.UUID) -> int:
        with self._lock:
            return self._seq.get(library_id, 0)

    @asynccontextmanager
    async def subscription(self, library_id: uuid.UUID, subscriber: LiveSubscriber) -> AsyncIterator[None]:
        entry = (asyncio.get_running_loop(), subscriber)
        with self._lock:
            self._subscribers.setdefault(library_id, set()).add(entry)
        try:
            yield
        finally:
            with self._lock:
                self._subscribers[library_id].discard(entry)


def _deliver(subscribers: list[LiveSubscriber], message: LiveEvent) -> None:
    for subscriber in subscribers:
        subscriber.deliver(message)


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
    async def subscription(self, library_id: uuid.UUID, subscriber: LiveSubscriber) -> AsyncIterator[None]:
        fanout = self._fanout()
        await fanout.add(f"live:{library_id}", subscriber)
        try:
            yield
        finally:
            await fanout.remove(f"live:{library_id}", subscriber)

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
    sockets watch it, and every message is parsed once and handed to each socket's subscriber."""

    def __init__(self, url: str) -> None:
        self.client = aioredis.Redis.from_url(url)
        self._pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self._subscribers: dict[str, set[LiveSubscriber]] = {}
        self._pump: asyncio.Task[None] | None = None
        self._changing = asyncio.Lock()

    async def add(self, channel: str, subscriber: LiveSubscriber) -> None:
        async with self._changing:
            if channel not in self._subscribers:
                await self._pubsub.subscribe(channel)
            self._subscribers.setdefault(channel, set()).add(subscriber)
            if self._pump is None or self._pump.done():  # it ends when nothing is subscribed
                self._pump = asyncio.create_task(self._dispatch())

    async def remove(self, channel: str, subscriber: LiveSubscriber) -> None:
        async with self._changing:
            subscribers = self._subscribers.get(channel, set())
            subscribers.discard(subscriber)
            if not subscribers:
                self._subscribers.pop(channel, None)
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
            for subscriber in list(self._subscribers.get(channel, ())):
                subscriber.deliver(event)


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
