"""The agent's in-process link to the embedded broker: devices see what a TCP agent made them see."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import aiomqtt
import pytest

from edge.broker import EmbeddedBroker
from edge.devices import EnrolledDevice
from edge.local_link import LocalLink
from edge.mqtt import IncomingMessage, MessageHandler, NotConnected
from tests.edge.conftest import AGENT, AGENT_PASSWORD, eventually

Broker = tuple[EmbeddedBroker, dict[str, EnrolledDevice]]
DOOR_A_STATE = "lib/door-a/lock/door_lock/state"
DOOR_A_COMMAND = "lib/door-a/lock/door_lock/command"
DOOR_B_COMMAND = "lib/door-b/lock/door_lock/command"
EVENT = "studyspot/lib/events/checkin"


def tcp_client(embedded: EmbeddedBroker, username: str, password: str, name: str) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1", embedded.bound_port(), username=username, password=password, identifier=name, timeout=5
    )


def device_client(embedded: EmbeddedBroker, device: EnrolledDevice) -> aiomqtt.Client:
    return tcp_client(embedded, device.record.username, device.password, device.record.id)


async def received(client: aiomqtt.Client, count: int) -> list[tuple[str, bytes, bool]]:
    collected: list[tuple[str, bytes, bool]] = []
    async with asyncio.timeout(10):
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            collected.append((str(message.topic), payload, bool(message.retain)))
            if len(collected) == count:
                return collected
    return collected


async def nothing_more(client: aiomqtt.Client, seconds: float = 0.5) -> bool:
    try:
        async with asyncio.timeout(seconds):
            await anext(aiter(client.messages))
    except TimeoutError:
        return True
    return False


Attach = Callable[..., Awaitable[LocalLink]]


def recording(seen: list[IncomingMessage]) -> MessageHandler:
    async def record(message: IncomingMessage) -> None:
        seen.append(message)

    return record


@pytest.fixture
async def attach(broker: Broker) -> AsyncIterator[Attach]:
    """Attaches a link to the embedded broker (by default subscribed to `#`, recording what it gets
    into a list) and stops it after the test."""
    embedded, _ = broker
    links: list[LocalLink] = []

    async def attach_link(
        seen: list[IncomingMessage],
        *,
        handler: MessageHandler | None = None,
        filters: tuple[str, ...] = ("#",),
    ) -> LocalLink:
        link = LocalLink(
            embedded, username=AGENT, subscriptions=list(filters), handler=handler or recording(seen)
        )
        links.append(link)
        link.start()
        await link.wait_connected()
        return link

    yield attach_link
    for link in links:
        await link.stop()


async def test_the_link_gets_retained_then_live_device_messages_and_never_its_own(
    broker: Broker, attach: Attach
) -> None:
    embedded, devices = broker
    seen: list[IncomingMessage] = []
    async with (
        device_client(embedded, devices["door-a"]) as door,
        tcp_client(embedded, AGENT, AGENT_PASSWORD, "observer") as observer,
    ):
        await door.subscribe(DOOR_A_COMMAND, qos=1)
        await observer.subscribe("#", qos=1)
        await door.publish(DOOR_A_STATE, "LOCKED", qos=1, retain=True)
        await eventually(lambda: DOOR_A_STATE in embedded.confined.retained_messages)
        link = await attach(seen)
        await link.publish(DOOR_A_COMMAND, "UNLOCK")
        await link.publish(EVENT, "{}")
        await door.publish(DOOR_A_STATE, "UNLOCKED", qos=1)
        commanded = await received(door, 1)
        observed = await received(observer, 4)
        await eventually(lambda: len(seen) == 2)
    assert [(m.topic, m.payload, m.retain) for m in seen] == [
        (DOOR_A_STATE, b"LOCKED", True),
        (DOOR_A_STATE, b"UNLOCKED", False),
    ]
    assert commanded == [(DOOR_A_COMMAND, b"UNLOCK", False)]
    assert [(topic, payload) for topic, payload, _ in observed] == [
        (DOOR_A_STATE, b"LOCKED"),
        (DOOR_A_COMMAND, b"UNLOCK"),
        (EVENT, b"{}"),
        (DOOR_A_STATE, b"UNLOCKED"),
    ]


async def test_its_publishes_pass_the_receivers_acl_and_keep_the_retained_flag(
    broker: Broker, attach: Attach
) -> None:
    embedded, devices = broker
    link = await attach([])
    await link.publish(DOOR_A_COMMAND, "LOCK", retain=True)
    await eventually(lambda: DOOR_A_COMMAND in embedded.confined.retained_messages)
    async with (
        device_client(embedded, devices["door-a"]) as door_a,
        device_client(embedded, devices["door-b"]) as door_b,
    ):
        await door_a.subscribe("lib/door-a/+/+/command", qos=1)
        await door_b.subscribe("lib/door-b/+/+/command", qos=1)
        assert await received(door_a, 1) == [(DOOR_A_COMMAND, b"LOCK", True)]
        await link.publish(DOOR_B_COMMAND, "UNLOCK")
        await link.publish(DOOR_A_COMMAND, "UNLOCK")
        assert await received(door_a, 1) == [(DOOR_A_COMMAND, b"UNLOCK", False)]
        assert await received(door_b, 1) == [(DOOR_B_COMMAND, b"UNLOCK", False)]
        assert await nothing_more(door_a) and await nothing_more(door_b)


@pytest.mark.parametrize("topic", ["", "lib/#", "lib/+/state", "$SYS/broker/uptime"])
async def test_it_refuses_topics_a_client_may_not_publish_to(attach: Attach, topic: str) -> None:
    link = await attach([])
    with pytest.raises(ValueError, match="cannot publish"):
        await link.publish(topic, "x")


async def test_commands_published_while_detached_are_held_and_sent_on_reattach(
    broker: Broker, attach: Attach
) -> None:
    embedded, devices = broker
    link = await attach([])
    await link.stop()
    with pytest.raises(NotConnected):
        await link.publish(EVENT, "{}")
    await link.publish(DOOR_A_COMMAND, "UNLOCK", hold=True)
    async with device_client(embedded, devices["door-a"]) as door:
        await door.subscribe(DOOR_A_COMMAND, qos=1)
        link.start()
        await link.wait_connected()
        assert await received(door, 1) == [(DOOR_A_COMMAND, b"UNLOCK", False)]
    assert link.connects == 2 and not link.held


async def test_a_failing_handler_does_not_stop_the_link(broker: Broker, attach: Attach) -> None:
    embedded, devices = broker
    seen: list[bytes] = []

    async def fail_first(message: IncomingMessage) -> None:
        seen.append(message.payload)
        if len(seen) == 1:
            raise RuntimeError("handler bug")

    await attach([], handler=fail_first, filters=("lib/#",))
    async with device_client(embedded, devices["door-a"]) as door:
        await door.publish(DOOR_A_STATE, "LOCKED", qos=1)
        await door.publish(DOOR_A_STATE, "UNLOCKED", qos=1)
        await eventually(lambda: len(seen) == 2)
    assert seen == [b"LOCKED", b"UNLOCKED"]
