"""Simulated ESPHome devices speaking real MQTT with their own credentials.

Each device behaves as its ESPHome firmware would: retained `online` on `<prefix>/status` with an
`offline` will, retained states, and commands obeyed on `<prefix>/<component>/<object_id>/command`.
Used by `make demo`, by tests and by the benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt

from edge.devices import enroll_device
from edge.mqtt import NODELAY
from edge.store import Store
from shared.topics import (
    LOCKED,
    OFF,
    OFFLINE,
    ON,
    ONLINE,
    UNLOCKED,
    Component,
    DeviceKind,
    command_topic,
    device_topics,
    entity,
    parse_lock_command,
    state_topic,
    status_topic,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimDevice:
    id: str
    kind: DeviceKind
    topic_prefix: str
    username: str
    password: str
    door_id: str | None = None
    direction: str = "in"

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", DeviceKind(self.kind))  # accept the plain string from JSON

    def topics(self) -> dict[str, str]:
        return device_topics(self.kind, self.topic_prefix)

    def demo_entry(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "topic_prefix": self.topic_prefix,
            "username": self.username,
            "password": self.password,
            "topics": self.topics(),
        }


@dataclass
class SimulatedDevice:
    """One device's MQTT session and state. `publish_state` feeds values as the device would."""

    spec: SimDevice
    host: str
    port: int
    states: dict[str, str] = field(default_factory=dict)
    commands: list[tuple[str, str]] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    respond_to_lock: bool = True
    _client: aiomqtt.Client | None = None
    _power_w: float = 1800.0
    _energy_kwh: float = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        will = aiomqtt.Will(status_topic(self.spec.topic_prefix), OFFLINE, qos=1, retain=True)
        while not stop.is_set():
            try:
                async with aiomqtt.Client(
                    self.host,
                    self.port,
                    username=self.spec.username,
                    password=self.spec.password,
                    identifier=f"sim-{self.spec.id}",
                    will=will,
                    socket_options=NODELAY,
                ) as client:
                    self._client = client
                    await self._online(client)
                    await self._serve(client, stop)
                    await client.publish(status_topic(self.spec.topic_prefix), OFFLINE, qos=1, retain=True)
            except aiomqtt.MqttError as exc:
                log.info("simulated %s lost the broker: %s", self.spec.id, exc)
            finally:
                self._client = None
                self.connected.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    await stop.wait()

    async def _online(self, client: aiomqtt.Client) -> None:
        await client.subscribe(f"{self.spec.topic_prefix}/+/+/command", qos=1)
        await client.publish(status_topic(self.spec.topic_prefix), ONLINE, qos=1, retain=True)
        if self.spec.kind == DeviceKind.DOOR:
            await self.publish_state("lock", self.states.get("lock", LOCKED))
            await self.publish_state("contact", self.states.get("contact", OFF))
        self.connected.set()

    async def _serve(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        ticker = asyncio.create_task(self._readings(stop))
        stopper = asyncio.create_task(stop.wait())
        try:
            messages = aiter(client.messages)
            while not stop.is_set():
                receive = asyncio.ensure_future(anext(messages))
                done, _ = await asyncio.wait({receive, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if receive not in done:
                    receive.cancel()
                    break
                message = receive.result()
                payload = message.payload if isinstance(message.payload, bytes) else b""
                await self._on_command(str(message.topic), payload.decode("utf-8", "replace"))
        finally:
            ticker.cancel()
            stopper.cancel()
            await asyncio.gather(ticker, stopper, return_exceptions=True)

    async def _on_command(self, topic: str, payload: str) -> None:
        self.commands.append((topic, payload))
        kind = self.spec.kind
        for item in (e for e in _profile(kind) if e.component in ("lock", "switch")):
            if topic != command_topic(self.spec.topic_prefix, item.component, item.object_id):
                continue
            if item.role == "lock":
                if not self.respond_to_lock:
                    return
                try:
                    command = parse_lock_command(payload)
                except ValueError:
                    return
                await self.publish_state("lock", LOCKED if command == "LOCK" else UNLOCKED)
            elif payload.upper() in (ON, OFF):
                await self.publish_state(item.role, payload.upper())
                if item.role == "relay":
                    self._power_w = 1800.0 if payload.upper() == ON else 150.0

    async def publish_battery(self, percent: float) -> None:
        """An ESPHome battery sensor ("Battery Level"), which any device kind may carry."""
        client = self._client
        if client is None:
            raise RuntimeError(f"simulated {self.spec.id} is not connected")
        topic = state_topic(self.spec.topic_prefix, Component.SENSOR, "battery_level")
        await client.publish(topic, f"{percent:.0f}", qos=1, retain=True)

    async def publish_state(self, role: str, value: str, *, retain: bool = True) -> None:
        """Publish an entity's state as ESPHome does (retained)."""
        item = entity(self.spec.kind, role)
        self.states[role] = value
        client = self._client
        if client is None:
            raise RuntimeError(f"simulated {self.spec.id} is not connected")
        await client.publish(
            state_topic(self.spec.topic_prefix, item.component, item.object_id), value, qos=1, retain=retain
        )

    async def scan(self, text: str) -> None:
        await self.publish_state("scan", text)

    async def _readings(self, stop: asyncio.Event) -> None:
        if self.spec.kind not in (DeviceKind.ENV, DeviceKind.ENERGY):
            return
        while not stop.is_set():
            for role, value in self._sample().items():
                await self.publish_state(role, value)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await stop.wait()

    def _sample(self) -> dict[str, str]:
        if self.spec.kind == DeviceKind.ENV:
            return {
                "temperature": f"{random.uniform(24, 28):.1f}",
                "humidity": f"{random.uniform(40, 60):.1f}",
                "co2": f"{random.uniform(500, 900):.0f}",
                "noise": f"{random.uniform(30, 45):.1f}",
            }
        voltage = random.uniform(225, 235)
        power = self._power_w * random.uniform(0.9, 1.1)
        self._energy_kwh += power * 10 / 3600 / 1000
        return {
            "voltage": f"{voltage:.1f}",
            "current": f"{power / voltage:.2f}",
            "power": f"{power:.0f}",
            "energy": f"{self._energy_kwh:.4f}",
        }


def _profile(kind: DeviceKind) -> tuple[Any, ...]:
    from shared.topics import DEVICE_PROFILES

    return DEVICE_PROFILES[kind]


class DeviceSimulator:
    """Runs a set of simulated devices until stopped; look devices up by id."""

    def __init__(self, host: str, port: int, devices: list[SimDevice]) -> None:
        self.devices = {spec.id: SimulatedDevice(spec, host, port) for spec in devices}
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def __getitem__(self, device_id: str) -> SimulatedDevice:
        return self.devices[device_id]

    async def start(self, wait: float = 10.0) -> None:
        self._stop.clear()
        self._tasks = [asyncio.create_task(device.run(self._stop)) for device in self.devices.values()]
        async with asyncio.timeout(wait):
            for device in self.devices.values():
                await device.connected.wait()

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()


async def run_simulated_devices(
    host: str, port: int, devices: list[SimDevice], stop_event: asyncio.Event
) -> None:
    """Run the devices until `stop_event` is set (what `make demo` calls)."""
    simulator = DeviceSimulator(host, port, devices)
    await simulator.start()
    try:
        await stop_event.wait()
    finally:
        await simulator.stop()


DEMO_LAYOUT: tuple[tuple[str, DeviceKind, str | None, str], ...] = (
    ("front-door", DeviceKind.DOOR, None, "in"),
    ("exit-scanner", DeviceKind.SCANNER, "front-door", "out"),
    ("hall-env", DeviceKind.ENV, None, "in"),
    ("main-meter", DeviceKind.ENERGY, None, "in"),
    ("hall-ac", DeviceKind.RELAY, None, "in"),
    ("hall-lights", DeviceKind.RELAY, None, "in"),
    ("hall-vent", DeviceKind.RELAY, None, "in"),
)


def register_demo_devices(store: Store, prefix_root: str = "studyspot-demo") -> list[SimDevice]:
    """Enrol the demo's devices with fresh credentials (re-running rotates them)."""
    devices = []
    for device_id, kind, door_id, direction in DEMO_LAYOUT:
        enrolled = enroll_device(
            store,
            device_id=device_id,
            kind=kind,
            topic_prefix=f"{prefix_root}/{device_id}",
            door_id=door_id,
            direction=direction,
        )
        record = enrolled.record
        devices.append(
            SimDevice(
                id=record.id,
                kind=kind,
                topic_prefix=record.topic_prefix,
                username=record.username,
                password=enrolled.password,
                door_id=door_id,
                direction=direction,
            )
        )
    return devices


def prepare_demo_devices(store_path: Path) -> list[SimDevice]:
    """Open the agent's store file, enrol the demo devices, close it. Call before `Agent.start()`."""
    store = Store(store_path)
    try:
        return register_demo_devices(store)
    finally:
        store.close()
