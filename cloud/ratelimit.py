"""Rate limits from the seed with the `limits` library (sliding window counter).

Storage is Redis when REDIS_URL is set, in-process otherwise. The storage object is held by the
`RateLimits` instance (kept on `app.state`) - `limits` only keeps weak references to it.

When Redis is unreachable the limits degrade to in-process counters (per worker process, so a client
spread over N workers gets up to N times the limit) instead of failing open: login brute force stays
throttled during a Redis outage. Each failed Redis call is logged at WARNING at most once per
`OUTAGE_LOG_SECONDS`; Redis is tried again on every request, so limits are shared again as soon as it
is back. `GET /health` reports the outage (503, `redis: down`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from cloud.config import CloudSettings
from cloud.errors import error_response

log = logging.getLogger(__name__)


class LimitCategory(StrEnum):
    AUTH = "auth"
    BOOKING = "booking"
    UPLOAD = "upload"
    GENERAL = "general"


OUTAGE_LOG_SECONDS = 60.0


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int


def make_storage(redis_url: str | None) -> Storage:
    if not redis_url:
        return MemoryStorage()
    scheme, _, rest = redis_url.partition("://")
    return RedisStorage(f"async+{scheme}://{rest}", implementation="redispy")


class RateLimits:
    def __init__(self, settings: CloudSettings) -> None:
        self.enabled = settings.rate_limit_enabled
        self.storage = make_storage(settings.redis_url)
        self.limiter = SlidingWindowCounterRateLimiter(self.storage)
        self.fallback_storage = MemoryStorage()
        self.fallback = SlidingWindowCounterRateLimiter(self.fallback_storage)
        self.degraded_since: float | None = None
        self._last_outage_log = 0.0
        self.items: dict[LimitCategory, RateLimitItem] = {
            LimitCategory.AUTH: parse(settings.rate_limit_auth),
            LimitCategory.BOOKING: parse(settings.rate_limit_booking),
            LimitCategory.UPLOAD: parse(settings.rate_limit_upload),
            LimitCategory.GENERAL: parse(settings.rate_limit_general),
        }

    async def hit(self, category: LimitCategory, key: str) -> Verdict:
        try:
            verdict = await self._hit(self.limiter, category, key)
        except Exception as exc:
            if isinstance(self.storage, MemoryStorage):  # no Redis: nothing to fall back from
                raise
            self._note_outage(exc)
            return await self._hit(self.fallback, category, key)
        if self.degraded_since is not None:
            log.warning("rate limit storage is back; limits are shared again")
            self.degraded_since = None
        return verdict

    async def _hit(
        self, limiter: SlidingWindowCounterRateLimiter, category: LimitCategory, key: str
    ) -> Verdict:
        item = self.items[category]
        if await limiter.hit(item, category.value, key):
            return Verdict(True, 0)
        stats = await limiter.get_window_stats(item, category.value, key)
        return Verdict(False, max(1, math.ceil(stats.reset_time - time.time())))

    def _note_outage(self, exc: Exception) -> None:
        now = time.monotonic()
        if self.degraded_since is None:
            self.degraded_since = now
        if now - self._last_outage_log >= OUTAGE_LOG_SECONDS:
            self._last_outage_log = now
            log.warning("rate limit storage unreachable (%s); using in-process limits", type(exc).__name__)


def categorize(method: str, path: str) -> LimitCategory | None:
    if not path.startswith("/api/v1/"):
        return None
    if path.startswith("/api/v1/auth/"):
        return LimitCategory.AUTH
    if "/kyc" in path or path.endswith("/upload"):
        return LimitCategory.UPLOAD if method in ("POST", "PUT") else LimitCategory.GENERAL
    if path.startswith("/api/v1/bookings") and method in ("POST", "PATCH", "PUT", "DELETE"):
        return LimitCategory.BOOKING
    return LimitCategory.GENERAL


class RateLimitMiddleware:
    """Counts every API request per client IP and, when a valid bearer token is sent, per user."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limits: RateLimits,
        user_of_token: Callable[[str], str | None],
    ) -> None:
        self.app = app
        self.limits = limits
        self.user_of_token = user_of_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.limits.enabled:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        category = categorize(request.method, request.url.path)
        if category is not None:
            for key in self._keys(request, category):
                try:
                    verdict = await self.limits.hit(category, key)
                except Exception:  # even the in-process fallback failed: never take the API down
                    log.exception("rate limiting failed; request allowed")
                    break
                if not verdict.allowed:
                    response = error_response(
                        429,
                        "rate_limited",
                        f"too many {category.value} requests; retry later",
                        {"category": category.value, "retry_after": verdict.retry_after},
                        headers={"Retry-After": str(verdict.retry_after)},
                    )
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    def _keys(self, request: Request, category: LimitCategory) -> list[str]:
        ip = request.client.host if request.client else "unknown"
        keys = [f"ip:{ip}"]
        if category is LimitCategory.AUTH:
            return keys
        auth = request.headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            user = self.user_of_token(auth[7:].strip())
            if user:
                keys.append(f"user:{user}")
        return keys
