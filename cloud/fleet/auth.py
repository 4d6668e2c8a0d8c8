"""The signed-request check for edge → cloud calls (RFC 9421 via shared.signing).

The key lookup is a database read, so the signature is verified in the thread pool; the nonce is
remembered afterwards (Redis `SET NX EX` when the app has Redis, else an in-process TTL map).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio.from_thread
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import Request
from starlette.concurrency import run_in_threadpool

from cloud.db import platform_scope
from cloud.errors import ApiError
from cloud.fleet import service
from shared.passes import public_key_from_text
from shared.signing import (
    DEFAULT_MAX_SKEW,
    SignatureRejected,
    SignatureRejectReason,
    starlette_request_url,
    verify_request,
)

NONCE_TTL_SECONDS = int(2 * DEFAULT_MAX_SKEW.total_seconds()) + 60
MAX_MEMORY_NONCES = 200_000
SERVER_TIME_HEADER = "X-Server-Time"


class MemoryNonceStore:
    """Nonces seen in the last NONCE_TTL_SECONDS, for a single-process cloud without Redis."""

    def __init__(self, ttl_seconds: int = NONCE_TTL_SECONDS, max_entries: int = MAX_MEMORY_NONCES) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()

    def remember(self, key: str) -> bool:
        now = time.monotonic()
        while self._seen and (next(iter(self._seen.values())) < now or len(self._seen) > self._max):
            self._seen.popitem(last=False)
        if key in self._seen:
            return False
        self._seen[key] = now + self._ttl
        return True


async def remember_nonce(request: Request, key_id: str, nonce: str) -> bool:
    key = f"fleet:nonce:{key_id}:{nonce}"
    redis = getattr(request.app.state, "redis", None)
    if redis is not None:
        return bool(await redis.set(key, b"1", nx=True, ex=NONCE_TTL_SECONDS))
    store = getattr(request.app.state, "fleet_nonces", None)
    if store is None:
        store = request.app.state.fleet_nonces = MemoryNonceStore()
    return bool(store.remember(key))


def _rejected(reason: SignatureRejectReason, detail: str) -> ApiError:
    return ApiError(
        401,
        "signature_rejected",
        f"request signature rejected: {reason.value}",
        {"reason": reason.value, "detail": detail[:300]},
        headers={SERVER_TIME_HEADER: datetime.now(UTC).isoformat()},
    )


@dataclass(frozen=True)
class SignedDevice:
    key: service.DeviceKey
    created: datetime  # the signature's `created`: the edge's clock, to the second


def _verify_in_thread(request: Request, body: bytes, url: str) -> SignedDevice:
    found: dict[str, service.DeviceKey] = {}

    with request.app.state.session_factory() as session:
        platform_scope(session)  # the tenant is known only once the key is

        def resolve(key_id: str) -> Ed25519PublicKey | None:
            key = service.find_device_key(session, key_id)
            if key is None:
                return None
            found["key"] = key
            return public_key_from_text(key.public_key)

        verified = verify_request(
            request.method,
            url,
            request.headers.items(),
            body,
            resolve_key=resolve,
            now=datetime.now(UTC),
            max_skew=DEFAULT_MAX_SKEW,
            remember_nonce=lambda _key, _nonce: True,  # checked next, asynchronously
        )
        if not _nonce_unused_sync(request, verified.key_id, verified.nonce):
            raise SignatureRejected(SignatureRejectReason.REPLAYED, "nonce was used before")
        key = found["key"]
        if key.status == "pending":
            service.confirm_key(session, key)
            session.commit()
        return SignedDevice(key=key, created=verified.created)


def _nonce_unused_sync(request: Request, key_id: str, nonce: str) -> bool:
    return bool(anyio.from_thread.run(remember_nonce, request, key_id, nonce))


async def signed_device(request: Request) -> SignedDevice:
    """FastAPI dependency: the device whose key signed this request, or 401 with the reason."""
    body = await request.body()
    url = starlette_request_url(request)
    try:
        return await run_in_threadpool(_verify_in_thread, request, body, url)
    except SignatureRejected as exc:
        raise _rejected(exc.reason, exc.detail) from None
