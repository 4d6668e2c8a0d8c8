"""Fault injection on the edge with real processes and a real filesystem.

- Disk full: the agent's data dir is a small tmpfs (mounted for the test; we run as root) filled
  with a file. A scan then cannot be recorded, so the door stays shut; the agent raises a live
  `store_full` alert, /health says `store.full`, it keeps running, the database is not corrupted, and
  once space is freed the next pass unlocks.
- Broker restarted: Mosquitto (a separate process) is stopped and started on the same port; the
  agent and the devices reconnect and re-subscribe, so the lock commands of a scan after the restart
  (UNLOCK, then the automatic relock) reach the lock.
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from edge.agent import Agent
from edge.simulator import DeviceSimulator, register_demo_devices
from edge.store import Store
from shared.topics import event_topic
from tests.edge.conftest import (
    AGENT_PASSWORD,
    MosquittoProcess,
    Observer,
    PassFactory,
    eventually,
    make_config,
)
from tests.reliability.report import Tally

DOOR = "front-door"
TMPFS_SIZE = "4m"


@pytest.fixture
def small_disk() -> Iterator[Path]:
    mount_point = Path(tempfile.mkdtemp(prefix="studyspot-full-", dir="/tmp"))
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(mount_point)], check=True
    )
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)
    mount_point.rmdir()


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb") as handle, contextlib.suppress(OSError):
        chunk = b"\0" * 65536
        while True:
            handle.write(chunk)
            handle.flush()
    with contextlib.suppress(OSError):  # the last partial page too
        filler.open("ab").write(b"\0" * 4096)
    probe = disk / "probe"
    with pytest.raises(OSError) as full:
        probe.write_bytes(b"\0" * 8192)
    assert full.value.errno == errno.ENOSPC
    probe.unlink(missing_ok=True)
    return filler


@pytest.fixture
async def agent_on_small_disk(
    passes: PassFactory, small_disk: Path
) -> AsyncIterator[tuple[Agent, DeviceSimulator]]:
    store = Store(small_disk / "edge.sqlite3")
    devices = register_demo_devices(store)
    store.close()
    agent = Agent(make_config(passes, small_disk))
    await agent.start()
    simulator = DeviceSimulator(agent.mqtt_host, agent.mqtt_port, devices)
    await simulator.start()
    yield agent, simulator
    await simulator.stop()
    await agent.stop()


async def scan(simulator: DeviceSimulator, text: str) -> int:
    door = simulator[DOOR]
    before = len(door.commands)
    await door.scan(text)
    return before


def unlocked_since(simulator: DeviceSimulator, before: int) -> bool:
    return any(payload == "UNLOCK" for _, payload in simulator[DOOR].commands[before:])


async def test_disk_full_alerts_keeps_running_and_corrupts_nothing(
    agent_on_small_disk: tuple[Agent, DeviceSimulator], passes: PassFactory, small_disk: Path, tally: Tally
) -> None:
    agent, simulator = agent_on_small_disk
    library = agent.config.library_id
    before = await scan(simulator, passes.make()[0])
    await eventually(lambda: unlocked_since(simulator, before), limit=20)

    async with Observer(agent.mqtt_host, agent.mqtt_port) as observer:
        filler = fill(small_disk)
        tally.add("faults")
        before = await scan(simulator, passes.make()[0])
        alert = await observer.wait_event(library, "alert", limit=20)
        assert alert["alert"] == "store_full"
        health = agent.health()
        assert health["store"]["full"] is True and health["status"] == "degraded"
        assert agent.broker is not None and agent.broker.running
        filler.unlink()

        before = await scan(simulator, passes.make()[0])
        await eventually(lambda: unlocked_since(simulator, before), limit=20)
        assert await observer.wait_event(library, "checkin", limit=20)
    assert observer.payloads(event_topic(library, "alert"))  # the alert went out live
    assert agent.health()["store"]["full"] is False
    assert agent.store is not None
    assert len(agent.store.checkins()) == 2  # the scan made while full was neither recorded nor let in
    with sqlite3.connect(small_disk / "edge.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@contextlib.asynccontextmanager
async def mosquitto_rig(
    passes: PassFactory, tmp_path: Path, *, relock_seconds: float
) -> AsyncIterator[tuple[Agent, DeviceSimulator, MosquittoProcess]]:
    store = Store(tmp_path / "edge.sqlite3")
    devices = register_demo_devices(store)
    mosquitto = MosquittoProcess(store, tmp_path / "mosquitto")
    store.close()
    await mosquitto.wait_ready()
    url = f"mqtt://studyspot-agent:{AGENT_PASSWORD}@127.0.0.1:{mosquitto.port}"
    checkin = {"relock_seconds": relock_seconds}
    agent = Agent(make_config(passes, tmp_path, mqtt_url=url, checkin=checkin))
    await agent.start()
    simulator = DeviceSimulator(agent.mqtt_host, agent.mqtt_port, devices)
    await simulator.start()
    try:
        yield agent, simulator, mosquitto
    finally:
        await simulator.stop()
        await agent.stop()
        mosquitto.stop()


@pytest.fixture
async def agent_on_mosquitto(
    passes: PassFactory, tmp_path: Path
) -> AsyncIterator[tuple[Agent, DeviceSimulator, MosquittoProcess]]:
    async with mosquitto_rig(passes, tmp_path, relock_seconds=1) as rig:
        yield rig


def restart(mosquitto: MosquittoProcess) -> None:
    """Stop Mosquitto and start it again with the same configuration (so on the same port)."""
    mosquitto.stop()
    start_again(mosquitto)


def start_again(mosquitto: MosquittoProcess) -> None:
    args = [str(arg) for arg in mosquitto.process.args]  # type: ignore[union-attr]
    mosquitto.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def commands_since(simulator: DeviceSimulator, before: int) -> list[str]:
    return [payload for _, payload in simulator[DOOR].commands[before:] if payload in ("UNLOCK", "LOCK")]


async def test_broker_restart_agent_and_devices_reconnect_and_commands_arrive(
    agent_on_mosquitto: tuple[Agent, DeviceSimulator, MosquittoProcess], passes: PassFactory, tally: Tally
) -> None:
    agent, simulator, mosquitto = agent_on_mosquitto
    assert agent.link is not None and agent.store is not None
    before = await scan(simulator, passes.make()[0])
    await eventually(lambda: commands_since(simulator, before)[:2] == ["UNLOCK", "LOCK"], limit=20)
    connects = agent.link.connects

    restart(mosquitto)
    tally.add("faults")
    await mosquitto.wait_ready()
    await eventually(lambda: agent.link is not None and agent.link.connects > connects, limit=30)
    await eventually(lambda: all(d.connected.is_set() for d in simulator.devices.values()), limit=30)
    await eventually(lambda: agent.link is not None and agent.link.connected.is_set(), limit=30)

    # the agent re-subscribed and the devices did too: a scan after the restart unlocks, then relocks
    before = await scan(simulator, passes.make()[0])
    await eventually(lambda: commands_since(simulator, before)[:2] == ["UNLOCK", "LOCK"], limit=30)
    assert len(agent.store.checkins()) == 2
