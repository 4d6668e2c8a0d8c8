"""The signed-request check for edge → cloud calls (RFC 9421 via shared.signing).

The key lookup is a database read, so the check runs in a worker thread, in the session the sync
route then goes on with (one thread hop and one pooled connection per request). The nonce is
remembered after the signature verified (Redis `SET NX EX` on the event loop when the app has
Redis, else an in-process TTL map), and only then is a pending (rotated) key confirmed.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio.from_thread
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from cloud.db import platform_scope, tenant_scope
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
        self._lock = threading.Lock()  # worker threads remember nonces

    def remember(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            while self._seen and (next(iter(self._seen.values())) < now or len(self._seen) > self._max):
                self._seen.popitem(last=False)
            if key in self._seen:
                return False
            self._seen[key] = now + self._ttl
            return True


_memory_store_lock = threading.Lock()


def _memory_nonces(request: Request) -> MemoryNonceStore:
    store = getattr(request.app.state, "fleet_nonces", None)
    if store is None:
        with _memory_store_lock:
            store = getattr(request.app.state, "fleet_nonces", None)
            if store is None:
                store = request.app.state.fleet_nonces = MemoryNonceStore()
    return store


def _nonce_key(key_id: str, nonce: str) -> str:
    return f"fleet:nonce:{key_id}:{nonce}"


async def remember_nonce(request: Request, key_id: str, nonce: str) -> bool:
    redis = getattr(request.app.state, "redis", None)
    if redis is not None:
        return bool(await redis.set(_nonce_key(key_id, nonce), b"1", nx=True, ex=NONCE_TTL_SECONDS))
    return _memory_nonces(request).remember(_nonce_key(key_id, nonce))


def _remember_nonce_in_thread(request: Request, key_id: str, nonce: str) -> bool:
    if getattr(request.app.state, "redis", None) is not None:  # the async client lives on the loop
        return bool(anyio.from_thread.run(remember_nonce, request, key_id, nonce))
    return _memory_nonces(request).remember(_nonce_key(key_id, nonce))


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


@dataclass(frozen=True)
class SignedBody:
    """What the check needs from the request, read on the event loop."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes


async def signed_body(request: Request) -> SignedBody:
    body = await request.body()
    return SignedBody(request.method, starlette_request_url(request), request.headers.items(), body)


@functools.lru_cache(maxsize=MAX_PARSED_KEYS)
def _parsed_public_key(text: str) -> Ed25519PublicKey:
    """Keyed by the key's text, so a cached key is only ever the key that text encodes; whether the
    key may sign is still read from the database on every request."""
    return public_key_from_text(text)


def _verify(session: Session, signed: SignedBody) -> tuple[service.DeviceKey, VerifiedSignature]:
    found: dict[str, service.DeviceKey] = {}

    def resolve(key_id: str) -> Ed25519PublicKey | None:
        key = service.find_device_key(session, key_id)
        if key is None:
            return None
        found["key"] = key
        return _parsed_public_key(key.public_key)

    verified = verify_request(
        signed.method,
        signed.url,
        signed.headers,
        signed.body,
        resolve_key=resolve,
        now=datetime.now(UTC),
        max_skew=DEFAULT_MAX_SKEW,
        remember_nonce=lambda _key, _nonce: True,  # checked by the caller, once the key is known
    )
    return found["key"], verified


def authenticate(request: Request, session: Session, signed: SignedBody) -> SignedDevice:
    """In a worker thread: the device whose key signed the request, or a 401 ApiError with the
    reason. Leaves `session` scoped to the device's tenant, for the route to go on with."""
    platform_scope(session)  # the tenant is known only once the key is; its lookup scopes to it
    try:
        key, verified = _verify(session, signed)
        if not _remember_nonce_in_thread(request, verified.key_id, verified.nonce):
            raise SignatureRejected(SignatureRejectReason.REPLAYED, "nonce was used before")
    except SignatureRejected as exc:
        raise _rejected(exc.reason, exc.detail) from None
    if key.status == "pending":
        platform_scope(session)  # it retires the device's other keys
        service.confirm_key(session, key)
        session.commit()
        tenant_scope(session, key.tenant_id, None)
    return SignedDevice(key=key, created=verified.created)


def _authenticate_alone(request: Request, signed: SignedBody) -> SignedDevice:
    with request.app.state.session_factory() as session:
        return authenticate(request, session, signed)


async def signed_device(request: Request) -> SignedDevice:
    """FastAPI dependency (routes that open their own session): the device whose key signed this
    request, or 401 with the reason."""
    return await run_in_threadpool(_authenticate_alone, request, await signed_body(request))
