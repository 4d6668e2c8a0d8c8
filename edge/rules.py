"""Building rules from the config: after-hours lockdown, empty room, CO2, energy budget.

Door rules (held open, forced) live with the doors. Each rule here is driven by readings and by
`tick(now)`, which the agent calls every few seconds; passing `now` in keeps them testable.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from edge.config import RulesSettings
from edge.devices import DeviceDirectory
from edge.doors import DoorService
from edge.events import EventBus
from edge.store import Store
from shared.topics import OFF, ON, DeviceKind, command_topic, entity

log = logging.getLogger(__name__)

Publisher = Callable[[str, str], Awaitable[None]]
_CO2_HYSTERESIS = 0.9


def within_hours(local: time, open_at: time, close_at: time) -> bool:
    if open_at <= close_at:
        return open_at <= local < close_at
    return local >= open_at or local < close_at  # open across midnight


class RulesEngine:
    def __init__(
        self,
        *,
        settings: RulesSettings,
        store: Store,
        directory: DeviceDirectory,
        doors: DoorService,
        events: EventBus,
        publish: Publisher,
    ) -> None:
        self.settings = settings
        self.zone = ZoneInfo(settings.timezone)
        self.store = store
        self.directory = directory
        self.doors = doors
        self.events = events
        self.publish = publish
        self.last_activity: datetime | None = None
        self.comfort_off = False
        self.co2_high: set[str] = set()
        self.budget_alerted_on: str | None = None

    async def switch_relay(self, device_id: str, on: bool) -> None:
        device = self.directory.get(device_id)
        if device is None or device.kind != DeviceKind.RELAY:
            log.warning("rule names unknown relay %s", device_id)
            return
        relay = entity(DeviceKind.RELAY, "relay")
        try:
            await self.publish(
                command_topic(device.topic_prefix, relay.component, relay.object_id), ON if on else OFF
            )
        except Exception as exc:
            log.warning("relay %s not switched: %s", device_id, exc)
        await self.events.emit("rule_action", {"relay": device_id, "state": ON if on else OFF})

    # -- inputs ---------------------------------------------------------------------------------
    def activity(self, now: datetime) -> None:
        """Someone moved or came in: the room is not empty."""
        self.last_activity = now
        self.comfort_off = False

    async def on_reading(self, device_id: str, role: str, value: float, now: datetime) -> None:
        if role == "co2":
            await self._co2(device_id, value)
        elif role == "energy":
            await self._energy(device_id, now)

    async def _co2(self, device_id: str, ppm: float) -> None:
        threshold = self.settings.co2_threshold_ppm
        if ppm > threshold and device_id not in self.co2_high:
            self.co2_high.add(device_id)
            await self.events.alert("co2_high", device_id, f"CO2 {ppm:.0f} ppm above {threshold:.0f} ppm")
            if self.settings.ventilation_relay:
                await self.switch_relay(self.settings.ventilation_relay, True)
        elif ppm < threshold * _CO2_HYSTERESIS and device_id in self.co2_high:
            self.co2_high.discard(device_id)
            if self.settings.ventilation_relay:
                await self.switch_relay(self.settings.ventilation_relay, False)

    async def _energy(self, device_id: str, now: datetime) -> None:
        budget = self.settings.energy_daily_budget_kwh
        if budget is None:
            return
        local_day = now.astimezone(self.zone).date()
        if self.budget_alerted_on == local_day.isoformat():
            return
        midnight = datetime.combine(local_day, time(0), tzinfo=self.zone)
        used = self.store.energy_since(device_id, midnight)
        if used > budget:
            self.budget_alerted_on = local_day.isoformat()
            await self.events.alert(
                "energy_budget", device_id, f"{used:.2f} kWh today, budget {budget:g} kWh"
            )

    # -- time-driven ----------------------------------------------------------------------------
    async def tick(self, now: datetime) -> None:
        await self._after_hours(now)
        await self._empty_room(now)

    async def _after_hours(self, now: datetime) -> None:
        open_at, close_at = self.settings.open_at, self.settings.close_at
        if open_at is None or close_at is None:
            return
        closed = not within_hours(now.astimezone(self.zone).time(), open_at, close_at)
        if closed and not self.doors.lockdown:
            await self.doors.lockdown_now()
            await self.events.emit("rule_action", {"rule": "after_hours", "lockdown": True}, now)
        elif not closed and self.doors.lockdown:
            self.doors.lockdown = False
            await self.events.emit("rule_action", {"rule": "after_hours", "lockdown": False}, now)

    async def _empty_room(self, now: datetime) -> None:
        if self.comfort_off or not self.settings.comfort_relays:
            return
        if self.last_activity is None:
            self.last_activity = now
        quiet = now - self.last_activity >= timedelta(minutes=self.settings.empty_room_minutes)
        if quiet and self.store.occupancy() == 0:
            self.comfort_off = True
            for relay_id in self.settings.comfort_relays:
                await self.switch_relay(relay_id, False)
