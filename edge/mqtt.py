"""The agent's own MQTT client: aiomqtt in a reconnect loop with backoff.

aiomqtt does not reconnect by itself; this loop does, and re-subscribes on every connect. Messages
are handed one at a time to the handler; a failing handler is logged and never kills the loop.

Device commands published while the broker is unreachable (an external Mosquitto restarting) are
held, the latest per topic, and sent on reconnect: a relock issued during the outage still reaches
the door. A held command that would open or switch something on goes stale after
`HELD_COMMAND_TTL`, so a door never unlocks long after the reason for it; safe-state commands
(`LOCK`, `OFF`) never go stale.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import aiomqtt

log = logging.getLogger(__name__)

# Small MQTT packets otherwise sit behind Nagle's algorithm and delayed ACKs (~40 ms per hop).
NODELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)


@dataclass(frozen=True)
class IncomingMessage:
    topic: str
    payload: bytes
    retain: bool


MessageHandler = Callable[[IncomingMessage], Awaitable[None]]

HELD_COMMAND_TTL = 10.0
SAFE_STATE_PAYLOADS = frozenset({"LOCK", "OFF"})
MAX_HELD_COMMANDS = 1000


@dataclass(frozen=True)
class HeldCommand:
    payload: str | bytes
    qos: int
    held_at: float

    def stale(self, now: float) -> bool:
        payload = self.payload.decode(errors="replace") if isinstance(self.payload, bytes) else self.payload
        return payload.upper() not in SAFE_STATE_PAYLOADS and now - self.held_at > HELD_COMMAND_TTL


class NotConnected(RuntimeError):
    """Publishing while the broker is unreachable (the caller decides whether that matters)."""


class AgentLink(Protocol):
    """What the agent needs from its way to the broker: `MqttLink` over TCP (any broker), or
    `edge.local_link.LocalLink` straight into the embedded amqtt broker."""

    connected: asyncio.Event
    connects: int

    def start(self) -> None: ...

    async def stop(self, grace: float = 3.0) -> None: ...

    async def wait_connected(self, limit: float = 10.0) -> None: ...

    async def publish(
        self, topic: str, payload: str | bytes, *, qos: int = 1, retain: bool = False, hold: bool = False
    ) -> None: ...


class CommandHold:
    """What both links share: whether they are up, and the device commands kept while they are down
    (the latest per topic, sent on reconnect)."""

    def __init__(self) -> None:
        self.held: dict[str, HeldCommand] = {}
        self.connected = asyncio.Event()

    async def wait_connected(self, limit: float = 10.0) -> None:
        async with asyncio.timeout(limit):
            await self.connected.wait()

    def _hold(self, topic: str, payload: str | bytes, qos: int) -> None:
        self.held.pop(topic, None)  # re-insert: the send order follows the latest command
        if len(self.held) >= MAX_HELD_COMMANDS:
            dropped = next(iter(self.held))
            del self.held[dropped]
            log.warning("too many held commands; dropped the oldest, for %s", dropped)
        self.held[topic] = HeldCommand(payload, qos, time.monotonic())
        log.warning("mqtt link down: holding %s for the reconnect", topic)

    def _take_held(self) -> Iterator[tuple[str, HeldCommand]]:
        """The held commands that are still fresh, oldest first, each removed as it is taken."""
        now = time.monotonic()
        while self.held:
            topic = next(iter(self.held))
            command = self.held.pop(topic)
            if command.stale(now):
                log.warning("held command for %s went stale; not sent", topic)
                continue
            yield topic, command


class MqttLink(CommandHold):
    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str | None,
        password: str | None,
        subscriptions: list[str],
        handler: MessageHandler,
        client_id: str | None = None,
        min_backoff: float = 0.2,
        max_backoff: float = 10.0,
    ) -> None:
        super().__init__()
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.subscriptions = subscriptions
        self.handler = handler
        self.client_id = client_id or f"studyspot-agent-{uuid.uuid4().hex[:8]}"
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.connects = 0
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._generation = 0

    def start(self) -> None:
        self._generation += 1
        self._task = asyncio.create_task(self._run(self._generation), name="mqtt-link")

    async def stop(self, grace: float = 3.0) -> None:
        self._generation += 1  # a loop from an older generation exits instead of reconnecting
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # aiomqtt waits for the broker to acknowledge DISCONNECT; do not let that hold up a stop.
            await asyncio.wait({task}, timeout=grace)
        self.connected.clear()

    async def publish(
        self, topic: str, payload: str | bytes, *, qos: int = 1, retain: bool = False, hold: bool = False
    ) -> None:
        """Publish now; with `hold`, a message that cannot go out now is sent on reconnect instead."""
        client = self._client
        if client is None or not self.connected.is_set():
            if not hold:
                raise NotConnected(f"not connected to {self.host}:{self.port}")
            self._hold(topic, payload, qos)
            return
        await client.publish(topic, payload, qos=qos, retain=retain)

    async def _send_held(self, client: aiomqtt.Client) -> None:
        for topic, command in self._take_held():
            await client.publish(topic, command.payload, qos=command.qos)

    async def _run(self, generation: int) -> None:
        backoff = self.min_backoff
        while generation == self._generation:
            client: aiomqtt.Client | None = None
            try:
                async with aiomqtt.Client(
                    self.host,
                    self.port,
                    username=self.username,
                    password=self.password,
                    identifier=self.client_id,
                    keepalive=30,
                    timeout=5,
                    socket_options=NODELAY,
                ) as connected_client:
                    client = connected_client
                    for topic_filter in self.subscriptions:
                        await client.subscribe(topic_filter, qos=1)
                    await self._send_held(client)
                    self._client = client
                    self.connects += 1
                    self.connected.set()
                    backoff = self.min_backoff
                    log.info("mqtt connected to %s:%s", self.host, self.port)
                    async for message in client.messages:
                        await self._dispatch(message)
            except aiomqtt.MqttError as exc:
                if generation != self._generation:
                    return
                log.warning("mqtt link down (%s); retrying in %.1fs", exc, backoff)
            finally:
                if client is not None and self._client is client:
                    self._client = None
                    self.connected.clear()
            await asyncio.sleep(backoff)
            backoff = min(self.max_backoff, backoff * 2)

    async def _dispatch(self, message: aiomqtt.Message) -> None:
        payload = message.payload
        if isinstance(payload, str):
            payload = payload.encode()
        elif not isinstance(payload, bytes | bytearray):
            payload = b"" if payload is None else str(payload).encode()
        incoming = IncomingMessage(
            topic=str(message.topic), payload=bytes(payload), retain=bool(message.retain)
        )
        try:
            await self.handler(incoming)
        except Exception:
            log.exception("handler failed for message on %s", incoming.topic)
