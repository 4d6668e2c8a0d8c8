"""Fixtures for the edge agent: pass keys, a store, and a running agent on amqtt or Mosquitto."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.agent import Agent
from edge.broker import BrokerListen, CredentialAuthority, EmbeddedBroker
from edge.config import EdgeConfig
from edge.devices import EnrolledDevice, enroll_device
from edge.mosquitto import mosquitto_conf, write_mosquitto_files
from edge.simulator import DeviceSimulator, SimDevice, register_demo_devices
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
from shared.topics import event_topic

MOSQUITTO = "/usr/sbin/mosquitto"
AGENT = "studyspot-agent"
AGENT_PASSWORD = "agent-secret-for-tests"


async def eventually(condition: Callable[[], object], limit: float = 10.0) -> None:
    """Wait (bounded) until `condition()` holds: for state that has no event to wait on."""
    async with asyncio.timeout(limit):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PassFactory:
    library_id: uuid.UUID
    key: Ed25519PrivateKey

    @property
    def key_id(self) -> str:
        return key_id_for(self.key.public_key())

    @property
    def public_text(self) -> str:
        return public_key_to_text(self.key.public_key())

    def make(
        self,
        *,
        valid_from: datetime | None = None,
        valid_until: datetime | None = None,
        library: uuid.UUID | None = None,
        key: Ed25519PrivateKey | None = None,
        scope: PassScope = PassScope.SEAT,
        target: str | None = None,
        pass_id: str | None = None,
    ) -> tuple[str, PassClaims]:
        now = datetime.now(UTC).replace(microsecond=0)
        signer = key or self.key
        claims = PassClaims(
            pass_id=pass_id or new_pass_id(),
            library=short_id(library or self.library_id),
            scope=scope,
            target=target or short_id(uuid.uuid4()),
            holder=short_id(uuid.uuid4()),
            valid_from=valid_from or now - timedelta(hours=1),
            valid_until=valid_until or now + timedelta(hours=3),
            issued_at=now - timedelta(hours=2),
            key_id=key_id_for(signer.public_key()),
        )
        return issue_pass(claims, signer), claims


@pytest.fixture(scope="session")
def passes() -> PassFactory:
    return PassFactory(library_id=uuid.uuid4(), key=generate_signing_key())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "edge.sqlite3")
    yield opened
    opened.close()


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[tuple[EmbeddedBroker, dict[str, EnrolledDevice]]]:
    """The embedded amqtt broker alone, with two enrolled doors (prefixes `lib/door-a`, `lib/door-b`)."""
    store = Store(tmp_path / "edge.sqlite3")
    devices = {
        "door-a": enroll_device(store, device_id="door-a", kind="door", topic_prefix="lib/door-a"),
        "door-b": enroll_device(store, device_id="door-b", kind="door", topic_prefix="lib/door-b"),
    }
    embedded = EmbeddedBroker(BrokerListen("127.0.0.1", 0), CredentialAuthority(store, AGENT, AGENT_PASSWORD))
    await embedded.start()
    yield embedded, devices
    await embedded.stop()
    store.close()


def make_config(passes: PassFactory, data_dir: Path, **overrides: Any) -> EdgeConfig:
    base: dict[str, Any] = {
        "library_id": str(passes.library_id),
        "data_dir": str(data_dir),
        "agent_password": AGENT_PASSWORD,
        "pass_keys": {passes.key_id: passes.public_text},
        "broker": {"host": "127.0.0.1", "port": 0},
        "kiosk": {"host": "127.0.0.1", "port": 0},
        "checkin": {"relock_seconds": 30, "lock_confirm_seconds": 2},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = base[key] | value
        else:
            base[key] = value
    return EdgeConfig.model_validate(base)


class MosquittoProcess:
    def __init__(self, store: Store, directory: Path) -> None:
        files = write_mosquitto_files(
            store, directory, agent_username="studyspot-agent", agent_password=AGENT_PASSWORD
        )
        self.port = free_port()
        conf = directory / "mosquitto.conf"
        conf.write_text(
            mosquitto_conf(
                files, host="127.0.0.1", port=self.port, user="root" if os.geteuid() == 0 else None
            ),
            encoding="utf-8",
        )
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    async def wait_ready(self) -> None:
        async with asyncio.timeout(10):
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                    writer.close()
                    return
                except OSError:
                    if self.process.poll() is not None:
                        error = self.process.stderr.read().decode() if self.process.stderr else ""
                        raise RuntimeError(error) from None
                    await asyncio.sleep(0.02)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@dataclass
class EdgeRig:
    agent: Agent
    devices: dict[str, SimDevice]
    simulator: DeviceSimulator
    broker_kind: str

    @property
    def host(self) -> str:
        return self.agent.mqtt_host

    @property
    def port(self) -> int:
        return self.agent.mqtt_port


RigFactory = Callable[..., Any]


@pytest.fixture(params=["amqtt", "mosquitto"])
async def rig_factory(
    request: pytest.FixtureRequest, passes: PassFactory, tmp_path: Path
) -> AsyncIterator[Any]:
    """Build an agent + simulated demo devices on the parametrised broker; config overrides allowed."""
    started: list[tuple[Agent, DeviceSimulator, MosquittoProcess | None]] = []

    async def build(**overrides: Any) -> EdgeRig:
        data_dir = tmp_path / f"edge{len(started)}"
        store = Store(data_dir / "edge.sqlite3")
        devices = register_demo_devices(store)
        mosquitto = None
        if request.param == "mosquitto":
            mosquitto = MosquittoProcess(store, data_dir / "mosquitto")
            overrides["mqtt_url"] = f"mqtt://studyspot-agent:{AGENT_PASSWORD}@127.0.0.1:{mosquitto.port}"
        store.close()
        if mosquitto is not None:
            await mosquitto.wait_ready()
        agent = Agent(make_config(passes, data_dir, **overrides))
        await agent.start()
        simulator = DeviceSimulator(agent.mqtt_host, agent.mqtt_port, devices)
        await simulator.start()
        started.append((agent, simulator, mosquitto))
        return EdgeRig(agent, {d.id: d for d in devices}, simulator, request.param)

    yield build
    for agent, simulator, mosquitto in reversed(started):
        await simulator.stop()
        await agent.stop()
        if mosquitto is not None:
            mosquitto.stop()


class Observer:
    """An MQTT client (with the agent's credentials) recording every message it sees."""

    def __init__(self, host: str, port: int) -> None:
        self.client = aiomqtt.Client(
            host,
            port,
            username="studyspot-agent",
            password=AGENT_PASSWORD,
            identifier=f"obs-{uuid.uuid4().hex[:6]}",
        )
        self.seen: list[tuple[str, str]] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Observer:
        await self.client.__aenter__()
        await self.client.subscribe("#", qos=1)
        self._task = asyncio.create_task(self._pump())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.client.__aexit__(None, None, None)

    async def _pump(self) -> None:
        async for message in self.client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            self.seen.append((str(message.topic), payload.decode("utf-8", "replace")))
            self._changed.set()

    async def wait_for(self, topic: str, payload: str | None = None, limit: float = 10.0) -> str:
        """Wait until a message on `topic` (and with `payload`, if given) has been seen; return it."""
        async with asyncio.timeout(limit):
            while True:
                for seen_topic, seen_payload in self.seen:
                    if seen_topic == topic and (payload is None or seen_payload == payload):
                        return seen_payload
                self._changed.clear()
                await self._changed.wait()

    def payloads(self, topic: str) -> list[str]:
        return [payload for seen_topic, payload in self.seen if seen_topic == topic]

    def events(self, library_id: str, kind: str) -> list[dict[str, Any]]:
        return [json.loads(p) for p in self.payloads(event_topic(library_id, kind))]

    async def wait_event(self, library_id: str, kind: str, limit: float = 10.0) -> dict[str, Any]:
        return json.loads(await self.wait_for(event_topic(library_id, kind), limit=limit))

    async def wait_count(self, topic: str, count: int, limit: float = 10.0) -> list[str]:
        async with asyncio.timeout(limit):
            while len(self.payloads(topic)) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.payloads(topic)
