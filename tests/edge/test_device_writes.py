"""Held device writes give the rows one commit per message gives, and no reader misses them."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge.devices import enroll_device
from edge.store import MAX_HELD_DEVICE_ROWS, Store

START = datetime(2026, 11, 25, 9, 0, 50, tzinfo=UTC)
# (device, entity, value, seconds after START, live, reading): across a minute boundary, with a
# retained message (not "seen") and a state that is no reading
MESSAGES = [
    ("env-a", "temperature", "21.5", 0, True, 21.5),
    ("env-a", "temperature", "22.5", 5, True, 22.5),
    ("env-a", "co2", "800", 6, False, 800.0),
    ("env-b", "temperature", "19.0", 9, True, 19.0),
    ("env-a", "temperature", "20.5", 12, True, 20.5),
    ("env-b", "status_text", "fan on", 14, True, None),
    ("env-a", "temperature", "24.5", 20, True, 24.5),
]


def _store(path: Path) -> Store:
    store = Store(path)
    for device in ("env-a", "env-b"):
        enroll_device(store, device_id=device, kind="env", topic_prefix=f"lib/{device}")
    return store


def _feed(store: Store, *, hold: bool) -> None:
    for device, entity, value, seconds, live, reading in MESSAGES:
        at = START + timedelta(seconds=seconds)
        store.record_device_state(device, entity, value, at, seen=live, reading=reading, hold=hold)


def _rows(store: Store) -> dict[str, list[tuple[object, ...]]]:
    queries = {
        "telemetry": "SELECT device_id, metric, minute, count, total, minimum, maximum, last FROM telemetry",
        "device_state": "SELECT device_id, entity, value, updated_at FROM device_state",
        "devices": "SELECT id, last_seen FROM devices",
    }
    return {name: sorted(store.db.execute(sql).fetchall()) for name, sql in queries.items()}


def test_held_writes_give_the_rows_of_one_commit_per_message(tmp_path: Path) -> None:
    direct, held = _store(tmp_path / "direct.sqlite3"), _store(tmp_path / "held.sqlite3")
    _feed(direct, hold=False)
    _feed(held, hold=True)
    assert _rows(held) == _rows(direct)
    assert [row["count"] for row in held.telemetry("env-a", "temperature")] == [2, 2]
    direct.close()
    held.close()


def _counted_elsewhere(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT coalesce(sum(count), 0) FROM telemetry").fetchone()[0])


def test_whoever_uses_the_database_sees_held_writes_first(tmp_path: Path) -> None:
    store = _store(tmp_path / "edge.sqlite3")
    _feed(store, hold=True)
    store.devices_version()  # asked on every PUBLISH: commits nothing
    assert _counted_elsewhere(store.path) == 0
    assert store.device_state("env-b", "status_text") == "fan on"  # any use of `db` commits them
    assert _counted_elsewhere(store.path) == 6
    store.close()


def test_closing_the_store_commits_what_is_held(tmp_path: Path) -> None:
    store = _store(tmp_path / "edge.sqlite3")
    _feed(store, hold=True)
    store.close()
    assert _counted_elsewhere(tmp_path / "edge.sqlite3") == 6


def test_held_writes_are_committed_when_too_many_rows_pile_up(tmp_path: Path) -> None:
    store = _store(tmp_path / "edge.sqlite3")
    for index in range(MAX_HELD_DEVICE_ROWS):  # a new row each: the bound commits them, not a timer
        store.record_device_state("env-a", f"entity-{index}", "x", START, seen=False, reading=None, hold=True)
    with sqlite3.connect(f"file:{store.path}?mode=ro", uri=True) as db:
        assert db.execute("SELECT count(*) FROM device_state").fetchone()[0] == MAX_HELD_DEVICE_ROWS
    store.close()
