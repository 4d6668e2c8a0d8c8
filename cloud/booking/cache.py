"""Availability cache: Redis when REDIS_URL is set, in-process otherwise.

Entries are keyed by a per-library version; `invalidate(library_id)` bumps the version, so every
cached window of that library is dropped at once (old keys expire by TTL). Every write that changes
seat occupancy calls it (routes after commit, jobs for what they released).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Any, Protocol

import redis
from fastapi import Request

log = logging.getLogger(__name__)

TTL_SECONDS = 300


class AvailabilityCache(Protocol):
    def get(self, library_id: uuid.UUID, window_key: str) -> Any | None: ...

    def put(self, library_id: uuid.UUID, window_key: str, value: Any) -> None: ...

    def invalidate(self, library_id: uuid.UUID) -> None: ...


class MemoryAvailabilityCache:
    def __init__(self, ttl: float = TTL_SECONDS) -> None:
        self._ttl = ttl
        self._lock = threading.Lock()
        self._entries: dict[tuple[uuid.UUID, str], tuple[float, Any]] = {}

    def get(self, library_id: uuid.UUID, window_key: str) -> Any | None:
        with self._lock:
            entry = self._entries.get((library_id, window_key))
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, library_id: uuid.UUID, window_key: str, value: Any) -> None:
        with self._lock:
            self._entries[(library_id, window_key)] = (time.monotonic() + self._ttl, value)

    def invalidate(self, library_id: uuid.UUID) -> None:
        with self._lock:
            for key in [key for key in self._entries if key[0] == library_id]:
                del self._entries[key]


class RedisAvailabilityCache:
    """A broken Redis degrades to no caching; it never fails a request."""

    def __init__(self, client: redis.Redis, ttl: int = TTL_SECONDS) -> None:
        self._client = client
        self._ttl = ttl

    def _version(self, library_id: uuid.UUID) -> str:
        raw = self._client.get(f"avail:ver:{library_id}")
        return raw.decode() if isinstance(raw, bytes) else "0"

    def get(self, library_id: uuid.UUID, window_key: str) -> Any | None:
        try:
            raw = self._client.get(f"avail:{library_id}:{self._version(library_id)}:{window_key}")
        except redis.RedisError:
            log.warning("availability cache read failed", exc_info=True)
            return None
        return json.loads(raw) if isinstance(raw, bytes) else None

    def put(self, library_id: uuid.UUID, window_key: str, value: Any) -> None:
        try:
            key = f"avail:{library_id}:{self._version(library_id)}:{window_key}"
            self._client.set(key, json.dumps(value), ex=self._ttl)
        except redis.RedisError:
            log.warning("availability cache write failed", exc_info=True)

    def invalidate(self, library_id: uuid.UUID) -> None:
        try:
            self._client.incr(f"avail:ver:{library_id}")
        except redis.RedisError:
            log.exception("availability cache invalidation failed")


_CREATE_LOCK = threading.Lock()


def availability_cache_for(state: Any) -> AvailabilityCache:
    """The app's cache, created on first use (kept on `app.state.availability_cache`)."""
    cache: AvailabilityCache | None = getattr(state, "availability_cache", None)
    if cache is not None:
        return cache
    with _CREATE_LOCK:
        cache = getattr(state, "availability_cache", None)
        if cache is None:
            url = state.settings.redis_url
            cache = RedisAvailabilityCache(redis.Redis.from_url(url)) if url else MemoryAvailabilityCache()
            state.availability_cache = cache
    return cache


async def get_availability_cache(request: Request) -> AvailabilityCache:
    # async: no I/O here (a Redis client connects on first command), so FastAPI calls it on the
    # event loop instead of a thread-pool round trip per request
    return availability_cache_for(request.app.state)
