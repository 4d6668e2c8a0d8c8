"""Push and pull through the real SyncClient, the real edge store and a live uvicorn cloud."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from cloud.fleet.hooks import (
    EdgeCheckin,
    PullItem,
    PullWindow,
    register_checkin_hook,
    register_pass_source,
    unregister_checkin_hook,
    unregister_pass_source,
)
from cloud.fleet.pull import LAG as PULL_LAG
from cloud.identity.roles import Role
from edge.store import Store, iso, utcnow
from edge.sync import SyncClient, SyncError, SyncSettings
from edge.sync_store import SyncStore
from shared.signing import sign_request
from shared.sync import PassRecord, RemoteCommand, Revocation

from .conftest import LiveCloud, Tenant, enrolled_store, make_tenant, make_user


@pytest.fixture
def edge(live_cloud: LiveCloud, tenant: Tenant, tmp_path: Path) -> Iterator[Store]:
    store = enrolled_store(live_cloud.url, live_cloud, tenant, tmp_path / "edge.sqlite3")
    yield store
    store.close()


@pytest.fixture(scope="module")
def settled(tenant: Tenant) -> Tenant:
    """The tenant once its rows are older than the pull's lag (fresher rows wait for the next pull)."""
    time.sleep(PULL_LAG.total_seconds() + 0.1)
    return tenant


def checkin(store: Store, pass_id: str | None = None, direction: str = "in") -> str:
    pass_id = pass_id or secrets.token_hex(8)
    now = utcnow()
    return store.record_checkin(
        pass_id=pass_id,
        holder="0123456789abcdef",
        door_id="front",
        direction=direction,
        method="qr",
        at=now,
        outbox_payload={
            "pass_id": pass_id,
            "holder": "0123456789abcdef",
            "target": "fedcba9876543210",
            "door_id": "front",
            "direction": direction,
            "occurred_at": iso(now),
        },
    )


def cloud_rows(cloud: LiveCloud, sql: str, **params: Any) -> list[Any]:
    with cloud.owner_session() as session:
        return list(session.execute(text(sql), params).all())


async def test_checkins_are_applied_once_and_reach_the_booking_hook(
    live_cloud: LiveCloud, edge: Store
) -> None:
    seen: list[EdgeCheckin] = []

    def hook(session: Session, items: Sequence[EdgeCheckin]) -> list[uuid.UUID]:
        seen.extend(items)
        return [item.event_id for item in items if item.direction == "in"]

    register_checkin_hook(hook)
    try:
        ids = [checkin(edge) for _ in range(5)] + [checkin(edge, direction="out")]
        client = SyncClient(edge)
        outcome = await client.drain()
    finally:
        unregister_checkin_hook(hook)
    assert (outcome.sent, outcome.applied, outcome.rejected) == (6, 6, 0)
    assert edge.outbox_depth() == 0
    assert sorted(str(item.event_id) for item in seen) == sorted(ids)
    rows = cloud_rows(
        live_cloud,
        "SELECT kind, consumed_at IS NOT NULL FROM edge_events WHERE id = ANY(:ids)",
        ids=[uuid.UUID(i) for i in ids],
    )
    assert sorted(rows) == sorted([("checkin", True)] * 5 + [("checkout", False)])
    assert client.health()["queued_events"] == 0 and client.health()["last_push"] is not None
    assert abs(client.health()["clock_offset_seconds"]) < 5
    await client.stop()


async def test_lost_acknowledgement_gives_duplicate_and_no_second_row(
    live_cloud: LiveCloud, edge: Store
) -> None:
    event_id = checkin(edge)
    saved = dict(next(iter(edge.db.query("SELECT * FROM outbox WHERE id = ?", [event_id]))))
    client = SyncClient(edge)
    assert (await client.drain()).applied == 1
    edge.db.table("outbox").insert(saved)  # as if the answer never arrived
    outcome = await client.drain()
    assert (outcome.applied, outcome.duplicates) == (0, 1)
    assert edge.outbox_depth() == 0
    assert cloud_rows(
        live_cloud, "SELECT count(*) FROM edge_events WHERE id = :i", i=uuid.UUID(event_id)
    ) == [(1,)]
    await client.stop()


