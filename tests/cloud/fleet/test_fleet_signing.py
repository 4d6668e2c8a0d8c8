"""Signed edge requests: unknown keys, stale, replayed, changed body or path → 401 with the reason."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import uuid
from typing import Any

import httpx
import pytest

from cloud.app import close_app, create_app
from cloud.config import CloudSettings
from cloud.fleet.auth import MemoryNonceStore
from edge.store import Store
from edge.sync_store import SyncStore
from shared.passes import generate_signing_key
from shared.signing import sign_request

from .conftest import LiveCloud, Tenant, enrolled_store

PULL = "/api/v1/fleet/sync/pull"
PUSH = "/api/v1/fleet/sync/push"


@pytest.fixture(scope="module")
def edge_store(live_cloud: LiveCloud, tenant: Tenant, tmp_path_factory: pytest.TempPathFactory) -> Store:
    return enrolled_store(live_cloud.url, live_cloud, tenant, tmp_path_factory.mktemp("edge") / "e.sqlite3")


def signed(
    store: Store, method: str, path: str, body: bytes = b"", *, created: dt.datetime | None = None
) -> dict[str, str]:
    identity = SyncStore(store).identity()
    return sign_request(
        method, path, {}, body, key_id=identity.key_id, private_key=identity.private_key, created=created
    )


def reason_of(response: httpx.Response) -> str:
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "signature_rejected"
    return str(error["details"]["reason"])


def batch(store: Store, events: list[dict[str, Any]]) -> bytes:
    now = dt.datetime.now(dt.UTC).isoformat()
    device_id = SyncStore(store).identity().device_id
    return json.dumps(
        {"version": 1, "device_id": device_id, "sent_at": now, "clock": now, "events": events}
    ).encode()


def test_a_signed_pull_is_accepted(live_cloud: LiveCloud, edge_store: Store) -> None:
    response = httpx.get(live_cloud.url + PULL, headers=signed(edge_store, "GET", PULL))
    assert response.status_code == 200, response.text
    assert "x-server-time" in response.headers


def test_unsigned_request_is_refused(live_cloud: LiveCloud) -> None:
    assert reason_of(httpx.get(live_cloud.url + PULL)) == "missing"


def test_replayed_request_is_refused(live_cloud: LiveCloud, edge_store: Store) -> None:
    headers = signed(edge_store, "GET", PULL)
    assert httpx.get(live_cloud.url + PULL, headers=headers).status_code == 200
    assert reason_of(httpx.get(live_cloud.url + PULL, headers=headers)) == "replayed"


def test_stale_and_future_requests_are_refused(live_cloud: LiveCloud, edge_store: Store) -> None:
    now = dt.datetime.now(dt.UTC)
    old = signed(edge_store, "GET", PULL, created=now - dt.timedelta(seconds=301))
    assert reason_of(httpx.get(live_cloud.url + PULL, headers=old)) == "stale"
    ahead = signed(edge_store, "GET", PULL, created=now + dt.timedelta(seconds=400))
    assert reason_of(httpx.get(live_cloud.url + PULL, headers=ahead)) == "future"


def test_tampered_body_and_changed_path_are_refused(live_cloud: LiveCloud, edge_store: Store) -> None:
    body = batch(edge_store, [])
    headers = signed(edge_store, "POST", PUSH, body) | {"Content-Type": "application/json"}
    tampered = body.replace(b'"events": []', b'"events": [] ')
    assert (
        reason_of(httpx.post(live_cloud.url + PUSH, content=tampered, headers=headers)) == "digest_mismatch"
    )
    moved = signed(edge_store, "GET", PULL + "?cursor=abc")
    assert reason_of(httpx.get(live_cloud.url + PULL + "?cursor=xyz", headers=moved)) == "bad_signature"
    other_path = signed(edge_store, "POST", "/api/v1/fleet/keys/rotate", body)
    assert reason_of(httpx.post(live_cloud.url + PUSH, content=body, headers=other_path)) == "bad_signature"


def test_unknown_key_is_refused(live_cloud: LiveCloud) -> None:
    headers = sign_request("GET", PULL, {}, b"", key_id="dk_nobody", private_key=generate_signing_key())
    assert reason_of(httpx.get(live_cloud.url + PULL, headers=headers)) == "unknown_key"


def test_gzip_push_is_accepted_and_garbage_gets_an_envelope(live_cloud: LiveCloud, edge_store: Store) -> None:
    event = {
        "id": str(uuid.uuid4()),
        "kind": "telemetry",
        "occurred_at": dt.datetime.now(dt.UTC).isoformat(),
        "payload": {"metric": "co2", "value": 612},
    }
    body = gzip.compress(batch(edge_store, [event]))
    headers = signed(edge_store, "POST", PUSH, body) | {"Content-Encoding": "gzip"}
    response = httpx.post(live_cloud.url + PUSH, content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["results"] == [{"id": event["id"], "status": "applied", "reason": None}]

    not_gzip = b"plain text"
    headers = signed(edge_store, "POST", PUSH, not_gzip) | {"Content-Encoding": "gzip"}
    response = httpx.post(live_cloud.url + PUSH, content=not_gzip, headers=headers)
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_request"

    bomb = gzip.compress(b" " * (17 * 1024 * 1024))
    headers = signed(edge_store, "POST", PUSH, bomb) | {"Content-Encoding": "gzip"}
    assert httpx.post(live_cloud.url + PUSH, content=bomb, headers=headers).status_code == 413

    wrong_device = json.loads(batch(edge_store, []))
    wrong_device["device_id"] = str(uuid.uuid4())
    body = json.dumps(wrong_device).encode()
    response = httpx.post(live_cloud.url + PUSH, content=body, headers=signed(edge_store, "POST", PUSH, body))
    assert response.status_code == 403 and response.json()["error"]["code"] == "wrong_device"

    for junk in (b"[]", b"{}", b'{"version": 1}', b"\xff"):
        response = httpx.post(
            live_cloud.url + PUSH, content=junk, headers=signed(edge_store, "POST", PUSH, junk)
        )
        assert response.status_code in (400, 422) and "error" in response.json()


def test_memory_nonce_store_forgets_after_ttl_and_bounds_its_size(monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryNonceStore(ttl_seconds=10, max_entries=3)
    clock = [1000.0]
    monkeypatch.setattr("cloud.fleet.auth.time.monotonic", lambda: clock[0])
    assert store.remember("a") and not store.remember("a")
    clock[0] += 11
    assert store.remember("a")
    for name in "bcde":
        assert store.remember(name)
    assert len(store._seen) <= 4


async def test_without_redis_replays_are_caught_in_process(
    fleet_settings: CloudSettings, edge_store: Store
) -> None:
    app = create_app(fleet_settings.model_copy(update={"redis_url": None}))
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cloud") as client:
            headers = signed(edge_store, "GET", PULL)
            assert (await client.get(PULL, headers=headers)).status_code == 200
            assert reason_of(await client.get(PULL, headers=headers)) == "replayed"
    finally:
        await close_app(app)
