"""Pieces both fake providers share: configuration, ids, idempotency memory, webhook delivery."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import secrets
import string
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from cloud.payments.schemas import Provider

log = logging.getLogger(__name__)
_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 14) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def unix_now() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp())


@dataclass(frozen=True)
class FakeGatewayConfig:
    """Credentials the fakes accept and where they send webhooks. Defaults are fresh random secrets."""

    razorpay_key_id: str = field(default_factory=lambda: new_id("rzp_test_"))
    razorpay_key_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    razorpay_webhook_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    stripe_secret_key: str = field(default_factory=lambda: new_id("sk_test_", 24), repr=False)
    # Several secrets = a rotation in progress: every webhook carries one v1 per secret.
    stripe_webhook_secrets: tuple[str, ...] = field(
        default_factory=lambda: (new_id("whsec_", 32),), repr=False
    )
    razorpay_webhook_url: str | None = None
    stripe_webhook_url: str | None = None
    webhook_attempts: int = 5
    webhook_retry_delay_s: float = 0.2
    webhook_timeout_s: float = 5.0

    def with_target(self, webhook_target_url: str | None) -> FakeGatewayConfig:
        """Send webhooks to `<target>/razorpay` and `<target>/stripe` unless URLs are already set."""
        if not webhook_target_url:
            return self
        base = webhook_target_url.rstrip("/")
        return _replace(
            self,
            razorpay_webhook_url=self.razorpay_webhook_url or f"{base}/razorpay",
            stripe_webhook_url=self.stripe_webhook_url or f"{base}/stripe",
        )


def _replace(config: FakeGatewayConfig, **changes: Any) -> FakeGatewayConfig:
    return dataclasses.replace(config, **changes)


@dataclass
class WebhookDelivery:
    """One webhook the fake sent (or tried to): what tests and the demo inspect."""

    provider: Provider
    event_id: str
    event_type: str
    url: str
    body: bytes
    status_codes: list[int | None] = field(default_factory=list)
    delivered: bool = False
    finished: bool = False


class IdempotencyConflict(Exception):
    """An idempotency key reused with different parameters."""


class IdempotencyMemory:
    """Remembers (key -> request fingerprint, response) like the providers do."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, int, dict[str, Any]]] = {}

    def lookup(self, key: str, fingerprint: str) -> tuple[int, dict[str, Any]] | None:
        """The stored (status, body) for a replay, None if new; IdempotencyConflict if params differ."""
        seen = self._seen.get(key)
        if seen is None:
            return None
        if seen[0] != fingerprint:
            raise IdempotencyConflict(key)
        return seen[1], seen[2]

    def remember(self, key: str, fingerprint: str, status: int, body: dict[str, Any]) -> None:
        self._seen[key] = (fingerprint, status, body)


def fingerprint(data: Any) -> str:
    return json.dumps(data, sort_keys=True, default=str)


class WebhookSender:
    """Delivers webhooks from the server's event loop, retrying on non-2xx with backoff."""

    def __init__(self, config: FakeGatewayConfig) -> None:
        self.config = config
        self._deliveries: list[WebhookDelivery] = []
        self._lock = threading.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    def deliveries(self) -> list[WebhookDelivery]:
        with self._lock:
            return list(self._deliveries)

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.config.webhook_timeout_s)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def send(
        self,
        provider: Provider,
        url: str | None,
        event_id: str,
        event_type: str,
        body: bytes,
        sign: Callable[[bytes], dict[str, str]],
    ) -> WebhookDelivery:
        """Queue a delivery; `sign` makes fresh headers per attempt (Stripe re-stamps `t`)."""
        delivery = WebhookDelivery(provider, event_id, event_type, url or "", body)
        with self._lock:
            self._deliveries.append(delivery)
        if not url:
            delivery.finished = True
            return delivery
        task = asyncio.get_running_loop().create_task(self._deliver(delivery, sign))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return delivery

    async def _deliver(self, delivery: WebhookDelivery, sign: Callable[[bytes], dict[str, str]]) -> None:
        assert self._client is not None
        delay = self.config.webhook_retry_delay_s
        for attempt in range(self.config.webhook_attempts):
            if attempt:
                await asyncio.sleep(delay * 2 ** (attempt - 1))
            status = await self._attempt(delivery, sign)
            with self._lock:
                delivery.status_codes.append(status)
            if status is not None and 200 <= status < 300:
                delivery.delivered = True
                break
        delivery.finished = True

    async def _attempt(
        self, delivery: WebhookDelivery, sign: Callable[[bytes], dict[str, str]]
    ) -> int | None:
        assert self._client is not None
        headers = {"Content-Type": "application/json", **sign(delivery.body)}
        try:
            response = await self._client.post(delivery.url, content=delivery.body, headers=headers)
        except httpx.HTTPError as exc:
            log.info("webhook %s to %s failed: %r", delivery.event_id, delivery.url, exc)
            return None
        return response.status_code
