"""Fault tests with real processes and sockets: the cloud as its own uvicorn process (SIGKILL'd and
restarted), the real edge store and SyncClient, and a TCP proxy in between that drops, delays or cuts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import secrets
import signal
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from cloud.config import CloudSettings
from edge.store import Store, iso, utcnow
from edge.sync import SyncClient, SyncError, SyncSettings
from edge.sync_store import SyncStore
from shared.signing import sign_request
from tests.conftest import free_tcp_port

from .chaos import ChaosProxy
from .conftest import REPO, CloudProcess, LiveCloud, Tenant, create_device, make_tenant

FAST = SyncSettings(
    interval_seconds=0.2, backoff_base_seconds=0.05, backoff_max_seconds=0.5, timeout_seconds=5
)
QUEUED_WHILE_DOWN = 10_000  # the figure


@pytest.fixture(scope="module")
def cloud_process(
    fleet_settings: CloudSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CloudProcess]:
    process = CloudProcess(fleet_settings, free_tcp_port(), tmp_path_factory.mktemp("logs") / "cloud.log")
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def process_cloud(cloud_process: CloudProcess, fleet_settings: CloudSettings) -> LiveCloud:
    return LiveCloud(cloud_process.url, fleet_settings, None)


@pytest.fixture(scope="module")
def fault_tenant(process_cloud: LiveCloud) -> Tenant:
    return make_tenant(process_cloud)


@pytest.fixture
def token(process_cloud: LiveCloud, fault_tenant: Tenant) -> str:
    return create_device(process_cloud, fault_tenant)[1]


def fast_store(path: Path) -> Store:
    store = Store(path)
    store.db.execute("PRAGMA synchronous=OFF")  # test speed only: the edge process is not killed here
    return store


def enroll_via(url: str, token: str, store: Store) -> None:
    from edge.enroll import enroll

    enroll(url, token, store)


def point_at(store: Store, url: str) -> None:
    store.set_setting("cloud_url", url)


def queue_checkins(store: Store, count: int) -> set[str]:
    ids = set()
    for _ in range(count):
        pass_id, now = secrets.token_hex(8), utcnow()
        ids.add(
            store.record_checkin(
                pass_id=pass_id,
                holder="0123456789abcdef",
                door_id="front",
                direction="in",
                method="qr",
                at=now,
                outbox_payload={
                    "pass_id": pass_id,
                    "door_id": "front",
                    "direction": "in",
                    "occurred_at": iso(now),
                },
            )
        )
    return ids


def applied_count(cloud: LiveCloud, ids: set[str]) -> tuple[int, int]:
    """(rows for these ids, distinct ids) in the cloud."""
    with cloud.owner_session() as session:
        row = session.execute(
            text("SELECT count(*), count(DISTINCT id) FROM edge_events WHERE id = ANY(:ids)"),
            {"ids": [uuid.UUID(i) for i in ids]},
        ).one()
    return int(row[0]), int(row[1])


async def wait_until(predicate: Any, *, limit_seconds: float = 60) -> None:
    """Poll until true; the limit only stops a hung test, it asserts nothing about speed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_seconds
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("did not converge")
        await asyncio.sleep(0.05)


async def test_cloud_down_while_10000_checkins_queue_then_all_arrive_exactly_once(
    cloud_process: CloudProcess, process_cloud: LiveCloud, token: str, tmp_path: Path
) -> None:
    store = fast_store(tmp_path / "edge.sqlite3")
    enroll_via(cloud_process.url, token, store)
    proxy = ChaosProxy(cloud_process.port)
    point_at(store, f"http://127.0.0.1:{await proxy.start()}")
    proxy.mode = "drop"  # the link is down (a cloud that is down looks the same from the edge)
    ids = queue_checkins(store, QUEUED_WHILE_DOWN)
    client = SyncClient(store, FAST)
    with pytest.raises(SyncError):
        await client.push_once()
    await client.start()
    await wait_until(lambda: client.health()["push_failures"] >= 1)  # the loop retried and failed too
    assert store.outbox_depth() == QUEUED_WHILE_DOWN
    proxy.mode = "pass"
    client.sync_now()
    await wait_until(lambda: store.outbox_depth() == 0)
    await client.stop()
    await proxy.stop()
    assert applied_count(process_cloud, ids) == (QUEUED_WHILE_DOWN, QUEUED_WHILE_DOWN)


async def test_kill_9_of_the_cloud_mid_batch_loses_nothing_and_duplicates_nothing(
    cloud_process: CloudProcess, process_cloud: LiveCloud, token: str, tmp_path: Path
) -> None:
    store = fast_store(tmp_path / "edge.sqlite3")
    enroll_via(cloud_process.url, token, store)
    proxy = ChaosProxy(cloud_process.port)
    point_at(store, f"http://127.0.0.1:{await proxy.start()}")
    ids = queue_checkins(store, 1200)
    client = SyncClient(store, FAST)

    # 1: the cloud committed the batch and dies before its answer reaches the edge
    proxy.on_first_response_bytes = cloud_process.kill
    with pytest.raises(SyncError):
        await client.push_once()
    assert store.outbox_depth() == 1200
    assert applied_count(process_cloud, ids) == (500, 500)
    cloud_process.start()
    outcome = await client.push_once()
    assert (outcome.duplicates, outcome.applied) == (500, 0)

    # 2: the cloud dies while it is applying a batch (just after receiving it)
    proxy.on_request_bytes = cloud_process.kill
    with pytest.raises(SyncError):
        await client.push_once()
    cloud_process.start()
    await client.drain()
    await client.stop()
    await proxy.stop()
    assert store.outbox_depth() == 0
    assert applied_count(process_cloud, ids) == (1200, 1200)


