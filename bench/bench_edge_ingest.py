"""Edge: sustained telemetry ingest on amqtt vs Mosquitto, and the agent's RSS after an hour of load
and after waves of device reconnects.

The agent runs as its own process (`studyspot edge run`) so its RSS is its own. Simulated sensors
publish readings (QoS 1) as fast as the broker acknowledges them; the agent's rate is the number of
readings its store has counted divided by the time until the last one was counted. With amqtt the
broker shares the agent's process (and CPU); the agent itself is attached to it in-process, while
with Mosquitto it is a TCP client. The agent's CPU per 1,000 readings is the figure load moves least.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import psutil

from bench.bench_edge import free_port, signed_passes, start_mosquitto
from bench.harness import BenchResult, cpu_seconds
from edge.devices import enroll_device
from edge.simulator import SimDevice
from edge.store import Store
from shared.topics import DeviceKind, device_topics

AGENT_PASSWORD = "bench-ingest-password"
SENSOR_COUNT = 10
INGEST_PER_SENSOR = 300
HOUR_READINGS_PER_SENSOR = 3_600  # 60 simulated minutes at 1 reading/s
HOUR_SCANS = 500
RECONNECT_WAVES = 3
ROLES = ("temperature", "humidity", "co2", "noise")


@dataclass
class Rig:
    directory: Path
    library: uuid.UUID
    sensors: list[SimDevice]
    door: SimDevice
    port: int
    agent: subprocess.Popen[bytes]
    mosquitto: subprocess.Popen[bytes] | None

    @property
    def store_path(self) -> Path:
        return self.directory / "data" / "edge.sqlite3"

    def stop(self) -> None:
        for process in (self.agent, self.mosquitto):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=15)


def _enroll(store: Store, device_id: str, kind: DeviceKind) -> SimDevice:
    enrolled = enroll_device(store, device_id=device_id, kind=kind, topic_prefix=device_id)
    record = enrolled.record
    return SimDevice(record.id, kind, record.topic_prefix, record.username, enrolled.password)


def _write_config(directory: Path, library: uuid.UUID, keys: dict[str, str], broker: str) -> str:
    lines = [
        f'library_id = "{library}"',
        f'data_dir = "{directory / "data"}"',
        f'agent_password = "{AGENT_PASSWORD}"',
        'log_level = "WARNING"',
    ]
    if broker:
        lines.append(f'mqtt_url = "{broker}"')
    lines += ["[pass_keys]", *[f'"{kid}" = "{text}"' for kid, text in keys.items()]]
    return "\n".join(lines) + "\n"


def _start_rig(directory: Path, broker: str, keys: dict[str, str], library: uuid.UUID) -> Rig:
    store = Store(directory / "data" / "edge.sqlite3")
    sensors = [_enroll(store, f"bench-env-{n}", DeviceKind.ENV) for n in range(SENSOR_COUNT)]
    door = _enroll(store, "bench-door", DeviceKind.DOOR)
    mosquitto, mqtt_url, port = None, "", free_port()
    if broker == "mosquitto":
        mosquitto, port = start_mosquitto(store, directory / "mosquitto", AGENT_PASSWORD)
        mqtt_url = f"mqtt://studyspot-agent:{AGENT_PASSWORD}@127.0.0.1:{port}"
    store.close()
    config = directory / "edge.toml"
    text = _write_config(directory, library, keys, mqtt_url)
    config.write_text(
        text + f'[broker]\nhost = "127.0.0.1"\nport = {port}\n'
        "client_messages_per_second = 0\n"  # the bench floods on purpose: no per-client cut-off
        "[kiosk]\nenabled = false\n"
        "[checkin]\nrelock_seconds = 60\n",
        encoding="utf-8",
    )
    agent = subprocess.Popen(
        [sys.executable, "-m", "studyspot", "edge", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return Rig(directory, library, sensors, door, port, agent, mosquitto)


def _client(rig: Rig, device: SimDevice) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1", rig.port, username=device.username, password=device.password, identifier=device.id
    )


async def _connect(rig: Rig, device: SimDevice, limit: float = 90) -> aiomqtt.Client:
    """Retry until the agent listens: on a loaded 2-core machine its start took more than 15 s."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if rig.agent.poll() is not None:
            raise RuntimeError(f"the agent exited with {rig.agent.returncode}")
        client = _client(rig, device)
        try:
            await client.__aenter__()
            return client
        except aiomqtt.MqttError:
            await asyncio.sleep(0.05)
    raise RuntimeError("the broker did not accept the bench device")


def _query(rig: Rig, sql: str) -> int:
    with sqlite3.connect(f"file:{rig.store_path}?mode=ro", uri=True) as db:
        return int(db.execute(sql).fetchone()[0] or 0)


def _readings_counted(rig: Rig) -> int:
    return _query(rig, "SELECT sum(count) FROM telemetry WHERE device_id LIKE 'bench-env-%'")


async def _wait_counted(rig: Rig, count_sql: str, target: int, limit: float = 120) -> None:
    async with asyncio.timeout(limit):
        while _query(rig, count_sql) < target:  # noqa: ASYNC110 (rows written by another process)
            await asyncio.sleep(0.02)


async def _publish_readings(client: aiomqtt.Client, sensor: SimDevice, count: int) -> None:
    topics = device_topics(DeviceKind.ENV, sensor.topic_prefix)
    for n in range(count):
        role = ROLES[n % len(ROLES)]
        await client.publish(topics[role], f"{20 + n % 10}.5", qos=1)


