"""The embedded amqtt broker: per-device hashed credentials and per-device topic ACLs.

Anonymous access is off. A client is admitted only if it presents a known username AND a password
that verifies against the stored argon2 hash (or is the agent's login, which tools and observers
may use over TCP; the agent itself is attached in-process, see `edge.local_link`). A device may
publish only under its own `topic_prefix` and subscribe only to its own command topics.

A device publishing more than `FloodLimit.messages_per_second` on average over a 10 s sliding window
(`limits`; so a burst of up to 10 s worth passes whole) is cut off:
its connection is closed, an alert is raised, and it may not reconnect for `cooldown_seconds`. The
agent's own client is never limited. Mosquitto has no per-client publish rate limit (only
`max_inflight_messages`, `max_queued_messages`, `message_size_limit`): see docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.mqtt.constants import QOS_1, QOS_2
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from edge.store import DeviceRecord, Store, verify_secret

log = logging.getLogger(__name__)


def device_may_publish(device: DeviceRecord, topic: str) -> bool:
    return topic.startswith(device.topic_prefix + "/") and "+" not in topic and "#" not in topic


def device_may_subscribe(device: DeviceRecord, topic_filter: str) -> bool:
    """Only `<prefix>/<component>/<object_id>/command` (either level may be `+`)."""
    if not topic_filter.startswith(device.topic_prefix + "/"):
        return False
    rest = topic_filter[len(device.topic_prefix) + 1 :].split("/")
    return len(rest) == 3 and rest[2] == "command" and "#" not in rest[0] + rest[1]


class VerifiedLogins:
    """Device logins that passed argon2 in this process, so a reconnect does not hash again.

    An entry is an HMAC, under a key made for this process, of (username, stored hash, password):
    the plaintext is never kept, and when the registry changes — a rotated device has a new hash, a
    removed one none, even when another process (`studyspot edge device rotate`) changed it — no
    old entry can match again. Failed logins are never remembered.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._key = secrets.token_bytes(32)
        self._capacity = capacity
        self._entries: OrderedDict[bytes, None] = OrderedDict()

    def _entry(self, username: str, stored_hash: str, password: str) -> bytes:
        message = json.dumps([username, stored_hash, password]).encode()
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def known(self, username: str, stored_hash: str, password: str) -> bool:
        entry = self._entry(username, stored_hash, password)
        if entry not in self._entries:
            return False
        self._entries.move_to_end(entry)
        return True

    def remember(self, username: str, stored_hash: str, password: str) -> None:
        self._entries[self._entry(username, stored_hash, password)] = None
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class CredentialAuthority:
    """Decides who may connect and which topics they may use, from the store's device registry."""

    def __init__(self, store: Store, agent_username: str, agent_password: str) -> None:
        self.store = store
        self.agent_username = agent_username
        self._agent_password = agent_password
        self._cut_off_until: dict[str, float] = {}
        self.verified = VerifiedLogins()
        # The ACL runs for every PUBLISH and every delivery: look devices up in the store only
        # when the registry may have changed.
        self._devices: dict[str, DeviceRecord | None] = {}
        self._devices_version: tuple[int, int] | None = None

    def is_agent(self, username: str | None) -> bool:
        return username == self.agent_username

    def cut_off(self, username: str, seconds: float) -> None:
        """Refuse `username`'s connections for `seconds` (a flooding device)."""
        self._cut_off_until[username] = time.monotonic() + seconds

    def is_cut_off(self, username: str | None) -> bool:
        return bool(username) and self._cut_off_until.get(username or "", 0.0) > time.monotonic()

    async def authenticate(self, username: str | None, password: str | None) -> bool:
        if not username or password is None or password == "":
            return False
        if self.is_cut_off(username):
            log.warning("mqtt connect refused: %s is cut off for flooding", username)
            return False
        if username == self.agent_username:
            return hmac.compare_digest(password.encode(), self._agent_password.encode())
        found = self.store.device_credentials(username)
        if found is None or found[1] is None:
            return False
        stored_hash = found[1]
        if self.verified.known(username, stored_hash, password):
            return True
        # argon2 is deliberately slow: keep it off the event loop.
        if not await asyncio.to_thread(verify_secret, stored_hash, password):
            return False
        self.verified.remember(username, stored_hash, password)
        return True

    def device_for(self, username: str | None) -> DeviceRecord | None:
        if not username:
            return None
        version = self.store.devices_version()
        if version != self._devices_version:
            self._devices.clear()
            self._devices_version = version
        if username not in self._devices:
            found = self.store.device_credentials(username)
            self._devices[username] = found[0] if found else None
        return self._devices[username]

    def allows(self, username: str | None, topic: str, action: Action) -> bool:
        if self.is_agent(username):
            return True
        device = self.device_for(username)
        if device is None:
            return False
        if action == Action.PUBLISH:
            return device_may_publish(device, topic)
        # SUBSCRIBE checks the filter, RECEIVE the concrete topic: both must be own command topics.
        return device_may_subscribe(device, topic)