def test_duplicated_reordered_and_replayed_batches(
    cloud_process: CloudProcess, process_cloud: LiveCloud, token: str, tmp_path: Path
) -> None:
    store = fast_store(tmp_path / "edge.sqlite3")
    enroll_via(cloud_process.url, token, store)
    identity = SyncStore(store).identity()
    events: list[dict[str, Any]] = [
        {
            "id": str(uuid.uuid4()),
            "kind": "checkin",
            "occurred_at": iso(utcnow() - dt.timedelta(minutes=n)),
            "payload": {"door_id": "front", "pass_id": secrets.token_hex(8)},
        }
        for n in range(5)
    ]
    path = "/api/v1/fleet/sync/push"

    def post(batch_events: list[dict[str, Any]], *, headers: dict[str, str] | None = None) -> httpx.Response:
        now = iso(utcnow())
        body = json.dumps(
            {
                "version": 1,
                "device_id": identity.device_id,
                "sent_at": now,
                "clock": now,
                "events": batch_events,
            }
        ).encode()
        signed = headers or sign_request(
            "POST", path, {}, body, key_id=identity.key_id, private_key=identity.private_key
        )
        return httpx.post(cloud_process.url + path, content=body, headers=signed)

    def statuses(response: httpx.Response) -> list[str]:
        assert response.status_code == 200, response.text
        return [r["status"] for r in response.json()["results"]]

    assert statuses(post(events[2:])) == ["applied"] * 3  # a later batch first
    assert statuses(post(events[:3])) == ["applied", "applied", "duplicate"]  # overlapping, earlier
    assert statuses(post(list(reversed(events)))) == ["duplicate"] * 5  # the whole thing again, reordered
    assert statuses(post([events[0], events[0]])) == ["duplicate"]  # repeated inside one batch

    body = json.dumps(
        {
            "version": 1,
            "device_id": identity.device_id,
            "sent_at": iso(utcnow()),
            "clock": iso(utcnow()),
            "events": [],
        }
    ).encode()
    headers = sign_request("POST", path, {}, body, key_id=identity.key_id, private_key=identity.private_key)
    assert httpx.post(cloud_process.url + path, content=body, headers=headers).status_code == 200
    replay = httpx.post(cloud_process.url + path, content=body, headers=headers)
    assert replay.status_code == 401 and replay.json()["error"]["details"]["reason"] == "replayed"
    assert applied_count(process_cloud, {e["id"] for e in events}) == (5, 5)


async def test_a_cut_and_slowed_link_converges_once_it_heals(
    cloud_process: CloudProcess, process_cloud: LiveCloud, token: str, tmp_path: Path
) -> None:
    store = fast_store(tmp_path / "edge.sqlite3")
    enroll_via(cloud_process.url, token, store)
    proxy = ChaosProxy(cloud_process.port)
    point_at(store, f"http://127.0.0.1:{await proxy.start()}")
    client = SyncClient(store, FAST)
    await client.start()
    ids = queue_checkins(store, 300)
    proxy.mode = "drop"
    client.sync_now()
    ids |= queue_checkins(store, 300)
    await asyncio.sleep(0.5)
    proxy.mode, proxy.delay_seconds = "delay", 0.02  # slow, but up
    ids |= queue_checkins(store, 300)
    client.sync_now()
    client.pull_now()
    await wait_until(lambda: store.outbox_depth() == 0 and client.health()["last_pull"] is not None)
    proxy.mode = "pass"
    await client.stop()
    await proxy.stop()
    assert applied_count(process_cloud, ids) == (900, 900)
    assert client.health()["push_failures"] == 0


EDGE_DRAIN = """
import asyncio, sys
from edge.store import Store
from edge.sync import SyncClient, SyncSettings
store = Store(sys.argv[1])
asyncio.run(SyncClient(store, SyncSettings(batch_size=200)).drain())
"""


async def test_kill_9_of_the_edge_mid_push_loses_nothing_and_duplicates_nothing(
    cloud_process: CloudProcess, process_cloud: LiveCloud, token: str, tmp_path: Path
) -> None:
    path = tmp_path / "edge.sqlite3"
    store = Store(path)  # synchronous=FULL, as on the Pi: this process is the one killed
    enroll_via(cloud_process.url, token, store)
    proxy = ChaosProxy(cloud_process.port)
    point_at(store, f"http://127.0.0.1:{await proxy.start()}")
    ids = queue_checkins(store, 600)
    edge = await asyncio.create_subprocess_exec(sys.executable, "-c", EDGE_DRAIN, str(path), cwd=REPO)
    # the cloud has applied the agent's first batch; the agent dies before it reads the answer
    proxy.on_first_response_bytes = lambda: os.kill(edge.pid, signal.SIGKILL)
    assert await edge.wait() == -signal.SIGKILL
    assert store.outbox_depth() == 600 and applied_count(process_cloud, ids) == (200, 200)

    client = SyncClient(Store(path))  # the agent restarted
    outcome = await client.drain()
    await client.stop()
    await proxy.stop()
    assert (outcome.duplicates, outcome.applied) == (200, 400)
    assert store.outbox_depth() == 0 and applied_count(process_cloud, ids) == (600, 600)
