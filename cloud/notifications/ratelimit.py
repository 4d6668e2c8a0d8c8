"""Per-channel and per-recipient send limits (the `limits` library, sliding window counter).

Storage is `async+memory://` for one worker and `async+redis://...` when several workers share the
budget. A refused send is not a failure: the worker moves the row's next attempt to `wait` later
without counting an attempt.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Mapping
from typing import Any

import limits
import redis.asyncio
from limits.aio.storage import Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from cloud.notifications.kinds import ChannelKind

# Provider-side defaults: Twilio ~10 msg/s on a messaging service, Meta 80 msg/s per number.
DEFAULT_CHANNEL_LIMITS: dict[ChannelKind, str] = {
    ChannelKind.EMAIL: "20/second",
    ChannelKind.SMS: "10/second",
    ChannelKind.WHATSAPP: "80/second",
    ChannelKind.PUSH: "500/second",
    ChannelKind.CONSOLE: "1000/second",
}
DEFAULT_RECIPIENT_LIMIT = "5/minute;30/hour"


class SendRateLimiter:
    def __init__(
        self,
        storage_uri: str = "async+memory://",
        channel_limits: Mapping[ChannelKind, str] | None = None,
        recipient_limit: str = DEFAULT_RECIPIENT_LIMIT,
    ) -> None:
        options: dict[str, Any] = {}
        self._redis_pool: redis.asyncio.ConnectionPool | None = None
        if storage_uri.startswith("async+redis"):
            # Our own pool so aclose() can release it; redis-py because limits defaults to coredis.
            self._redis_pool = redis.asyncio.ConnectionPool.from_url(storage_uri.removeprefix("async+"))
            options = {"implementation": "redispy", "connection_pool": self._redis_pool}
        storage = storage_from_string(storage_uri, **options)
        if not isinstance(storage, Storage):
            raise ValueError("use an async storage URI (async+memory://, async+redis://...)")
        # Kept on the instance on purpose: the limiter holds only a weak reference (limits issue #166).
        self._storage = storage
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        configured = {**DEFAULT_CHANNEL_LIMITS, **(channel_limits or {})}
        self._channel_limits = {channel: limits.parse_many(text) for channel, text in configured.items()}
        self._recipient_limits = limits.parse_many(recipient_limit)

    async def acquire(self, channel: ChannelKind, recipient: str) -> dt.timedelta | None:
        """Take one send from both budgets and return None, or return how long to wait (nothing taken)."""
        recipient_key = hashlib.sha256(recipient.encode()).hexdigest()[:24]  # no addresses in Redis keys
        checks: list[tuple[limits.RateLimitItem, tuple[str, ...]]] = [
            (item, ("channel", channel.value)) for item in self._channel_limits[channel]
        ]
        checks += [(item, ("recipient", channel.value, recipient_key)) for item in self._recipient_limits]
        waits = [
            await self._wait(item, keys) for item, keys in checks if not await self._limiter.test(item, *keys)
        ]
        if waits:
            return max(waits)
        for item, keys in checks:
            await self._limiter.hit(item, *keys)
        return None

    async def aclose(self) -> None:
        if self._redis_pool is not None:
            await self._redis_pool.disconnect()

    async def _wait(self, item: limits.RateLimitItem, keys: tuple[str, ...]) -> dt.timedelta:
        stats = await self._limiter.get_window_stats(item, *keys)
        return dt.timedelta(seconds=max(stats.reset_time - time.time(), 0.001))