class DeviceAuthPlugin(BaseAuthPlugin):
    """amqtt auth plugin backed by a CredentialAuthority (passed in the plugin config)."""

    @dataclass
    class Config:
        authority: Any = None

    async def authenticate(self, *, session: Session) -> bool | None:
        authority: CredentialAuthority = self.config.authority
        admitted = await authority.authenticate(session.username, session.password)
        if not admitted:
            log.warning("mqtt connect refused", extra={"username": session.username})
        return admitted


class DeviceTopicPlugin(BaseTopicPlugin):
    """amqtt topic ACL plugin: devices are confined to their own prefix and command topics."""

    @dataclass
    class Config:
        authority: Any = None

    async def topic_filtering(
        self, *, session: Session | None = None, topic: str | None = None, action: Action | None = None
    ) -> bool | None:
        if session is None or topic is None or action is None:
            return False
        return self.decide(self.config.authority, session, topic, action)

    @staticmethod
    def decide(authority: CredentialAuthority, session: Session, topic: str, action: Action) -> bool:
        allowed = authority.allows(session.username, topic, action)
        if not allowed and action != Action.RECEIVE:
            log.warning("mqtt %s refused on %s for %s", action, topic, session.username)
        return allowed


class _SnapshotDict(dict[str, Any]):
    """amqtt 0.12.1 iterates `_subscriptions` and `_retained_messages` while awaiting plugins and
    sockets; a SUBSCRIBE or retained PUBLISH arriving meanwhile raised "dictionary changed size
    during iteration", dropping the message or the connecting client. Iterate snapshots instead."""

    def __iter__(self) -> Iterator[str]:
        return iter(list(super().__iter__()))

    def keys(self) -> Any:
        return list(super().keys())

    def values(self) -> Any:
        return list(super().values())

    def items(self) -> Any:
        return list(super().items())


@dataclass(frozen=True)
class FloodLimit:
    """Per-client publish rate limit of the embedded broker; 0 messages/s turns it off."""

    messages_per_second: int = 200
    cooldown_seconds: float = 60.0


FloodHandler = Callable[[str], Awaitable[None]]
FLOOD_WINDOW_SECONDS = 10  # averaging window: bursts (a reconnect, a batch of readings) are not floods


class _SweptMemoryStorage(MemoryStorage):
    """`limits`' MemoryStorage without its expiry thread.

    MemoryStorage starts a `threading.Timer` (10 ms) to drop expired counters whenever the previous
    one has run out: nearly one new OS thread per PUBLISH on a quiet broker, each a GIL hand-over
    on the event loop's path. Expired counters are already ignored when read; `sweep` drops them
    (the same routine the timer runs), called by the limiter once per window.
    """

    def _MemoryStorage__schedule_expiry(self) -> None:
        pass

    def sweep(self) -> None:
        expire = getattr(self, "_MemoryStorage__expire_events", None)  # private: absent, counters just stay
        if expire is not None:
            expire()


class ClientRateLimiter:
    """Counts each client's PUBLISHes (sliding window counter); says when a client goes over."""

    def __init__(self, limit: FloodLimit) -> None:
        self.limit = limit
        rate = max(1, limit.messages_per_second)
        self.item = RateLimitItemPerSecond(rate * FLOOD_WINDOW_SECONDS, FLOOD_WINDOW_SECONDS)
        self.storage = _SweptMemoryStorage()  # held here: `limits` keeps only weak references to storages
        self.limiter = SlidingWindowCounterRateLimiter(self.storage)
        self._swept_at = time.monotonic()

    def allows(self, username: str) -> bool:
        if self.limit.messages_per_second <= 0:
            return True
        now = time.monotonic()
        if now - self._swept_at >= FLOOD_WINDOW_SECONDS:
            self._swept_at = now
            self.storage.sweep()
        return self.limiter.hit(self.item, "mqtt", username)


class LocalSubscriber(Protocol):
    """A subscriber inside the broker's process (the agent's `LocalLink`): messages reach it as
    calls, never as MQTT packets."""

    filters: list[str]
    session: Session  # stands for it as the source of what it publishes

    def deliver(self, topic: str, data: bytes, *, retain: bool) -> None: ...