async def test_rejected_events_become_dead_letters_and_never_block(
    live_cloud: LiveCloud, edge: Store
) -> None:
    good = checkin(edge)
    no_door = edge.enqueue("checkin", {"pass_id": "0123456789abcdef"})
    bad_pass = edge.enqueue("checkout", {"door_id": "front", "pass_id": "NOT-HEX"})
    future = edge.enqueue("alert", {"m": 1}, at=utcnow() + dt.timedelta(days=2))
    unknown_kind = edge.enqueue("teleport", {"where": "mars"})
    client = SyncClient(edge)
    outcome = await client.drain()
    assert outcome.applied == 1 and outcome.rejected == 3
    letters = {row["id"]: row["reason"] for row in SyncStore(edge).dead_letters()}
    assert set(letters) == {no_door, bad_pass, future, unknown_kind}
    assert "door_id" in letters[no_door] and "16 lowercase hex" in letters[bad_pass]
    assert "future" in letters[future] and "invalid on the edge" in letters[unknown_kind]
    assert edge.outbox_depth() == 0 and client.health()["dead_letters"] == 4
    assert (await client.drain()).sent == 0  # never retried
    assert cloud_rows(live_cloud, "SELECT count(*) FROM edge_events WHERE id = :i", i=uuid.UUID(good)) == [
        (1,)
    ]
    await client.stop()


def _passes_source(count: int, library_id: uuid.UUID) -> Any:
    stamp = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    records = [
        PassRecord(
            pass_id=f"{n:016x}",
            booking_id=uuid.uuid4(),
            seat_id=uuid.uuid4(),
            seat_label=f"A{n}",
            holder_id=uuid.uuid4(),
            holder_name=f"Student {n}",
            valid_from=stamp,
            valid_until=stamp + dt.timedelta(hours=4),
        )
        for n in range(count)
    ]
    revocation = Revocation(pass_id=f"{count + 1:016x}", revoked_at=stamp, reason="refunded")

    def source(session: Session, window: PullWindow) -> Iterable[PullItem]:
        if window.library_id != library_id or window.changed_after is not None:
            return []
        return [(stamp, record) for record in records] + [(stamp, revocation)]

    return source


async def test_pull_full_resync_paginates_then_gives_deltas(
    live_cloud: LiveCloud, settled: Tenant, edge: Store
) -> None:
    tenant = settled
    source = register_pass_source(_passes_source(2500, tenant.library_id))
    try:
        client = SyncClient(edge)
        assert await client.pull_once() == 3  # 2,500 passes + a revocation + staff, 1,000 a page
    finally:
        unregister_pass_source(source)
    sync_store = SyncStore(edge)
    assert len(sync_store.passes()) == 2500
    assert edge.is_revoked(f"{2501:016x}")
    staff = sync_store.staff()
    assert [row["name"] for row in staff] == ["Olga Owner"] and staff[0]["pin_hash"].startswith("$argon2")
    assert sync_store.pass_keys() == {} or all(len(k) == 8 for k in sync_store.pass_keys())
    assert json.loads(edge.get_setting("device_config") or "{}") == {"sync_interval": 30}

    # a delta: nothing changed → an empty page; a PIN change → the staff row again
    assert await client.pull_once() == 1
    with live_cloud.owner_session() as session:
        session.execute(
            text("UPDATE memberships SET pin_hash = 'new-hash' WHERE tenant_id = :t"), {"t": tenant.tenant_id}
        )
        session.commit()
    await asyncio.sleep(2.2)  # rows newer than the pull lag wait for the next pull
    await client.pull_once()
    assert [row["pin_hash"] for row in sync_store.staff()] == ["new-hash"]
    await client.stop()


