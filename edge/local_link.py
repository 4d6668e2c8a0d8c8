"""The agent's link to its own embedded amqtt broker, without a socket.

Over TCP every device message cost the agent's one process an amqtt encode, a socket write and read,
and a paho decode on top of the broker's own work, and every command the way back. Here the broker
hands each message the agent's filters match straight to the agent (`ConfinedBroker.attach_local`),
and the agent's publishes enter the broker's broadcast as a client's PUBLISH would
(`ConfinedBroker.publish_local`): devices get the same topics, payloads, QoS and retained messages,
through the same per-receiver ACL. The agent's messages are handled one at a time, in broker order,
as `MqttLink` hands them; a failing handler is logged and never stops the link.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from amqtt.session import Session

from edge.broker import ConfinedBroker, EmbeddedBroker
from edge.mqtt import CommandHold, IncomingMessage, MessageHandler, NotConnected

log = logging.getLogger(__name__)


class LocalLink(CommandHold):
    def __init__(
        self, broker: EmbeddedBroker, *, username: str, subscriptions: list[str], handler: MessageHandler
    ) -> None:
        super().__init__()
        self.broker = broker
        self.filters = subscriptions
        self.handler = handler
        self.session = Session()
        self.session.client_id = f"studyspot-agent-local-{uuid.uuid4().hex[:8]}"
        self.session.username = username  # the broker's no-local and ACL know the agent by it
        self.connects = 0
        self._inbox: asyncio.Queue[IncomingMessage] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def deliver(self, topic: str, data: bytes, *, retain: bool) -> None:
        self._inbox.put_nowait(IncomingMessage(topic=topic, payload=data, retain=retain))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="mqtt-local-link")

    async def stop(self, grace: float = 3.0) -> None:
        self.connected.clear()
        if self.broker.running:
            self.broker.confined.detach_local(self)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=grace)
        self._inbox = asyncio.Queue()  # what was not handled yet is gone, as with a dropped connection

    async def publish(
        self, topic: str, payload: str | bytes, *, qos: int = 1, retain: bool = False, hold: bool = False
    ) -> None:
        if not self.connected.is_set() or not self.broker.running:
            if not hold:
                raise NotConnected("not attached to the embedded broker")
            self._hold(topic, payload, qos)
            return
        await self._publish(self.broker.confined, topic, payload, qos=qos, retain=retain)

    async def _publish(
        self, confined: ConfinedBroker, topic: str, payload: str | bytes, *, qos: int, retain: bool
    ) -> None:
        data = payload.encode() if isinstance(payload, str) else payload
        await confined.publish_local(self.session, topic, data, qos=qos, retain=retain)

    async def _run(self) -> None:
        confined = self.broker.confined
        confined.attach_local(self)
        for topic, command in self._take_held():
            await self._publish(confined, topic, command.payload, qos=command.qos, retain=False)
        self.connects += 1
        self.connected.set()
        log.info("mqtt attached to the embedded broker in-process")
        while True:
            message = await self._inbox.get()
            try:
                await self.handler(message)
            except Exception:
                log.exception("handler failed for message on %s", message.topic)
