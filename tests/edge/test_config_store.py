"""Config errors name the key and line; the store is durable, append-only and migrates."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge.cli import app
from edge.config import ConfigError, load_config, parse_config
from edge.store import MIGRATIONS, Store

EXAMPLE = Path(__file__).resolve().parents[2] / "edge" / "example-config.toml"


def test_example_config_is_valid() -> None:
    config = load_config(EXAMPLE)
    assert config.library_id and config.broker.port == 1883


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('library_id = "x"\n[broker]\nport = "high"\n', ":3: key 'broker.port'"),
        ('library_id = "x"\n\n[checkin]\nrelock_seconds = -1\n', ":4: key 'checkin.relock_seconds'"),
        ('library_id = "x"\nmqtt_url = "http://nope"\n', ":2: key 'mqtt_url'"),
        ('library_id = "x"\n[pass_keys]\nk1 = "not-a-key"\n', "key 'pass_keys'"),
        ('library_id = "x"\nunknown_thing = 1\n', ":2: key 'unknown_thing'"),
        ("library_id = \n", "not valid TOML"),
        ('library_id = "x"\n[rules]\ntimezone = "Mars/Base"\n', ":3: key 'rules.timezone'"),
        ("", "key 'library_id'"),
    ],
)
def test_config_errors_name_key_and_line(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(text, "edge.toml")
    assert expected in str(error.value)


def test_agent_refuses_to_start_on_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('library_id = "x"\n[kiosk]\nport = 99999\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["run", "--config", str(bad)])
    assert result.exit_code == 2
    assert "kiosk.port" in result.output


def test_checkins_are_append_only_and_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "edge.sqlite3"
    store = Store(path)
    now = datetime.now(UTC)
    store.record_checkin(
        pass_id="p1", holder="h", door_id="d", direction="in", method="qr", at=now, outbox_payload={}
    )
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.db.execute("DELETE FROM checkins")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.db.execute("UPDATE checkins SET door_id = 'x'")
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
    reopened = Store(path)
    assert reopened.schema_version == len(MIGRATIONS)
    assert [row["pass_id"] for row in reopened.checkins()] == ["p1"]
    assert reopened.outbox_depth() == 1 and reopened.occupancy() == 1
    reopened.close()


def test_telemetry_rolls_up_per_minute_and_compacts(store: Store) -> None:
    minute = datetime(2026, 11, 24, 10, 5, tzinfo=UTC)
    for second, value in ((1, 20.0), (30, 22.0), (59, 21.0)):
        store.record_telemetry("env", "temperature", value, minute + timedelta(seconds=second))
    store.record_telemetry("env", "temperature", 25.0, minute + timedelta(minutes=1))
    rows = store.telemetry("env", "temperature")
    assert [(r["count"], r["minimum"], r["maximum"], r["last"]) for r in rows] == [
        (3, 20.0, 22.0, 21.0),
        (1, 25.0, 25.0, 25.0),
    ]
    assert store.compact_telemetry(minute + timedelta(minutes=1)) == 1


def test_exit_button_never_drives_occupancy_negative(store: Store) -> None:
    now = datetime.now(UTC)
    for _ in range(3):
        store.record_checkin(
            pass_id=None,
            holder=None,
            door_id="d",
            direction="out",
            method="exit_button",
            at=now,
            outbox_payload={},
        )
    assert store.occupancy() == 0


def test_device_passwords_are_stored_hashed(store: Store) -> None:
    from edge.devices import enroll_device

    enrolled = enroll_device(store, device_id="door1", kind="door")
    record, hashed = store.device_credentials("dev-door1")  # type: ignore[misc]
    assert hashed is not None and enrolled.password not in hashed and hashed.startswith("$argon2id$")
    assert record.topic_prefix == "door1"


def test_cli_enrols_demo_devices_and_writes_mosquitto_files(tmp_path: Path) -> None:
    import json

    config = tmp_path / "edge.toml"
    config.write_text(
        'library_id = "lib-1"\ndata_dir = "data"\nagent_password = "pw-123"\n', encoding="utf-8"
    )
    runner = CliRunner()
    out = tmp_path / "devices.json"
    assert runner.invoke(app, ["demo-devices", "--out", str(out), "--config", str(config)]).exit_code == 0
    entries = json.loads(out.read_text())
    door = next(entry for entry in entries if entry["kind"] == "door")
    assert door["topics"]["scan"] == f"{door['topic_prefix']}/text_sensor/qr_scan/state"
    assert door["topics"]["lock_command"] == f"{door['topic_prefix']}/lock/door_lock/command"
    assert {"id", "kind", "topic_prefix", "username", "password", "topics"} <= door.keys()
    added = runner.invoke(app, ["device", "add", "hall-2", "--kind", "env", "--config", str(config)])
    # without --secrets the secrets.yaml lines are printed (YAML values, JSON-quoted)
    printed = dict(line.split(": ", 1) for line in added.output.strip().splitlines())
    assert added.exit_code == 0 and json.loads(printed["hall_2_mqtt_username"]) == "dev-hall-2"
    files = runner.invoke(
        app, ["device", "mosquitto-files", "--out", str(tmp_path / "mq"), "--config", str(config)]
    )
    assert files.exit_code == 0
    acl = (tmp_path / "mq" / "acl").read_text()
    assert f"topic write {door['topic_prefix']}/#" in acl and "user dev-hall-2" in acl
    passwd = (tmp_path / "mq" / "passwd").read_text()
    assert passwd.count("$7$") == len(entries) + 2  # demo devices, hall-2 and the agent
