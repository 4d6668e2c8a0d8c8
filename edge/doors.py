"""Doors: scan → decision → UNLOCK → confirmation → re-lock; exit button; door alarms.

A door is driven through a `DoorActuator`: an ESPHome lock over MQTT or a strike relay on the Pi's
GPIO. Everything above the actuator is the same for both.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from edge.checkin import CheckinDesk, Decision, Door, RejectReason
from edge.config import CheckinSettings
from edge.events import EventBus
from edge.store import DeviceRecord, Store, iso, utcnow
from shared.topics import LOCK, OFF, ON, Component, DeviceKind, command_topic, entity

log = logging.getLogger(__name__)

Publisher = Callable[[str, str], Awaitable[None]]
_UNLOCKED_STATES = {"UNLOCKED", "UNLOCKING", "OPEN", "OPENING"}
_LOCKED_STATES = {"LOCKED", "LOCKING"}
FEEDBACK_SECONDS = 1.5


class DoorActuator(Protocol):
    async def command(self, command: str) -> None: ...


class MqttLock:
    """An ESPHome `lock` entity: commands go to its command topic, never retained."""

    def __init__(self, prefix: str, publish: Publisher) -> None:
        lock = entity(DeviceKind.DOOR, "lock")
        self.topic = command_topic(prefix, lock.component, lock.object_id)
        self.publish = publish

    async def command(self, command: str) -> None:
        await self.publish(self.topic, command)


@dataclass
class DoorRuntime:
    door_id: str
    lock_state: str | None = None
    contact_open: bool | None = None
    unlocked_by_us: bool = False
    expected: set[str] = field(default_factory=set)
    confirmed: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    def replace_task(self, name: str, task: asyncio.Task[None] | None) -> None:
        old = self.tasks.pop(name, None)
        if old is not None and old is not asyncio.current_task():
            old.cancel()
        if task is not None:
            self.tasks[name] = task


class DoorService:
    def __init__(
        self,
        *,
        store: Store,
        desk: CheckinDesk,
        events: EventBus,
        publish: Publisher,
        settings: CheckinSettings,
        held_open_seconds: float,
    ) -> None:
        self.store = store
        self.desk = desk
        self.events = events
        self.publish = publish
        self.settings = settings
        self.held_open_seconds = held_open_seconds
        self.actuators: dict[str, DoorActuator] = {}
        self.runtime: dict[str, DoorRuntime] = {}
        self.lockdown = False

    # -- wiring ---------------------------------------------------------------------------------
    def add_door(self, door_id: str, actuator: DoorActuator) -> None:
        self.actuators[door_id] = actuator
        self.runtime.setdefault(door_id, DoorRuntime(door_id))

    def add_mqtt_door(self, device: DeviceRecord) -> None:
        self.add_door(device.id, MqttLock(device.topic_prefix, self.publish))

    def door_for_scanner(self, device: DeviceRecord) -> Door | None:
        if device.kind == DeviceKind.DOOR:
            return Door(device.id, "in", device.zone)
        if device.door_id is None or device.door_id not in self.actuators:
            return None
        return Door(device.door_id, device.direction, device.zone)

    async def close(self) -> None:
        tasks = [task for runtime in self.runtime.values() for task in runtime.tasks.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- scans ----------------------------------------------------------------------------------
    async def handle_scan(self, scanner: DeviceRecord, scanned: bytes) -> Decision:
        now = utcnow()
        door = self.door_for_scanner(scanner)
        if door is None:
            decision = Decision(
                False, Door(scanner.id, scanner.direction), RejectReason.DOOR_NOT_ALLOWED, "no door"
            )
        elif self.lockdown and door.direction == "in":
            decision = Decision(False, door, RejectReason.DOOR_NOT_ALLOWED, "after-hours lockdown")
        else:
            decision = self.desk.decide(scanned, door, now)
        if decision.accepted:
            await self.open(decision.door.door_id)
        await self._feedback(scanner, decision.accepted)
        await self._announce(decision, now)
        return decision

    async def _announce(self, decision: Decision, now: datetime) -> None:
        payload = decision.event_payload() | {"occupancy": self.store.occupancy()}
        if decision.accepted:
            log.info("scan accepted at %s: %s", decision.door.door_id, payload.get("pass_id"))
            await self.events.emit("checkin" if decision.door.direction == "in" else "checkout", payload, now)
            return
        log.info("scan rejected at %s: %s (%s)", decision.door.door_id, decision.reason, decision.detail)
        if decision.reason == RejectReason.CONCURRENT_USE and decision.claims is not None:
            await self.events.alert(
                "pass_shared",
                decision.door.door_id,
                f"pass {decision.claims.pass_id} used at two doors at once",
            )
        self.store.enqueue("checkin_rejected", payload | {"occurred_at": iso(now)}, now)
        await self.events.emit("rejected", payload, now)

    async def _feedback(self, scanner: DeviceRecord, accepted: bool) -> None:
        role = "led_green" if accepted else "led_red"
        item = entity(DeviceKind(scanner.kind), role)
        topic = command_topic(scanner.topic_prefix, Component(item.component), item.object_id)
        await self._safe_publish(topic, ON)
        runtime = self.runtime.setdefault(f"feedback:{scanner.id}", DoorRuntime(scanner.id))
        runtime.replace_task(role, asyncio.create_task(self._later(FEEDBACK_SECONDS, topic, OFF)))

    async def _later(self, delay: float, topic: str, payload: str) -> None:
        await asyncio.sleep(delay)
        await self._safe_publish(topic, payload)

    async def _safe_publish(self, topic: str, payload: str) -> None:
        try:
            await self.publish(topic, payload)
        except Exception as exc:
            log.warning("publish to %s failed: %s", topic, exc)

    # -- exit button ----------------------------------------------------------------------------
    async def exit_pressed(self, door_id: str) -> None:
        now = utcnow()
        event_id = self.store.record_checkin(
            pass_id=None,
            holder=None,
            door_id=door_id,
            direction="out",
            method="exit_button",
            at=now,
            outbox_payload={"door_id": door_id, "direction": "out", "occurred_at": iso(now)},
        )
        await self.open(door_id)
        payload = {"door_id": door_id, "method": "exit_button", "event_id": event_id}
        await self.events.emit("checkout", payload | {"occupancy": self.store.occupancy()}, now)

    # -- lock commands and confirmation ----------------------------------------------------------
    async def open(self, door_id: str) -> None:
        runtime = self.runtime[door_id]
        runtime.unlocked_by_us = True
        await self._command(door_id, self.settings.unlock_command, _UNLOCKED_STATES)
        runtime.replace_task("relock", asyncio.create_task(self._relock_after(door_id)))

    async def lock(self, door_id: str) -> None:
        runtime = self.runtime[door_id]
        runtime.unlocked_by_us = False
        runtime.replace_task("relock", None)
        await self._command(door_id, LOCK, _LOCKED_STATES)

    async def door_back_online(self, door_id: str) -> None:
        """A door that reconnects during a lockdown missed the LOCK it should have."""
        if self.lockdown and door_id in self.runtime:
            await self.lock(door_id)

    async def _command(self, door_id: str, command: str, expected: set[str]) -> None:
        runtime = self.runtime[door_id]
        runtime.expected = expected
        runtime.confirmed.clear()
        try:
            await self.actuators[door_id].command(command)
        except Exception as exc:
            log.warning("door %s command %s failed: %s", door_id, command, exc)
        runtime.replace_task("confirm", asyncio.create_task(self._confirm(door_id, command)))

    async def _confirm(self, door_id: str, command: str) -> None:
        runtime = self.runtime[door_id]
        try:
            await asyncio.wait_for(runtime.confirmed.wait(), self.settings.lock_confirm_seconds)
        except TimeoutError:
            await self.events.alert(
                "lock_not_responding",
                door_id,
                f"lock did not confirm {command} within {self.settings.lock_confirm_seconds:g} s",
            )

    async def _relock_after(self, door_id: str) -> None:
        await asyncio.sleep(self.settings.relock_seconds)
        await self.lock(door_id)

    # -- state from the door ---------------------------------------------------------------------
    async def on_lock_state(self, door_id: str, state: str, *, live: bool) -> None:
        runtime = self.runtime.get(door_id)
        if runtime is None:
            return
        runtime.lock_state = state
        if live and state in runtime.expected:
            runtime.confirmed.set()
        if live and state == "JAMMED":
            await self.events.alert("lock_jammed", door_id, "lock reports JAMMED")

    async def on_contact(self, door_id: str, is_open: bool, *, live: bool) -> None:
        runtime = self.runtime.get(door_id)
        if runtime is None:
            return
        was_open = runtime.contact_open
        runtime.contact_open = is_open
        if not live or was_open == is_open:
            return
        if is_open:
            if not runtime.unlocked_by_us:
                await self.events.alert("forced_door", door_id, "door opened without an unlock")
            runtime.replace_task("held_open", asyncio.create_task(self._held_open(door_id)))
            return
        runtime.replace_task("held_open", None)
        if runtime.unlocked_by_us:
            await self.lock(door_id)

    async def _held_open(self, door_id: str) -> None:
        await asyncio.sleep(self.held_open_seconds)
        await self.events.alert(
            "door_held_open", door_id, f"door open for more than {self.held_open_seconds:g} s"
        )

    async def lockdown_now(self) -> None:
        self.lockdown = True
        for door_id in self.actuators:
            await self.lock(door_id)
