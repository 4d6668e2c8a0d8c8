"""The edge agent's one composition root: store, broker, MQTT link, devices, doors, rules, kiosk."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

from edge.broker import BrokerListen, CredentialAuthority, EmbeddedBroker, FloodLimit
from edge.checkin import CheckinDesk
from edge.config import EdgeConfig
from edge.devices import (
    DeviceDirectory,
    DeviceMessage,
    MessageRejected,
    parse_lock_state,
    parse_number,
    parse_on_off,
)
from edge.doors import DoorService
from edge.events import EventBus
from edge.gpio import GpioDoor
from edge.local_link import LocalLink
from edge.memory import return_large_frees_to_the_system
from edge.mqtt import AgentLink, IncomingMessage, MqttLink
from edge.rules import RulesEngine
from edge.store import Store, utcnow
from edge.sync import SyncClient, SyncSettings
from edge.sync_store import SyncStore
from shared.passes import public_key_from_text
from shared.sync import RemoteCommand
from shared.topics import EVENT_ROOT, Component, DeviceKind, is_command_topic

log = logging.getLogger(__name__)

TICK_SECONDS = 5.0
# events that should reach the cloud now rather than at the next sync interval
STORE_FULL_ALERT_SECONDS = 60.0
URGENT_EVENT_KINDS = frozenset({"checkin", "checkout", "alert", "sale"})
TELEMETRY_HORIZON = timedelta(days=7)
# Device state messages are held and committed together this long after the first (a burst of
# readings in one commit); other readers in this process see them at once (`Store.db`).
DEVICE_WRITES_SECONDS = 0.05


def _quiet_server_class() -> Any:
    import uvicorn

    class QuietServer(uvicorn.Server):
        """uvicorn without its own signal handlers: the agent owns Ctrl-C."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return QuietServer