class ConfinedBroker(Broker):
    """amqtt's Broker with two of its 0.12.1 leaks closed.

    - On every CONNECT it replays the retained messages of *every* subscription in the broker (the
      agent's `#` among them) to the new client, skipping the topic ACL: any device could read every
      other device's state. Here a client only gets retained messages of its own subscriptions, and
      each one passes the ACL's RECEIVE check.
    - A client that sends PUBLISH (QoS 0) and DISCONNECT back to back (mosquitto_pub, a scanner
      waking up) had its message dropped: the per-client loop ends on DISCONNECT and cancels the
      delivery of what that client had just published. Here it is delivered first.
    """

    def __init__(
        self,
        config: dict[str, Any],
        authority: CredentialAuthority,
        flood_limit: FloodLimit | None = None,
        on_flood: FloodHandler | None = None,
    ) -> None:
        super().__init__(config)
        self._authority = authority
        self._rate = ClientRateLimiter(flood_limit or FloodLimit())
        self._on_flood = on_flood
        self._flood_tasks: set[asyncio.Task[None]] = set()
        self._local: LocalSubscriber | None = None

    def attach_local(self, subscriber: LocalSubscriber) -> None:
        """Deliver to `subscriber` every message its filters match, starting with the retained ones
        (as a connecting client's subscription gets them, flagged retained)."""
        self._local = subscriber
        for topic, retained in self._retained_messages.items():
            if self._matches_any(topic, subscriber.filters):
                subscriber.deliver(topic, bytes(retained.data), retain=True)

    def detach_local(self, subscriber: LocalSubscriber) -> None:
        if self._local is subscriber:
            self._local = None

    async def publish_local(
        self, source: Session, topic: str, data: bytes, *, qos: int, retain: bool
    ) -> None:
        """A PUBLISH from the local subscriber, handled as `_handle_message_delivery` handles one read
        from a socket: the same topic checks, broadcast (ACL per receiver) and retained store."""
        if not topic or "#" in topic or "+" in topic or topic.startswith("$"):
            raise ValueError(f"cannot publish to {topic!r}")
        await self._broadcast_message(source, topic, data)
        if retain:
            await self.retain_message(source, topic, data, qos)

    def _matches_any(self, topic: str, filters: list[str]) -> bool:
        return any(self._matches(topic, topic_filter) for topic_filter in filters)

    async def _topic_filtering(self, session: Session, topic: str, action: Action) -> bool:
        """The decision `DeviceTopicPlugin` gives, asked directly: amqtt's plugin manager wraps every
        check (each PUBLISH, and each receiver of it) in a task of its own, a loop hop apiece."""
        return DeviceTopicPlugin.decide(self._authority, session, topic, action)

    async def _handle_message_delivery(
        self, client_session: Session, handler: Any, wait_deliver: asyncio.Future[Any]
    ) -> bool:
        username = client_session.username
        if username and not self._authority.is_agent(username):
            if self._authority.is_cut_off(username):
                return True  # the connection is closing: drop what it still sends
            if not self._rate.allows(username):
                await self._cut_off(username, handler)
                return True
        return bool(await super()._handle_message_delivery(client_session, handler, wait_deliver))

    async def _run_broadcast(self, running_tasks: deque[asyncio.Task[Any]]) -> None:
        """amqtt 0.12.1's `_run_broadcast`, less two per-message costs: a message the agent published
        is not echoed back to the agent's own session (it ignores its commands and events; MQTT 5
        calls this no-local), and no debug text is formatted for every filter and every receiver.
        The local subscriber, if any, gets what it did not publish itself, before the sockets do."""
        broadcast = await self._broadcast_queue.get()
        topic, source = broadcast["topic"], broadcast["session"]
        local = self._local
        if local is not None and source is not local.session and self._matches_any(topic, local.filters):
            local.deliver(topic, bytes(broadcast["data"] or b""), retain=False)
        no_local = source is not None and self._authority.is_agent(source.username)
        for topic_filter, subscriptions in self._subscriptions.items():
            if not self._matches(topic, topic_filter):
                continue
            for target, subscribed_qos in subscriptions:
                if no_local and target is source:
                    continue
                qos = broadcast.get("qos", subscribed_qos)
                if not await self._topic_filtering(target, topic=topic, action=Action.RECEIVE):
                    continue
                if target.transitions.state != "connected":
                    if _kept_while_offline(target, qos):
                        await self._retain_broadcast_message(broadcast, qos, target)
                    continue
                handler = self._get_handler(target)
                if handler is not None:
                    delivery = handler.mqtt_publish(topic, broadcast["data"], qos, retain=False)
                    running_tasks.append(asyncio.ensure_future(delivery))

    async def _cut_off(self, username: str, handler: Any) -> None:
        limit = self._rate.limit
        self._authority.cut_off(username, limit.cooldown_seconds)
        log.warning(
            "mqtt client %s exceeded %s messages/s: disconnected for %ss",
            username, limit.messages_per_second, limit.cooldown_seconds,
        )  # fmt: skip
        if self._on_flood is not None:
            task = asyncio.ensure_future(self._on_flood(username))
            self._flood_tasks.add(task)
            task.add_done_callback(self._flood_tasks.discard)
        writer = getattr(handler, "writer", None)
        if writer is not None:
            with contextlib.suppress(Exception):
                await writer.close()  # the client loop then sees the disconnect and cleans up

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Session
    ) -> None:
        topic_filter = subscription[0]
        subscribers = self._subscriptions.get(topic_filter, [])
        granted = [qos for subscriber, qos in subscribers if subscriber is session]
        handler = self._get_handler(session)
        if not granted or handler is None:
            return
        qos = granted[0]
        sends = [
            asyncio.ensure_future(
                handler.mqtt_publish(topic, retained.data, min(qos, retained.qos or qos), retain=True)
            )
            for topic, retained in self._retained_messages.items()
            if self._matches(topic, topic_filter)
            and self._authority.allows(session.username, topic, Action.RECEIVE)
        ]
        if sends:
            await asyncio.wait(sends)

    async def _handle_disconnect(self, client_session: Session, handler: Any, disconnect_waiter: Any) -> None:
        # let packets read before DISCONNECT finish their handling, then deliver what they queued
        for _ in range(DISCONNECT_SETTLE_TICKS):
            await asyncio.sleep(0)
        queue = client_session.delivered_message_queue
        while not queue.empty():
            delivered: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            delivered.set_result(queue.get_nowait())
            await self._handle_message_delivery(client_session, handler, delivered)
        await super()._handle_disconnect(client_session, handler, disconnect_waiter)


