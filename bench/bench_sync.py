"""Sync: drain of 10,000 queued check-ins after reconnect, full pull of 5,000 bookings, bytes per event.

A real uvicorn cloud in its own process on a free port over loopback, a throwaway embedded
PostgreSQL, the real edge store and SyncClient (gzip batches of 500, RFC 9421 signatures,
in-process nonce store).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from bench.harness import BenchResult, summarize
from cloud.config import CloudSettings
from cloud.db import platform_scope
from cloud.embedded_pg import start_embedded_postgres
from cloud.migrations import upgrade
from cloud.tenancy import service as tenancy
from edge.enroll import enroll
from edge.store import Store, iso, utcnow
from edge.sync import SyncClient, SyncSettings
from edge.sync_store import SyncStore
from shared.signing import HttpxRequestSigner
from shared.sync import EdgeEvent, PushBatch

QUEUED = 10_000
BOOKINGS = 5_000
SEATS = 125  # x 40 one-hour bookings: all inside the 48 h horizon
DRAIN_RUNS = 2
PULL_RUNS = 3
PASSWORD = "bench password 123"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(settings: CloudSettings) -> tuple[subprocess.Popen[bytes], str]:
    """The cloud in its own process, as in production (the edge is another machine)."""
    port = _free_port()
    env = os.environ | {
        "DATABASE_URL": settings.database_url or "",
        "MASTER_KEY": settings.master_key or "",
        "STUDYSPOT_DATA_DIR": str(settings.studyspot_data_dir),
        "RATE_LIMIT_ENABLED": "false",
        "DB_POOL_SIZE": "10",
    }
    code = (
        "import uvicorn\nfrom cloud.app import create_app\nfrom cloud.config import CloudSettings\n"
        "uvicorn.run(create_app(CloudSettings(_env_file=None)), host='127.0.0.1',"
        f" port={port}, log_level='warning')"
    )
    process = subprocess.Popen([sys.executable, "-c", code], env=env)
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            httpx.get(f"{url}/health", timeout=1)
            return process, url
        except httpx.HTTPError:
            if process.poll() is not None:
                raise RuntimeError("the cloud did not start") from None
            time.sleep(0.1)


def _seed(owner_url: str, cloud_url: str) -> str:
    """A library with 125 seats and 5,000 confirmed bookings in the next 48 h; an enrolment token."""
    engine = create_engine(owner_url)

    with Session(engine) as session:
        platform_scope(session)
        tenant, owner = tenancy.create_tenant(
            session, name="Bench", owner_email="owner@bench.example", owner_password=PASSWORD, actor_id=None
        )
        library_id = session.execute(
            text(
                "INSERT INTO libraries (tenant_id, name, timezone)"
                " VALUES (:t, 'Hall', 'Asia/Kolkata') RETURNING id"
            ),
            {"t": tenant.id},
        ).scalar_one()
        session.execute(
            text(
                "INSERT INTO seats (tenant_id, library_id, label)"
                " SELECT :t, :l, 'S' || n FROM generate_series(1, :seats) n"
            ),
            {"t": tenant.id, "l": library_id, "seats": SEATS},
        )
        session.execute(
            text(
                """
                INSERT INTO bookings (tenant_id, library_id, seat_id, user_id, kind, status, during,
                                      price_minor, currency, pass_id)
                SELECT :t, :l, s.id, :u, 'hourly', 'confirmed',
                       tstzrange(date_trunc('hour', now()) + make_interval(hours => h),
                                 date_trunc('hour', now()) + make_interval(hours => h + 1), '[)'),
                       0, 'INR', lpad(to_hex(row_number() OVER ()), 16, '0')
                FROM (SELECT id FROM seats WHERE library_id = :l) s, generate_series(0, :hours - 1) h
                """
            ),
            {"t": tenant.id, "l": library_id, "u": owner.id, "hours": BOOKINGS // SEATS},
        )
        session.commit()
    engine.dispose()
    login = httpx.post(
        f"{cloud_url}/api/v1/auth/login", json={"email": "owner@bench.example", "password": PASSWORD}
    )
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    device = httpx.post(
        f"{cloud_url}/api/v1/fleet/devices",
        json={"library_id": str(library_id), "name": "bench"},
        headers=headers,
    )
    return str(device.json()["enrollment_token"])


def _queue(store: Store, count: int) -> None:
    """Check-in events straight into the outbox in one transaction (setup, not the measured part)."""
    with store.transaction():
        for _ in range(count):
            pass_id, now = secrets.token_hex(8), iso(utcnow())
            payload = {"pass_id": pass_id, "holder": secrets.token_hex(8), "target": secrets.token_hex(8),
                       "door_id": "front", "direction": "in", "occurred_at": now}  # fmt: skip
            store.db.execute(
                "INSERT INTO outbox (id, kind, occurred_at, payload, attempts, dead)"
                " VALUES (?, 'checkin', ?, ?, 0, 0)",
                [str(uuid.uuid4()), now, json.dumps(payload)],
            )


def _bytes_per_event(store: Store) -> tuple[float, float]:
    rows = SyncStore(store).pending(500)
    events = [
        EdgeEvent(id=r["id"], kind=r["kind"], occurred_at=r["occurred_at"], payload=r["payload"])
        for r in rows
    ]
    now = utcnow()
    body = PushBatch(device_id=uuid.uuid4(), sent_at=now, clock=now, events=events).model_dump_json().encode()
    return len(gzip.compress(body, compresslevel=6)) / len(events), len(body) / len(events)


async def _drain(store: Store) -> list[float]:
    samples = []
    for _ in range(DRAIN_RUNS):
        _queue(store, QUEUED)
        client = SyncClient(store, SyncSettings())
        start = time.perf_counter()
        outcome = await client.drain()
        samples.append(time.perf_counter() - start)
        await client.stop()
        assert outcome.applied == QUEUED and store.outbox_depth() == 0
    return samples


async def _pull(store: Store) -> tuple[list[float], int]:
    samples = []
    size = 0
    for _ in range(PULL_RUNS):
        store.db.execute("DELETE FROM settings WHERE key = 'sync_cursor'")
        client = SyncClient(store, SyncSettings())
        start = time.perf_counter()
        await client.pull_once()
        samples.append(time.perf_counter() - start)
        await client.stop()
    assert len(SyncStore(store).passes()) == BOOKINGS
    identity = SyncStore(store).identity()
    async with httpx.AsyncClient(
        base_url=identity.cloud_url, auth=HttpxRequestSigner(identity.key_id, identity.private_key)
    ) as http:
        cursor = None
        while True:
            response = await http.get("/api/v1/fleet/sync/pull", params={"cursor": cursor} if cursor else {})
            size += response.num_bytes_downloaded
            body = response.json()
            cursor = body["cursor"]
            if not body["has_more"]:
                break
    return samples, size


def run() -> list[BenchResult]:
    root = Path(tempfile.mkdtemp(prefix="studyspot-bench-sync-", dir="/tmp"))
    pg = start_embedded_postgres(root / "pg")
    try:
        admin = create_engine(pg.owner_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text('DROP DATABASE IF EXISTS "bench_sync" WITH (FORCE)'))
            conn.execute(text('CREATE DATABASE "bench_sync"'))
        admin.dispose()
        url = pg.url("bench_sync")
        upgrade(url)
        settings = CloudSettings(
            _env_file=None, database_url=url, redis_url=None, master_key="y" * 43 + "=",
            studyspot_data_dir=root / "data", rate_limit_enabled=False, db_pool_size=10,
        )  # fmt: skip
        cloud, cloud_url = _serve(settings)
        try:
            token = _seed(url, cloud_url)
            store = Store(root / "edge.sqlite3")
            enroll(cloud_url, token, store)
            time.sleep(2.2)  # the pull serves rows older than its 2 s lag
            _queue(store, 500)
            gzip_bytes, raw_bytes = _bytes_per_event(store)
            store.db.execute("DELETE FROM outbox")
            drain = summarize(asyncio.run(_drain(store)))
            pull_samples, pull_size = asyncio.run(_pull(store))
            pull = summarize(pull_samples)
        finally:
            cloud.terminate()
            cloud.wait(timeout=15)
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
    return [
        BenchResult(
            f"drain {QUEUED:,} queued check-ins (batches of 500, gzip)", drain[0], drain[1], "s", "≤ 5 s"
        ),
        BenchResult(f"full pull of {BOOKINGS:,} bookings (pages of 1,000)", pull[0], pull[1], "s", "≤ 2 s"),
        BenchResult(f"pull of {BOOKINGS:,} bookings on the wire", pull_size / 1024, pull_size / 1024, "KiB"),
        BenchResult("check-in event on the wire, gzip batch of 500", gzip_bytes, gzip_bytes, "bytes"),
        BenchResult("check-in event uncompressed JSON", raw_bytes, raw_bytes, "bytes"),
    ]


if __name__ == "__main__":
    for result in run():
        print(result)