async def test_lost_store_or_garbage_cursor_gets_a_full_resync(settled: Tenant, edge: Store) -> None:
    client = SyncClient(edge)
    await client.pull_once()
    edge.db.execute("DELETE FROM staff")
    edge.set_setting("sync_cursor", "!!not-a-cursor!!")
    await client.pull_once()
    assert len(SyncStore(edge).staff()) == 1
    await client.stop()


async def test_commands_are_delivered_run_acknowledged_and_audited(
    live_cloud: LiveCloud, tenant: Tenant, edge: Store
) -> None:
    device_id = SyncStore(edge).identity().device_id
    ran: list[RemoteCommand] = []

    async def handler(command: RemoteCommand) -> dict[str, Any]:
        ran.append(command)
        return {"ok": True, "door": command.args.get("door_id")}

    async with httpx.AsyncClient(base_url=live_cloud.url, headers=tenant.owner_headers) as owner:
        queued = await owner.post(
            f"/api/v1/fleet/devices/{device_id}/commands",
            json={"kind": "unlock_door", "args": {"door_id": "front"}},
        )
        assert queued.status_code == 201, queued.text
        bad = await owner.post(f"/api/v1/fleet/devices/{device_id}/commands", json={"kind": "format_disk"})
        assert bad.status_code == 422
        client = SyncClient(edge, on_command=handler)
        await client.pull_once()
        await client.pull_once()  # delivered again until acked, run once
        assert [c.kind for c in ran] == ["unlock_door"]
        await client.drain()
        commands = (await owner.get(f"/api/v1/fleet/devices/{device_id}/commands")).json()
    assert commands[0]["acked_at"] is not None and commands[0]["result"] == {"ok": True, "door": "front"}
    actions = [
        r[0]
        for r in cloud_rows(
            live_cloud, "SELECT action FROM audit_log WHERE target = :t", t=f"edge_device:{device_id}"
        )
    ]
    assert "fleet.command.unlock_door" in actions and "fleet.command.unlock_door.ack" in actions
    await client.stop()


async def test_rotate_key_command_switches_keys_without_downtime(
    live_cloud: LiveCloud, tenant: Tenant, edge: Store
) -> None:
    sync_store = SyncStore(edge)
    old_key = sync_store.identity().key_id
    async with httpx.AsyncClient(base_url=live_cloud.url, headers=tenant.owner_headers) as owner:
        await owner.post(
            f"/api/v1/fleet/devices/{sync_store.identity().device_id}/commands", json={"kind": "rotate_key"}
        )
    client = SyncClient(edge)
    await client.pull_once()
    await client.drain()
    new_key = sync_store.identity().key_id
    assert new_key != old_key
    statuses = dict(
        cloud_rows(
            live_cloud,
            "SELECT key_id, status FROM edge_device_keys WHERE key_id IN (:a, :b)",
            a=old_key,
            b=new_key,
        )
    )
    assert statuses == {old_key: "retired", new_key: "active"}
    assert await client.pull_once() == 1
    await client.stop()