class Agent:
    def __init__(self, config: EdgeConfig) -> None:
        self.config = config
        self.store: Store | None = None
        self.broker: EmbeddedBroker | None = None
        self.link: AgentLink | None = None
        self.directory: DeviceDirectory | None = None
        self.doors: DoorService | None = None
        self.rules: RulesEngine | None = None
        self.events: EventBus | None = None
        self.gpio_door: GpioDoor | None = None
        self.desk: CheckinDesk | None = None
        self.sync: SyncClient | None = None
        self.rejected_messages = 0
        self.store_full_since: float | None = None  # monotonic; None while writes succeed
        self._store_full_alerted = 0.0
        self.mqtt_host = "127.0.0.1"
        self.mqtt_port = config.broker.port
        self.kiosk_port: int | None = None
        self._kiosk: Any = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopping = asyncio.Event()
        self._device_writes_timer: asyncio.TimerHandle | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        return_large_frees_to_the_system()  # process-wide; also when the demo embeds the agent
        config = self.config
        store = self.store = Store(config.store_path)
        self._declare_config_devices(store)
        username, password = await self._start_broker(store)
        self.directory = DeviceDirectory(store)
        self.events = EventBus(store=store, library_id=config.library_id, publish=self._publish)
        desk = self.desk = CheckinDesk(
            store,
            public_keys={key_id: public_key_from_text(text) for key_id, text in config.pass_keys.items()},
            library=config.library_short_id,
            skew=timedelta(seconds=config.checkin.skew_seconds),
            anti_passback=config.checkin.anti_passback,
            max_scan_bytes=config.checkin.max_scan_bytes,
        )
        self.doors = DoorService(
            store=store,
            desk=desk,
            events=self.events,
            publish=self._publish,
            settings=config.checkin,
            held_open_seconds=config.rules.door_held_open_seconds,
        )
        for door in self.directory.doors():
            self.doors.add_mqtt_door(door)
        self.rules = RulesEngine(
            settings=config.rules,
            store=store,
            directory=self.directory,
            doors=self.doors,
            events=self.events,
            publish=self._publish,
        )
        if config.gpio.enabled:
            self._start_gpio()
        self.link = self._link(username, password)
        self.link.start()
        await self.link.wait_connected()
        self._tasks.append(asyncio.create_task(self._ticker(), name="rules-ticker"))
        if config.kiosk.enabled:
            await self._start_kiosk()
        await self._start_sync(store)
        log.info("agent started for library %s", config.library_id)

    async def stop(self) -> None:
        if self._device_writes_timer is not None:
            self._device_writes_timer.cancel()
            self._device_writes_timer = None
        if self.sync is not None:
            await self.sync.stop()
            self.sync = None
        if self._kiosk is not None:
            self._kiosk.should_exit = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._kiosk = None
        if self.doors is not None:
            await self.doors.close()
        if self.link is not None:
            await self.link.stop()
        if self.broker is not None:
            await self.broker.stop()
        if self.gpio_door is not None:
            self.gpio_door.close()
        if self.store is not None:
            self.store.close()  # commits the device writes still held
            self.store = None
        log.info("agent stopped")

    async def run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, self._stopping.set)
        await self.start()
        try:
            await self._stopping.wait()
        finally:
            await self.stop()

    def request_stop(self) -> None:
        self._stopping.set()

    # -- parts ----------------------------------------------------------------------------------
    def _declare_config_devices(self, store: Store) -> None:
        for device in self.config.devices:
            store.declare_device(
                device_id=device.id,
                kind=device.kind,
                topic_prefix=device.topic_prefix,
                door_id=device.door,
                direction=device.direction,
                zone=device.zone,
            )
        if self.config.gpio.enabled:
            door_id = self.config.gpio.door_id
            store.declare_device(
                device_id=door_id,
                kind="door",
                topic_prefix=f"gpio/{door_id}",
                door_id=None,
                direction="in",
                zone=None,
            )

    async def _start_broker(self, store: Store) -> tuple[str | None, str | None]:
        config = self.config
        if config.mqtt_url:
            url = urlsplit(config.mqtt_url)
            self.mqtt_host = url.hostname or "127.0.0.1"
            self.mqtt_port = url.port or 1883
            return (
                unquote(url.username) if url.username else None,
                unquote(url.password) if url.password else None,
            )
        password = config.agent_password or secrets.token_urlsafe(24)
        authority = CredentialAuthority(store, config.agent_username, password)
        settings = config.broker
        self.broker = EmbeddedBroker(
            BrokerListen(
                settings.host, settings.port, settings.tls_port, settings.certfile, settings.keyfile
            ),
            authority,
            FloodLimit(settings.client_messages_per_second, settings.flood_cooldown_seconds),
            self._device_flooded,
        )
        await self.broker.start()
        self.mqtt_port = self.broker.bound_port()
        self.mqtt_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        return config.agent_username, password

    def _link(self, username: str | None, password: str | None) -> AgentLink:
        """In-process to the embedded broker (no MQTT encode, socket and decode in this process for
        each message, both ways); over TCP to an external one."""
        if self.broker is not None:
            return LocalLink(
                self.broker,
                username=self.config.agent_username,
                subscriptions=["#"],
                handler=self.handle_message,
            )
        return MqttLink(
            host=self.mqtt_host,
            port=self.mqtt_port,
            username=username,
            password=password,
            subscriptions=["#"],
            handler=self.handle_message,
        )

    async def _device_flooded(self, username: str) -> None:
        if self.events is None:
            return
        device = self.broker.authority.device_for(username) if self.broker else None
        await self.events.alert(
            "mqtt_flood",
            device.id if device else username,
            f"{username} sent more than {self.config.broker.client_messages_per_second} messages/s:"
            f" disconnected for {self.config.broker.flood_cooldown_seconds:g}s",
        )

    def _start_gpio(self) -> None:
        assert self.doors is not None and self.rules is not None
        door_id = self.config.gpio.door_id
        doors, rules = self.doors, self.rules

        async def lock_state(state: str) -> None:
            await doors.on_lock_state(door_id, state, live=True)

        async def contact(is_open: bool) -> None:
            await doors.on_contact(door_id, is_open, live=True)

        async def exit_pressed() -> None:
            await doors.exit_pressed(door_id)

        async def motion(moving: bool) -> None:
            if moving:
                rules.activity(utcnow())

        self.gpio_door = GpioDoor(
            self.config.gpio,
            asyncio.get_running_loop(),
            on_lock_state=lock_state,
            on_contact=contact,
            on_exit=exit_pressed,
            on_motion=motion,
        )
        doors.add_door(door_id, self.gpio_door)

    async def _start_kiosk(self) -> None:
        import uvicorn

        from edge.kiosk.app import create_kiosk_app

        settings = uvicorn.Config(
            create_kiosk_app(self),
            host=self.config.kiosk.host,
            port=self.config.kiosk.port,
            log_level="warning",
            lifespan="off",
        )
        server = _quiet_server_class()(settings)
        self._kiosk = server
        self._tasks.append(asyncio.create_task(server.serve(), name="kiosk"))
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag
            await asyncio.sleep(0.01)
        self.kiosk_port = int(server.servers[0].sockets[0].getsockname()[1])

    async def _start_sync(self, store: Store) -> None:
        """Start the cloud link if this agent is enrolled (`studyspot edge enroll`)."""
        sync_store = SyncStore(store)
        self._load_synced_pass_keys(sync_store)
        if not self.config.sync.enabled or not sync_store.is_enrolled():
            log.info("sync off: %s", "disabled in config" if sync_store.is_enrolled() else "not enrolled")
            return
        enrolled_library = store.get_setting("library_id")
        if enrolled_library and enrolled_library != self.config.library_id:
            log.error(
                "sync off: enrolled for library %s but configured for %s",
                enrolled_library,
                self.config.library_id,
            )
            return
        settings = self.config.sync
        self.sync = SyncClient(
            store,
            SyncSettings(
                interval_seconds=settings.interval_seconds,
                ca_file=str(settings.ca_file) if settings.ca_file else None,
            ),
            on_command=self._remote_command,
            on_pulled=lambda: self._load_synced_pass_keys(sync_store),
        )
        await self.sync.start()

    def _load_synced_pass_keys(self, sync_store: SyncStore) -> None:
        """Pass keys pulled from the cloud join the ones pinned in the config (rotation without restart)."""
        if self.desk is None:
            return
        for key_id, text in sync_store.pass_keys().items():
            try:
                self.desk.public_keys[key_id] = public_key_from_text(text)
            except ValueError:
                log.warning("ignoring malformed pass key %s from the cloud", key_id)

    async def _remote_command(self, command: RemoteCommand) -> dict[str, Any]:
        """Commands the owner queued in the cloud, delivered by pull (rotate_key is the sync client's)."""
        if command.kind == "unlock_door":
            door_id = str(command.args.get("door_id", ""))
            if self.doors is None or door_id not in self.doors.runtime:
                return {"ok": False, "detail": f"unknown door {door_id!r}"}
            await self.doors.open(door_id)
            return {"ok": True, "detail": f"door {door_id} opened"}
        if command.kind == "reload_config":
            if self.store is not None:
                self._load_synced_pass_keys(SyncStore(self.store))
            return {"ok": True, "detail": "pass keys reloaded; other settings apply on restart"}
        return {"ok": False, "detail": f"unsupported command {command.kind}"}

    async def _ticker(self) -> None:
        assert self.rules is not None and self.store is not None
        ticks = 0
        while True:
            try:
                await self.rules.tick(utcnow())
                ticks += 1
                if ticks % 720 == 0:
                    self.store.compact_telemetry(utcnow() - TELEMETRY_HORIZON)
            except Exception:
                log.exception("rules tick failed")
            await asyncio.sleep(TICK_SECONDS)

    async def _publish(self, topic: str, payload: str) -> None:
        if self.link is None:
            raise RuntimeError("agent not started")
        await self.link.publish(topic, payload, qos=1, retain=False, hold=is_command_topic(topic))
        if self.sync is not None and topic.rsplit("/", 1)[-1] in URGENT_EVENT_KINDS:
            self.sync.sync_now()

    # -- incoming device messages ----------------------------------------------------------------
    async def handle_message(self, message: IncomingMessage) -> None:
        if message.topic.startswith(EVENT_ROOT + "/"):
            return
        assert self.directory is not None
        try:
            device_message = self.directory.resolve(message.topic, message.payload, message.retain)
            if device_message.channel != "command":
                await self._on_device_message(device_message)
        except MessageRejected as rejected:
            self.rejected_messages += 1
            log.info("mqtt message on %s rejected: %s", message.topic[:200], rejected)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_FULL:
                raise
            await self._store_full(message.topic)
        else:
            self.store_full_since = None

    async def _store_full(self, topic: str) -> None:
        """The disk is full: the write was rolled back (nothing half-written) and, for a scan, the door
        stayed shut (a check-in is on disk before the door opens). The alert goes out live only:
        it cannot be stored."""
        now = time.monotonic()
        self.store_full_since = self.store_full_since or now
        log.error("edge store is full: message on %s not processed", topic[:200])
        if self.events is not None and now - self._store_full_alerted >= STORE_FULL_ALERT_SECONDS:
            self._store_full_alerted = now
            message = "the edge's disk is full: check-ins and readings cannot be recorded; free space"
            await self.events.emit("alert", {"alert": "store_full", "device_id": None, "message": message})

    async def _on_device_message(self, message: DeviceMessage) -> None:
        assert self.store is not None and self.doors is not None and self.rules is not None
        device, now, live = message.device, utcnow(), not message.retained
        if message.channel == "status":
            online = message.text() == "online"
            self.store.mark_device_seen(device.id, online=online, at=now)
            if not online and live and self.events is not None:  # a retained "offline" is old news
                text = f"{device.kind} {device.id} went offline"
                await self.events.alert("device_offline", device.id, text)
            if online and live and device.kind == DeviceKind.DOOR:
                await self.doors.door_back_online(device.id)
            return
        role = message.role or ""
        if role == "scan":
            if live:  # a retained scan is yesterday's QR code replayed by the broker
                await self.doors.handle_scan(device, message.raw)
                self.store.mark_device_seen(device.id, at=now)  # after the door command: not on its path
            return
        text, reading = self._record_state(message, role, now)
        await self._on_state(message, role, text, live, reading)

    def _record_state(self, message: DeviceMessage, role: str, now: datetime) -> tuple[str, float | None]:
        """Stores last seen, the state and a sensor's reading in one commit; a payload that is not
        text, or a sensor state that is not a number, is rejected after what it proves is stored."""
        assert self.store is not None
        device, live = message.device, not message.retained
        try:
            text = message.text()
        except MessageRejected:
            if live:
                self.store.mark_device_seen(device.id, at=now)
            raise
        try:
            reading = parse_number(text) if message.component == Component.SENSOR else None
        except MessageRejected:
            self._record_device_state(device.id, role, text, now, live, None)
            raise
        self._record_device_state(device.id, role, text, now, live, reading)
        return text, reading

    def _record_device_state(
        self, device_id: str, role: str, text: str, now: datetime, live: bool, reading: float | None
    ) -> None:
        """Held for the next commit of device writes; while the disk is full, written at once (so
        that a write that succeeds again ends the full state)."""
        assert self.store is not None
        hold = self.store_full_since is None
        self.store.record_device_state(device_id, role, text, now, seen=live, reading=reading, hold=hold)
        if hold:
            self._commit_device_writes_soon()

    def _commit_device_writes_soon(self) -> None:
        if self._device_writes_timer is None:
            loop = asyncio.get_running_loop()
            self._device_writes_timer = loop.call_later(DEVICE_WRITES_SECONDS, self._commit_device_writes)

    def _commit_device_writes(self) -> None:
        self._device_writes_timer = None
        if self.store is None:
            return
        try:
            self.store.commit_held_device_writes()
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_FULL:
                log.exception("held device writes lost")
                return
            task = asyncio.create_task(self._store_full("device state messages"))
            self._tasks.append(task)

    async def _on_state(
        self, message: DeviceMessage, role: str, text: str, live: bool, reading: float | None
    ) -> None:
        assert self.store is not None and self.doors is not None and self.rules is not None
        device, now = message.device, utcnow()
        if device.kind == DeviceKind.DOOR and role == "lock":
            await self.doors.on_lock_state(device.id, parse_lock_state(text), live=live)
        elif device.kind == DeviceKind.DOOR and role == "contact":
            await self.doors.on_contact(device.id, parse_on_off(text), live=live)
        elif device.kind == DeviceKind.DOOR and role == "exit_button":
            if parse_on_off(text) and live:
                await self.doors.exit_pressed(device.id)
        elif reading is not None:  # a sensor's reading, already in the per-minute roll-up
            if live:
                await self.rules.on_reading(device.id, role, reading, now)
        elif role == "presence" and live and parse_on_off(text):
            self.rules.activity(now)

    # -- kiosk backend --------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        store_ok = self.store is not None and self.store.healthy()
        connected = self.link is not None and self.link.connected.is_set()
        embedded_ok = self.broker is None or self.broker.running
        store = self.store
        return {
            "status": "ok"
            if store_ok and not self.store_full_since and connected and embedded_ok
            else "degraded",
            "broker": {
                "mode": "external" if self.config.mqtt_url else "embedded",
                "host": self.mqtt_host,
                "port": self.mqtt_port,
                "running": embedded_ok,
                "agent_connected": connected,
            },
            "store": {
                "ok": store_ok and self.store_full_since is None,
                "full": self.store_full_since is not None,
                "schema_version": store.schema_version if store else None,
            },
            "devices": store.device_status() if store else [],
            "sync": self._sync_health(),
            "rejected_messages": self.rejected_messages,
        }

    def _sync_health(self) -> dict[str, Any]:
        if self.sync is not None:
            return self.sync.health()
        store = self.store
        return {
            "enrolled": bool(store and SyncStore(store).is_enrolled()),
            "running": False,
            "last_success": store.get_setting("sync_last_success") if store else None,
            "queued_events": store.outbox_depth() if store else None,
        }

    def status(self) -> dict[str, Any]:
        store = self.store
        return {
            "library_id": self.config.library_id,
            "occupancy": store.occupancy() if store else 0,
            "lockdown": bool(self.doors and self.doors.lockdown),
            "alerts": list(store.open_alerts()) if store else [],
            "recent_events": list(self.events.recent) if self.events else [],
        }
