"""Crash durability: `kill -9` the agent mid-storm; every UNLOCK seen has its check-in on disk."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.devices import enroll_device
from edge.simulator import DeviceSimulator, SimDevice
from edge.store import Store
from shared.topics import DeviceKind
from tests.edge.conftest import AGENT_PASSWORD, PassFactory, eventually, free_port

DOOR = "crash-door"
STORM = 200


def write_config(passes: PassFactory, directory: Path, port: int) -> Path:
    config = directory / "edge.toml"
    config.write_text(
        f'library_id = "{passes.library_id}"\n'
        f'data_dir = "{directory / "data"}"\n'
        f'agent_password = "{AGENT_PASSWORD}"\n'
        "[pass_keys]\n"
        f'"{passes.key_id}" = "{passes.public_text}"\n'
        "[broker]\n"
        f'host = "127.0.0.1"\nport = {port}\n'
        "[kiosk]\nenabled = false\n"
        "[checkin]\nrelock_seconds = 60\n",
        encoding="utf-8",
    )
    return config


def enroll_door(store_path: Path) -> SimDevice:
    store = Store(store_path)
    try:
        enrolled = enroll_device(store, device_id=DOOR, kind=DeviceKind.DOOR, topic_prefix=DOOR)
    finally:
        store.close()
    record = enrolled.record
    return SimDevice(record.id, DeviceKind.DOOR, record.topic_prefix, record.username, enrolled.password)


def start_agent(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "studyspot", "edge", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture
def agent_processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


async def scan_until_unlocked(simulator: DeviceSimulator, text: str) -> None:
    door = simulator[DOOR]
    before = len(door.commands)
    await door.scan(text)
    await eventually(lambda: any(p == "UNLOCK" for _, p in door.commands[before:]), limit=15)


async def test_kill_minus_nine_keeps_every_unlocked_checkin(
    passes: PassFactory, tmp_path: Path, agent_processes: list[subprocess.Popen[bytes]]
) -> None:
    port = free_port()
    config = write_config(passes, tmp_path, port)
    store_path = tmp_path / "data" / "edge.sqlite3"
    store_path.parent.mkdir(parents=True)
    door = enroll_door(store_path)
    agent_processes.append(start_agent(config))
    simulator = DeviceSimulator("127.0.0.1", port, [door])
    await simulator.start(wait=20)
    try:
        await scan_until_unlocked(simulator, passes.make()[0])
        storm = [passes.make() for _ in range(STORM)]
        for index, (text, _) in enumerate(storm):
            await simulator[DOOR].scan(text)
            if index == STORM // 2:
                os.kill(agent_processes[0].pid, signal.SIGKILL)
                agent_processes[0].wait(timeout=10)
                break
        unlocks = [p for _, p in simulator[DOOR].commands if p == "UNLOCK"]
    finally:
        await simulator.stop()

    with sqlite3.connect(store_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        checkins = db.execute("SELECT count(*) FROM checkins WHERE door_id = ?", [DOOR]).fetchone()[0]
    assert unlocks, "the storm produced no UNLOCK before the kill"
    assert checkins >= len(unlocks)

    agent_processes.append(start_agent(config))
    simulator = DeviceSimulator("127.0.0.1", port, [door])
    await simulator.start(wait=20)
    try:
        await scan_until_unlocked(simulator, passes.make()[0])
    finally:
        await simulator.stop()
    with sqlite3.connect(store_path) as db:
        after = db.execute("SELECT count(*) FROM checkins WHERE door_id = ?", [DOOR]).fetchone()[0]
    assert after == checkins + 1