DISCONNECT_SETTLE_TICKS = 5


def _kept_while_offline(session: Session, qos: int) -> bool:
    """MQTT 3.1.2.4: a persistent, authenticated session gets QoS 1/2 messages when it reconnects."""
    return not session.clean_session and qos in (QOS_1, QOS_2) and not session.is_anonymous


@dataclass(frozen=True)
class BrokerListen:
    host: str
    port: int
    tls_port: int | None = None
    certfile: Path | None = None
    keyfile: Path | None = None


class EmbeddedBroker:
    """amqtt started in-process with our auth and ACL plugins and nothing else."""

    def __init__(
        self,
        listen: BrokerListen,
        authority: CredentialAuthority,
        flood_limit: FloodLimit | None = None,
        on_flood: FloodHandler | None = None,
    ) -> None:
        self.listen = listen
        self.authority = authority
        self.flood_limit = flood_limit or FloodLimit()
        self.on_flood = on_flood
        self._broker: ConfinedBroker | None = None

    def _config(self) -> dict[str, Any]:
        listeners: dict[str, Any] = {
            "default": {"type": "tcp", "bind": f"{self.listen.host}:{self.listen.port}"},
        }
        if self.listen.tls_port is not None:
            listeners["tls"] = {
                "type": "tcp",
                "bind": f"{self.listen.host}:{self.listen.tls_port}",
                "ssl": True,
                "certfile": str(self.listen.certfile),
                "keyfile": str(self.listen.keyfile),
            }
        plugins = {
            f"{__name__}.DeviceAuthPlugin": {"authority": self.authority},
            f"{__name__}.DeviceTopicPlugin": {"authority": self.authority},
        }
        return {"listeners": listeners, "plugins": plugins}

    @property
    def running(self) -> bool:
        return self._broker is not None and self._broker.transitions.state == "started"

    @property
    def confined(self) -> ConfinedBroker:
        if self._broker is None or not self.running:
            raise RuntimeError("broker not started")
        return self._broker

    def bound_port(self, listener: str = "default") -> int:
        """The port actually listened on (differs from the config when it asked for port 0)."""
        if self._broker is None:
            raise RuntimeError("broker not started")
        server = self._broker._servers[listener].instance
        return int(server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._broker = ConfinedBroker(self._config(), self.authority, self.flood_limit, self.on_flood)
        self._broker._subscriptions = _SnapshotDict()
        self._broker._retained_messages = _SnapshotDict()
        await self._broker.start()
        log.info("embedded broker listening on %s:%s", self.listen.host, self.listen.port)

    async def stop(self) -> None:
        if self._broker is not None and self.running:
            await self._broker.shutdown()
        self._broker = None


__all__ = [
    "BrokerListen",
    "ConfinedBroker",
    "CredentialAuthority",
    "DeviceAuthPlugin",
    "DeviceTopicPlugin",
    "EmbeddedBroker",
    "FloodLimit",
    "LocalSubscriber",
    "device_may_publish",
    "device_may_subscribe",
]
