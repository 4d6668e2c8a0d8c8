"""A misbehaving device floods the embedded amqtt broker: it is cut off by the per-client rate limit
(disconnected, alerted on, refused while cooling down) and the door keeps admitting passes meanwhile.

Mosquitto has no per-client publish rate limit (only `max_inflight_messages`, `max_queued_messages`
and `message_size_limit`), so with `mqtt_url` pointing at Mosquitto this protection is absent.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest
from aiomqtt.exceptions import MqttConnectError

from edge.agent import Agent
from edge.devices import EnrolledDevice, enroll_device
from edge.simulator import DeviceSimulator, register_demo_devices
from edge.store import Store
from shared.topics import DeviceKind
from tests.edge.conftest import PassFactory, eventually, make_config
from tests.reliability.report import Tally

DOOR = "front-door"
ROGUE = "rogue-env"
LIMIT = 20  # messages/s per client
FLOOD_MAX = 20_000


@pytest.fixture
async def flood_rig(
    passes: PassFactory, tmp_path: Path
) -> AsyncIterator[tuple[Agent, DeviceSimulator, EnrolledDevice]]:
    store = Store(tmp_path / "edge.sqlite3")
    devices = register_demo_devices(store)
    rogue = enroll_device(store, device_id=ROGUE, kind=DeviceKind.ENV, topic_prefix=f"studyspot-demo/{ROGUE}")
    store.close()
    broker = {"client_messages_per_second": LIMIT, "flood_cooldown_seconds": 600}
    agent = Agent(make_config(passes, tmp_path, broker=broker))
    await agent.start()
    simulator = DeviceSimulator(agent.mqtt_host, agent.mqtt_port, devices)
    await simulator.start()
    yield agent, simulator, rogue
    await simulator.stop()
    await agent.stop()


def rogue_client(port: int, rogue: EnrolledDevice) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1", port, username=rogue.record.username, password=rogue.password,
        identifier=f"rogue-{uuid.uuid4().hex[:6]}", timeout=5,
    )  # fmt: skip


async def flood(port: int, rogue: EnrolledDevice) -> int:
    """Publish as fast as possible until the broker hangs up; returns how many were sent."""
    topic = f"{rogue.record.topic_prefix}/sensor/co2/state"
    sent = 0
    try:
        async with rogue_client(port, rogue) as client:
            while sent < FLOOD_MAX:
                await client.publish(topic, str(400 + sent % 50), qos=1)
                sent += 1
    except aiomqtt.MqttError:
        pass
    return sent


async def scan_until_unlocked(simulator: DeviceSimulator, text: str) -> None:
    door = simulator[DOOR]
    before = len(door.commands)
    await door.scan(text)
    await eventually(lambda: any(p == "UNLOCK" for _, p in door.commands[before:]), limit=20)


async def test_flooding_device_is_cut_off_and_the_door_still_works(
    flood_rig: tuple[Agent, DeviceSimulator, EnrolledDevice], passes: PassFactory, tally: Tally
) -> None:
    agent, simulator, rogue = flood_rig
    flooding = asyncio.create_task(flood(agent.mqtt_port, rogue))
    for _ in range(3):
        await scan_until_unlocked(simulator, passes.make()[0])
    sent = await flooding
    tally.add("attacks", sent)

    assert sent < FLOOD_MAX  # hung up on, long before the flood was over
    with pytest.raises(MqttConnectError):  # and refused while cooling down
        async with rogue_client(agent.mqtt_port, rogue):
            pass
    assert agent.store is not None
    alerts = [alert for alert in agent.store.open_alerts() if alert["kind"] == "mqtt_flood"]
    assert [alert["device_id"] for alert in alerts] == [ROGUE]
    await scan_until_unlocked(simulator, passes.make()[0])  # the well-behaved devices were never cut off
    assert len(agent.store.checkins()) == 4