async def test_fleet_view_shows_health_to_the_owner_and_the_platform_only(
    live_cloud: LiveCloud, tenant: Tenant, edge: Store
) -> None:
    device_id = SyncStore(edge).identity().device_id
    checkin(edge)
    edge.enqueue("teleport", {})
    client = SyncClient(edge)
    await client.pull_once()  # reports queue depth 2 before the push
    async with httpx.AsyncClient(base_url=live_cloud.url) as http:
        mine = {
            d["id"]: d for d in (await http.get("/api/v1/fleet/devices", headers=tenant.owner_headers)).json()
        }
        device = mine[device_id]
        assert device["online"] and device["queue_depth"] == 2 and device["agent_version"] == "0.1.0"
        assert device["clock_skew_flagged"] is False and abs(device["clock_skew_seconds"]) <= 2
        await client.drain()
        await client.pull_once()
        device = {
            d["id"]: d for d in (await http.get("/api/v1/fleet/devices", headers=tenant.owner_headers)).json()
        }
        assert device[device_id]["queue_depth"] == 0 and device[device_id]["dead_letters"] == 1

        other = make_tenant(live_cloud)
        theirs = (await http.get("/api/v1/fleet/devices", headers=other.owner_headers)).json()
        assert device_id not in {d["id"] for d in theirs}
        admin = make_user(live_cloud, Role.SUPER_ADMIN)
        everything = (await http.get("/api/v1/fleet/devices", headers=admin)).json()
        assert device_id in {d["id"] for d in everything}
        student = make_user(live_cloud, Role.STUDENT)
        assert (await http.get("/api/v1/fleet/devices", headers=student)).status_code == 403

        # an edge whose clock is 60 s ahead is flagged
        identity = SyncStore(edge).identity()
        ahead = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)).isoformat()
        body = json.dumps(
            {"version": 1, "device_id": device_id, "sent_at": ahead, "clock": ahead, "events": []}
        )
        path = "/api/v1/fleet/sync/push"
        headers = sign_request(
            "POST", path, {}, body.encode(), key_id=identity.key_id, private_key=identity.private_key
        )
        assert (await http.post(path, content=body, headers=headers)).status_code == 200
        device = {
            d["id"]: d for d in (await http.get("/api/v1/fleet/devices", headers=tenant.owner_headers)).json()
        }
        assert device[device_id]["clock_skew_flagged"] is True
    await client.stop()


def test_sync_settings_defaults() -> None:
    settings = SyncSettings()
    assert settings.interval_seconds == 30 and settings.batch_size == 500


async def test_a_batch_refused_whole_is_split_until_the_bad_event_is_dead(
    live_cloud: LiveCloud, edge: Store
) -> None:
    good = [checkin(edge) for _ in range(6)]
    huge = edge.enqueue(
        "alert", {"blob": secrets.token_urlsafe(1_500_000)}
    )  # over the body limit even gzipped
    good += [checkin(edge) for _ in range(6)]
    client = SyncClient(edge)
    outcome = await client.drain()
    assert outcome.applied == 12 and outcome.rejected == 1
    (letter,) = SyncStore(edge).dead_letters()
    assert letter["id"] == huge and "413" in letter["reason"]
    assert cloud_rows(
        live_cloud, "SELECT count(*) FROM edge_events WHERE id = ANY(:ids)", ids=[uuid.UUID(i) for i in good]
    ) == [(12,)]
    await client.stop()


async def test_an_edge_with_a_wrong_clock_learns_the_offset_and_recovers(edge: Store) -> None:
    pulled: list[bool] = []
    client = SyncClient(edge, on_pulled=lambda: pulled.append(True))
    client.clock_offset = -600.0  # signing as if the clock were 10 minutes behind
    with pytest.raises(SyncError) as failure:
        await client.pull_once()
    assert failure.value.status == 401 and "stale" in str(failure.value)
    assert abs(client.clock_offset) < 5  # learned from the cloud's X-Server-Time
    assert await client.pull_once() == 1 and pulled == [True]
    await client.stop()


async def test_closed_minutes_of_telemetry_reach_the_cloud_once(live_cloud: LiveCloud, edge: Store) -> None:
    now = utcnow()
    earlier = now - dt.timedelta(minutes=2)
    for value in (400.0, 420.0, 410.0):
        edge.record_telemetry("env-1", "co2", value, earlier)
    edge.record_telemetry("env-1", "co2", 999.0, now)  # the open minute waits
    client = SyncClient(edge)
    await client.drain()
    await client.drain()
    device_id = uuid.UUID(SyncStore(edge).identity().device_id)
    rows = cloud_rows(
        live_cloud,
        "SELECT sensor, metric, samples, total, minimum, maximum, last FROM edge_telemetry"
        " WHERE edge_device_id = :d",
        d=device_id,
    )
    assert rows == [("env-1", "co2", 3, 1230.0, 400.0, 420.0, 410.0)]
    assert cloud_rows(
        live_cloud,
        "SELECT count(*) FROM edge_events WHERE device_id = :d AND kind = 'telemetry'",
        d=device_id,
    ) == [(1,)]
    await client.stop()
