"""The edge side of sync on the real store, without a cloud: acknowledging, dead letters, applying
pulled pages, commands, identity, backoff."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from pathlib import Path

import pytest

from edge.store import Store, utcnow
from edge.sync import SyncClient, SyncSettings
from edge.sync_store import NotEnrolled, SyncStore
from shared.passes import generate_signing_key
from shared.sync import PassRecord, PullResponse, RemoteCommand, Revocation, StaffRecord


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "edge.sqlite3")


def enrolled(store: Store) -> SyncStore:
    sync_store = SyncStore(store)
    sync_store.save_identity(
        cloud_url="http://cloud.invalid/", device_id=str(uuid.uuid4()), tenant_id=str(uuid.uuid4()),
        library_id=str(uuid.uuid4()), library_timezone="Asia/Kolkata", key_id="dk_1",
        private_key=generate_signing_key(), pass_keys={"abcd1234": "x"}, config={"a": 1},
    )  # fmt: skip
    return sync_store


def page(**fields: object) -> PullResponse:
    return PullResponse.model_validate({"cursor": "c1"} | fields)


def a_pass(pass_id: str) -> PassRecord:
    now = utcnow()
    return PassRecord(
        pass_id=pass_id, booking_id=uuid.uuid4(), holder_id=uuid.uuid4(), valid_from=now,
        valid_until=now + dt.timedelta(hours=2),
    )  # fmt: skip


def test_identity_round_trip_and_not_enrolled(store: Store) -> None:
    with pytest.raises(NotEnrolled):
        SyncStore(store).identity()
    sync_store = enrolled(store)
    identity = sync_store.identity()
    assert identity.cloud_url == "http://cloud.invalid" and identity.key_id == "dk_1"
    assert sync_store.pass_keys() == {"abcd1234": "x"}


def test_acknowledge_removes_only_those_and_dead_letters_keep_the_reason(store: Store) -> None:
    sync_store = enrolled(store)
    ids = [store.enqueue("telemetry", {"n": n}) for n in range(5)]
    assert sync_store.acknowledge(ids[:2]) == 2
    sync_store.dead_letter({ids[2]: "door_id missing"})
    assert [row["id"] for row in sync_store.pending(10)] == ids[3:]
    assert sync_store.queue_depth() == 2 and sync_store.dead_letter_count() == 1
    (letter,) = sync_store.dead_letters()
    assert letter["id"] == ids[2] and letter["reason"] == "door_id missing" and letter["payload"] == {"n": 2}


def test_settling_a_push_removes_dead_letters_and_marks_in_one_transaction(store: Store) -> None:
    sync_store = enrolled(store)
    ids = [store.enqueue("checkin", {"n": n}) for n in range(4)]
    assert sync_store.settle_push(ids[:2], {ids[2]: "unknown door"}) == 2
    assert [row["id"] for row in sync_store.pending(10)] == ids[3:]
    assert [letter["id"] for letter in sync_store.dead_letters()] == [ids[2]]
    assert store.get_setting("sync_last_push") == store.get_setting("sync_last_success") is not None


def test_apply_pull_full_resync_replaces_and_delta_merges(store: Store) -> None:
    sync_store = enrolled(store)
    staff = StaffRecord(user_id=uuid.uuid4(), name="Desk", pin_hash="$argon2id$x", role="library_staff")
    sync_store.apply_pull(page(full_resync=True, passes=[a_pass("00000000000000aa")], staff=[staff]))
    sync_store.apply_pull(page(full_resync=True, passes=[a_pass("00000000000000bb")], staff=[staff]))
    assert [row["pass_id"] for row in sync_store.passes()] == ["00000000000000bb"]
    revoked = Revocation(pass_id="00000000000000bb", revoked_at=utcnow(), reason="cancelled")
    gone = staff.model_copy(update={"active": False})
    sync_store.apply_pull(
        page(cursor="c2", passes=[a_pass("00000000000000cc")], revocations=[revoked], staff=[gone])
    )
    assert len(sync_store.passes()) == 2 and store.is_revoked("00000000000000bb")
    assert sync_store.staff() == [] and sync_store.cursor() == "c2"


def test_commands_are_recorded_once_and_acknowledged_through_the_outbox(store: Store) -> None:
    sync_store = enrolled(store)
    command = RemoteCommand(
        id=uuid.uuid4(), kind="unlock_door", args={"door_id": "front"}, issued_at=utcnow()
    )
    assert sync_store.apply_pull(page(commands=[command])) == [command]
    assert sync_store.apply_pull(page(commands=[command])) == []
    assert sync_store.undone_commands() == [command]
    sync_store.finish_command(command, {"ok": True})
    assert sync_store.undone_commands() == []
    (ack,) = sync_store.pending(10)
    assert ack["kind"] == "command_ack" and ack["payload"] == {"command_id": str(command.id), "ok": True}


def test_next_key_is_promoted_only_once_the_cloud_named_it(store: Store) -> None:
    sync_store = enrolled(store)
    sync_store.save_next_key(generate_signing_key())
    sync_store.promote_next_key()
    assert sync_store.identity().key_id == "dk_1"
    sync_store.set_next_key_id("dk_2")
    sync_store.promote_next_key()
    assert sync_store.identity().key_id == "dk_2" and sync_store.next_key() is None


def test_backoff_grows_with_jitter_and_is_capped(store: Store) -> None:
    client = SyncClient(store, SyncSettings(backoff_base_seconds=1, backoff_max_seconds=60))
    delays = [client.backoff_delay(failures) for failures in (1, 5, 50) for _ in range(200)]
    assert all(0.5 <= delay <= 60 for delay in delays)
    assert len({round(delay, 3) for delay in delays}) > 100  # jittered, not synchronised
    assert max(client.backoff_delay(50) for _ in range(200)) > 30


async def test_a_client_without_identity_reports_not_enrolled(store: Store) -> None:
    client = SyncClient(store, SyncSettings(interval_seconds=0.05, backoff_base_seconds=0.01))
    await client.start()
    for _ in range(500):
        if client.health()["pull_failures"]:
            break
        await asyncio.sleep(0.01)
    health = client.health()
    await client.stop()
    assert health["enrolled"] is False and "not enrolled" in (health["last_error"] or "")


def test_closed_telemetry_minutes_are_queued_once(store: Store) -> None:
    sync_store = enrolled(store)
    now = utcnow().replace(second=30)
    store.record_telemetry("env-1", "co2", 500.0, now - dt.timedelta(minutes=3))
    store.record_telemetry("energy-1", "power", 120.0, now - dt.timedelta(minutes=3))
    store.record_telemetry("env-1", "co2", 520.0, now - dt.timedelta(minutes=1))
    store.record_telemetry("env-1", "co2", 530.0, now)
    assert sync_store.queue_closed_telemetry(now) == 2
    assert sync_store.queue_closed_telemetry(now) == 0
    events = sync_store.pending(10)
    assert [len(e["payload"]["rows"]) for e in events] == [2, 1]
    assert sync_store.queue_closed_telemetry(now + dt.timedelta(minutes=1)) == 1


async def test_a_late_unlock_command_is_not_run_but_acknowledged_as_expired(store: Store) -> None:
    sync_store = enrolled(store)
    ran: list[RemoteCommand] = []

    async def handler(command: RemoteCommand) -> dict[str, object]:
        ran.append(command)
        return {"ok": True}

    stale = RemoteCommand(
        id=uuid.uuid4(), kind="unlock_door", args={}, issued_at=utcnow() - dt.timedelta(hours=2)
    )
    fresh = RemoteCommand(id=uuid.uuid4(), kind="unlock_door", args={}, issued_at=utcnow())
    sync_store.apply_pull(page(commands=[stale, fresh]))
    client = SyncClient(store, on_command=handler)
    await client.run_commands()
    assert ran == [fresh]
    acks = {e["payload"]["command_id"]: e["payload"] for e in sync_store.pending(10)}
    assert acks[str(fresh.id)] == {"command_id": str(fresh.id), "ok": True}
    assert acks[str(stale.id)]["ok"] is False and "expired" in acks[str(stale.id)]["detail"]
