"""Edge: QR scan → UNLOCK on the lock's command topic through the real broker: p50/p99 at 1, 10 and
100 scans/s, one scan at a time, and the scans/s the agent turns into UNLOCKs when 250/s are offered.

A simulated door publishes each scan as its ESPHome text_sensor would; the clock stops when the
same simulated door receives UNLOCK. Every scan carries a fresh pass (anti-passback is on). The
door talks MQTT over TCP to either broker; the agent is attached to its embedded amqtt in-process
(`edge.local_link`) and is a TCP client of Mosquitto. The check-in's fsync (synchronous=FULL,
before the door command) is most of the time on a quiet machine, so the disk shows in these figures.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from bench.harness import BenchResult, summarize
from edge.agent import Agent
from edge.config import EdgeConfig
from edge.mosquitto import mosquitto_conf, write_mosquitto_files
from edge.simulator import DeviceSimulator, register_demo_devices
from edge.store import Store
from shared.passes import (
    PassClaims,
    PassScope,
    generate_signing_key,
    issue_pass,
    key_id_for,
    new_pass_id,
    public_key_to_text,
    short_id,
)

DOOR = "front-door"
AGENT_PASSWORD = "bench-agent-password"
T = TypeVar("T")


def signed_passes(library: uuid.UUID, count: int) -> tuple[dict[str, str], list[str]]:
    key = generate_signing_key()
    now = datetime.now(UTC).replace(microsecond=0)
    texts = []
    for _ in range(count):
        claims = PassClaims(
            pass_id=new_pass_id(),
            library=short_id(library),
            scope=PassScope.SEAT,
            target=short_id(uuid.uuid4()),
            holder=short_id(uuid.uuid4()),
            valid_from=now - timedelta(hours=1),
            valid_until=now + timedelta(hours=2),
            issued_at=now - timedelta(hours=1),
            key_id=key_id_for(key.public_key()),
        )
        texts.append(issue_pass(claims, key))
    return {key_id_for(key.public_key()): public_key_to_text(key.public_key())}, texts


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_mosquitto(
    store: Store, directory: Path, agent_password: str = AGENT_PASSWORD
) -> tuple[subprocess.Popen[bytes], int]:
    """A real Mosquitto on a free port with passwd/ACL files generated from the device registry."""
    files = write_mosquitto_files(
        store, directory, agent_username="studyspot-agent", agent_password=agent_password
    )
    port = free_port()
    conf = directory / "mosquitto.conf"
    user = "root" if os.geteuid() == 0 else None
    conf.write_text(mosquitto_conf(files, host="127.0.0.1", port=port, user=user), encoding="utf-8")
    process = subprocess.Popen(["/usr/sbin/mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
    for _ in range(500):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process, port
        time.sleep(0.01)
    raise RuntimeError("mosquitto did not start")


async def _with_agent(broker: str, count: int, drive: Callable[[Any, list[str]], Awaitable[T]]) -> T:
    """`drive(door, texts)` against an agent on `broker` whose door accepts each of `texts`."""
    library = uuid.uuid4()
    keys, texts = signed_passes(library, count)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "edge.sqlite3")
        devices = register_demo_devices(store)
        settings: dict[str, object] = {
            "library_id": str(library),
            "data_dir": tmp,
            "pass_keys": keys,
            "agent_password": AGENT_PASSWORD,
            "broker": {"host": "127.0.0.1", "port": 0},
            "kiosk": {"enabled": False},
            "checkin": {"relock_seconds": 60},
        }
        mosquitto = None
        if broker == "mosquitto":
            mosquitto, port = start_mosquitto(store, Path(tmp) / "mosquitto")
            settings["mqtt_url"] = f"mqtt://studyspot-agent:{AGENT_PASSWORD}@127.0.0.1:{port}"
        store.close()
        agent = Agent(EdgeConfig.model_validate(settings))
        await agent.start()
        simulator = DeviceSimulator(agent.mqtt_host, agent.mqtt_port, devices)
        await simulator.start()
        try:
            return await drive(simulator[DOOR], texts)
        finally:
            await simulator.stop()
            await agent.stop()
            if mosquitto is not None:
                mosquitto.terminate()
                mosquitto.wait()


# under the broker's per-client flood limit (200/s averaged over 10 s, bursts to 2,000 pass whole)
OFFERED_RATE = 250
SUSTAINED_SCANS = 500


async def _drive(door: Any, texts: list[str], rate: float) -> list[float]:
    samples: list[float] = []
    for text in texts:
        before = len(door.commands)
        started = time.perf_counter()
        await door.scan(text)
        async with asyncio.timeout(5):
            while not any(payload == "UNLOCK" for _, payload in door.commands[before:]):  # noqa: ASYNC110
                await asyncio.sleep(0.0005)
        samples.append(time.perf_counter() - started)
        pause = 1 / rate - (time.perf_counter() - started)
        if pause > 0:
            await asyncio.sleep(pause)
    return samples


def _unlocks(door: Any) -> int:
    return sum(payload == "UNLOCK" for _, payload in door.commands)


async def _sustain(door: Any, texts: list[str], rate: float) -> float:
    """Scans sent at `rate` without waiting for each UNLOCK; the scans/s the agent turned into UNLOCKs."""
    before = _unlocks(door)
    started = time.perf_counter()
    for index, text in enumerate(texts):
        await door.scan(text)
        pause = started + (index + 1) / rate - time.perf_counter()
        if pause > 0:
            await asyncio.sleep(pause)
    async with asyncio.timeout(60):
        while _unlocks(door) - before < len(texts):  # noqa: ASYNC110
            await asyncio.sleep(0.001)
    return len(texts) / (time.perf_counter() - started)


def run() -> list[BenchResult]:
    results = []
    for broker in ("amqtt", "mosquitto"):
        for rate, count in ((1, 15), (10, 100), (100, 300)):
            samples = asyncio.run(_with_agent(broker, count, partial(_drive, rate=rate)))
            median, p99 = summarize(samples)
            results.append(
                BenchResult(
                    f"edge scan→UNLOCK via {broker} @ {rate}/s",
                    median * 1000,
                    p99 * 1000,
                    "ms",
                    "p50 ≤ 5, p99 ≤ 20",
                )
            )
        sustained = asyncio.run(_with_agent(broker, SUSTAINED_SCANS, partial(_sustain, rate=OFFERED_RATE)))
        figure = f"edge scans/s turned into UNLOCK via {broker}, {OFFERED_RATE}/s offered"
        results.append(BenchResult(figure, sustained, sustained, "scans/s", "≥ 200 scans/s"))
    return results


if __name__ == "__main__":
    for result in run():
        print(result)
