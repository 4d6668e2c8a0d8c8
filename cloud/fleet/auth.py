"""The signed-request check for edge → cloud calls (RFC 9421 via shared.signing).

The key lookup is a database read, so the signature is verified in the thread pool; the nonce is
remembered afterwards on the event loop (Redis `SET NX EX` when the app has Redis, else an
in-process TTL map), and only then is a pending (rotated) key confirmed.
"""

from __future__ import annotations

import functools
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

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
    VerifiedSignature,
    starlette_request_url,
    verify_request,
)

NONCE_TTL_SECONDS = int(2 * DEFAULT_MAX_SKEW.total_seconds()) + 60
MAX_MEMORY_NONCES = 200_000
MAX_PARSED_KEYS = 10_000
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


@functools.lru_cache(maxsize=MAX_PARSED_KEYS)
def _parsed_public_key(text: str) -> Ed25519PublicKey:
    """Keyed by the key's text, so a cached key is only ever the key that text encodes; whether the
    key may sign is still read from the database on every request."""
    return public_key_from_text(text)


def _verify_in_thread(request: Request, body: bytes, url: str) -> tuple[service.DeviceKey, VerifiedSignature]:
    """Key lookup and signature check (the nonce is checked by the caller, on the event loop)."""
    found: dict[str, service.DeviceKey] = {}

    with request.app.state.session_factory() as session:
        platform_scope(session)  # the tenant is known only once the key is

        def resolve(key_id: str) -> Ed25519PublicKey | None:
            key = service.find_device_key(session, key_id)
            if key is None:
                return None
            found["key"] = key
            return _parsed_public_key(key.public_key)

        verified = verify_request(
            request.method,
            url,
            request.headers.items(),
            body,
            resolve_key=resolve,
            now=datetime.now(UTC),
            max_skew=DEFAULT_MAX_SKEW,
            remember_nonce=lambda _key, _nonce: True,  # checked next, on the event loop
        )
    return found["key"], verified


def _confirm_in_thread(request: Request, key: service.DeviceKey) -> None:
    with request.app.state.session_factory() as session:
        platform_scope(session)
        service.confirm_key(session, key)
        session.commit()


async def signed_device(request: Request) -> SignedDevice:
    """FastAPI dependency: the device whose key signed this request, or 401 with the reason."""
    body = await request.body()
    url = starlette_request_url(request)
    try:
        key, verified = await run_in_threadpool(_verify_in_thread, request, body, url)
        if not await remember_nonce(request, verified.key_id, verified.nonce):
            raise SignatureRejected(SignatureRejectReason.REPLAYED, "nonce was used before")
    except SignatureRejected as exc:
        raise _rejected(exc.reason, exc.detail) from None
    if key.status == "pending":
        await run_in_threadpool(_confirm_in_thread, request, key)
    return SignedDevice(key=key, created=verified.created)