async def _wait_agent_listening(rig: Rig, client: aiomqtt.Client, sensor: SimDevice) -> None:
    """With an external broker the sensors connect before the agent has subscribed, and a broker
    drops what nobody is subscribed to: probe until the agent counts a reading."""
    topic = device_topics(DeviceKind.ENV, sensor.topic_prefix)["temperature"]
    async with asyncio.timeout(120):
        while _readings_counted(rig) == 0:
            await client.publish(topic, "21.5", qos=1)
            await asyncio.sleep(0.2)


async def _ingest(rig: Rig, clients: list[aiomqtt.Client], per_sensor: int) -> float:
    """Publish `per_sensor` readings from every sensor; return readings/s counted by the agent."""
    before = _readings_counted(rig)
    started = time.perf_counter()
    await asyncio.gather(
        *(_publish_readings(c, s, per_sensor) for c, s in zip(clients, rig.sensors, strict=True))
    )
    total = before + per_sensor * len(clients)
    sql = "SELECT sum(count) FROM telemetry WHERE device_id LIKE 'bench-env-%'"
    await _wait_counted(rig, sql, total)
    return per_sensor * len(clients) / (time.perf_counter() - started)


async def _scans(rig: Rig, door: aiomqtt.Client, texts: list[str]) -> None:
    scan_topic = device_topics(DeviceKind.DOOR, rig.door.topic_prefix)["scan"]
    for text in texts:
        await door.publish(scan_topic, text, qos=1)
    sql = "SELECT count(*) FROM checkins WHERE door_id = 'bench-door'"
    await _wait_counted(rig, sql, len(texts))


async def _reconnect_waves(rig: Rig) -> None:
    """Every device reconnects at once (the broker restarted, the Wi-Fi came back), a few times:
    each connect is a password check, argon2 in a worker thread."""
    devices = [*rig.sensors, rig.door]
    for _ in range(RECONNECT_WAVES):
        clients = await asyncio.gather(*(_connect(rig, device) for device in devices))
        for client in clients:
            await client.__aexit__(None, None, None)


async def _session(broker: str, with_hour: bool) -> dict[str, float]:
    library = uuid.uuid4()
    keys, texts = signed_passes(library, HOUR_SCANS if with_hour else 0)
    with tempfile.TemporaryDirectory() as tmp:
        rig = _start_rig(Path(tmp), broker, keys, library)
        clients: list[aiomqtt.Client] = []
        try:
            clients = [await _connect(rig, s) for s in rig.sensors]
            door = await _connect(rig, rig.door)
            clients_and_door = [*clients, door]
            await _wait_agent_listening(rig, clients[0], rig.sensors[0])
            await _ingest(rig, clients, 50)  # warm-up: subscriptions, caches, first pages
            cpu_before = cpu_seconds(rig.agent.pid)
            figures = {"rate": await _ingest(rig, clients, INGEST_PER_SENSOR)}
            # load-independent: the agent's own CPU (user + system) per 1,000 readings it stored
            figures["cpu_ms"] = (
                (cpu_seconds(rig.agent.pid) - cpu_before) * 1e6 / (SENSOR_COUNT * INGEST_PER_SENSOR)
            )
            if with_hour:
                agent = psutil.Process(rig.agent.pid)
                figures["rss_start"] = agent.memory_info().rss / 2**20
                await asyncio.gather(
                    _ingest(rig, clients, HOUR_READINGS_PER_SENSOR), _scans(rig, door, texts)
                )
                figures["rss_end"] = agent.memory_info().rss / 2**20
            for client in clients_and_door:
                await client.__aexit__(None, None, None)
            if with_hour:
                await _reconnect_waves(rig)
                figures["rss_reconnects"] = agent.memory_info().rss / 2**20
            return figures
        finally:
            rig.stop()


def run() -> list[BenchResult]:
    amqtt = asyncio.run(_session("amqtt", with_hour=True))
    mosquitto = asyncio.run(_session("mosquitto", with_hour=False))
    ratio = amqtt["rate"] / mosquitto["rate"]
    growth = amqtt["rss_end"] - amqtt["rss_start"]
    load = f"{SENSOR_COUNT} sensors x {INGEST_PER_SENSOR}"
    return [
        BenchResult(f"telemetry ingest via amqtt ({load})", amqtt["rate"], amqtt["rate"], "msg/s"),
        BenchResult(
            f"telemetry ingest via mosquitto ({load})", mosquitto["rate"], mosquitto["rate"], "msg/s"
        ),
        BenchResult("ingest ratio amqtt/mosquitto", ratio, ratio, "x", "≥ 0.5"),
        BenchResult(
            "agent CPU per 1,000 readings: amqtt (median column), mosquitto (p99 column)",
            amqtt["cpu_ms"],
            mosquitto["cpu_ms"],
            "ms",
        ),
        BenchResult("agent RSS at start (amqtt)", amqtt["rss_start"], amqtt["rss_start"], "MB"),
        BenchResult(
            "agent RSS after hour-equivalent (36k readings + 500 scans)",
            amqtt["rss_end"],
            amqtt["rss_end"],
            "MB",
            "≤ 80",
        ),
        BenchResult("agent RSS growth over hour-equivalent", growth, growth, "MB"),
        BenchResult(
            f"agent RSS after {RECONNECT_WAVES} waves of all {SENSOR_COUNT + 1} devices reconnecting",
            amqtt["rss_reconnects"],
            amqtt["rss_reconnects"],
            "MB",
            "≤ 80",
        ),
    ]


if __name__ == "__main__":
    for result in run():
        print(result)
