"""What the kiosk shows, read straight from the agent's store: one JSON-able snapshot."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from edge.config import EdgeConfig
from edge.doors import DoorService
from edge.events import EventBus
from edge.kiosk.charts import energy_panel, environment_panel
from edge.kiosk.seatmap import BookingTiming, expected_arrivals, seat_map, todays_passes
from edge.store import LIBRARY_TIMING_SETTING, Store, utcnow
from shared.sync import LibraryTiming

FEED_SIZE = 20
log = logging.getLogger(__name__)


class KioskAgent(Protocol):
    """The parts of the agent the kiosk reads and acts through (the agent passes itself)."""

    @property
    def config(self) -> EdgeConfig: ...
    @property
    def store(self) -> Store | None: ...
    @property
    def events(self) -> EventBus | None: ...
    @property
    def doors(self) -> DoorService | None: ...

    def health(self) -> dict[str, Any]: ...

    def status(self) -> dict[str, Any]: ...


def library_zone(agent: KioskAgent) -> ZoneInfo:
    return ZoneInfo(agent.config.rules.timezone)


def _local(stamp: str | None, zone: ZoneInfo) -> str:
    if not stamp:
        return "never"
    try:
        return datetime.fromisoformat(stamp).astimezone(zone).strftime("%H:%M:%S")
    except ValueError:
        return stamp


def _rejection(at: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "at": at,
        "accepted": False,
        "direction": payload.get("direction") or "in",
        "door_id": payload.get("door_id") or "",
        "who": payload.get("holder") or payload.get("pass_id") or "unknown pass",
        "method": "scan",
        "reason": " — ".join(str(p) for p in (payload.get("reason"), payload.get("detail")) if p),
    }


def _rejections(store: Store, events: EventBus | None) -> list[dict[str, Any]]:
    """Rejected scans: queued ones from the outbox (survive a restart) and, since sync deletes what the
    cloud took, the ones the event bus saw since the agent started."""
    queued = [
        _rejection(row["occurred_at"], json.loads(row["payload"]))
        for row in store.db.query(
            "SELECT occurred_at, payload FROM outbox WHERE kind = 'checkin_rejected'"
            " ORDER BY occurred_at DESC LIMIT ?",
            [FEED_SIZE],
        )
    ]
    recent = [
        _rejection(event["at"], event)
        for event in (events.recent if events else ())
        if event.get("kind") == "rejected"
    ]
    unique = {(item["at"], item["door_id"]): item for item in queued + recent}
    return list(unique.values())


def _who(row: dict[str, Any]) -> str:
    """The holder's name and seat when the pass was synced, else the short id from the pass."""
    who = row["holder_name"] or row["holder"] or row["pass_id"] or "anonymous"
    return f"{who} (seat {row['seat_label']})" if row["seat_label"] else who


def checkin_feed(store: Store, events: EventBus | None, zone: ZoneInfo) -> list[dict[str, Any]]:
    """Accepted entries/exits (checkins table) and rejected scans with their reasons, newest first."""
    accepted = [
        {
            "at": row["occurred_at"],
            "accepted": True,
            "direction": row["direction"],
            "door_id": row["door_id"],
            "who": _who(row),
            "method": row["method"],
            "reason": "",
        }
        for row in store.db.query(
            "SELECT c.*, p.holder_name, p.seat_label FROM checkins c"
            " LEFT JOIN passes p ON p.pass_id = c.pass_id ORDER BY c.seq DESC LIMIT ?",
            [FEED_SIZE],
        )
    ]
    feed = sorted(accepted + _rejections(store, events), key=lambda item: item["at"], reverse=True)
    return [item | {"local": _local(item["at"], zone)} for item in feed[:FEED_SIZE]]


def _battery_percent(value: str | None) -> int | None:
    try:
        return max(0, min(100, round(float(value)))) if value is not None else None
    except (ValueError, OverflowError):  # garbage or nan/inf from a device
        return None


def devices_panel(store: Store, zone: ZoneInfo) -> list[dict[str, Any]]:
    """Every device: online/offline, a door's lock state, last seen (local time), battery % where reported."""
    states = store.db.query(
        "SELECT device_id, entity, value FROM device_state WHERE entity IN ('battery', 'lock')"
    )
    batteries: dict[str, int | None] = {}
    locks: dict[str, str] = {}
    for row in states:
        if row["entity"] == "battery":
            batteries[row["device_id"]] = _battery_percent(row["value"])
        else:
            locks[row["device_id"]] = str(row["value"])[:12]
    return [
        device
        | {
            "last_seen_local": _local(device["last_seen"], zone),
            "battery": batteries.get(device["id"]),
            "lock": locks.get(device["id"]),
        }
        for device in store.device_status()
    ]


def booking_timing(agent: KioskAgent) -> BookingTiming:
    """The library's check-in opening and no-show grace: as last synced from the cloud (where the owner
    sets them), else the edge config's."""
    settings = agent.config.kiosk
    opens, grace = settings.checkin_open_minutes, settings.no_show_grace_minutes
    synced = agent.store.get_setting(LIBRARY_TIMING_SETTING) if agent.store is not None else None
    if synced is not None:
        try:
            timing = LibraryTiming.model_validate_json(synced)
            opens, grace = timing.checkin_open_minutes, timing.no_show_grace_minutes
        except ValidationError:
            log.warning("ignoring an unreadable synced library timing: %.80s", synced)
    return BookingTiming(checkin_open=timedelta(minutes=opens), no_show_grace=timedelta(minutes=grace))


def sync_panel(store: Store) -> dict[str, Any]:
    dead: int | None = None
    try:
        from edge.sync_store import SyncStore

        dead = SyncStore(store).dead_letter_count()
    except ImportError:  # an agent built without sync has no dead letters to show
        pass
    return {
        "last_success": store.get_setting("sync_last_success"),
        "queue_depth": store.outbox_depth(),
        "dead_letters": dead,
    }


@dataclass
class DayPanelCache:
    """The day panels (seats, arrivals, energy, environment) change only when the store is written or
    the minute turns; every open desk page polls 2x a second, so they are rebuilt only then."""

    key: tuple[int, int, datetime] | None = None
    panels: dict[str, Any] = field(default_factory=dict)

    def get(self, store: Store, now: datetime, build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        key = (id(store), store.db.conn.total_changes, now.replace(second=0, microsecond=0))
        if key != self.key:
            self.panels, self.key = build(), key
        return self.panels


def day_panels(agent: KioskAgent, store: Store, zone: ZoneInfo, now: datetime) -> dict[str, Any]:
    timing = booking_timing(agent)
    today = todays_passes(store, now, zone, timing)
    return {
        "environment": environment_panel(store, zone, now),
        "energy": energy_panel(store, zone, now),
        "seat_map": seat_map(store, today, now, zone, timing.no_show_grace),
        "arrivals": expected_arrivals(today, now, zone, timing.no_show_grace),
    }


def snapshot(agent: KioskAgent, cache: DayPanelCache | None = None) -> dict[str, Any]:
    store = agent.store
    if store is None:
        return {"ready": False}
    zone = library_zone(agent)
    now = utcnow()
    panels = (cache or DayPanelCache()).get(store, now, lambda: day_panels(agent, store, zone, now))
    return {
        "ready": True,
        "library_id": agent.config.library_id,
        "occupancy": store.occupancy(),
        "lockdown": bool(agent.doors and agent.doors.lockdown),
        "feed": checkin_feed(store, agent.events, zone),
        "devices": devices_panel(store, zone),
        "alerts": [alert | {"local": _local(alert["raised_at"], zone)} for alert in store.open_alerts()],
        "sync": sync_panel(store)
        | {"last_success_local": _local(store.get_setting("sync_last_success"), zone)},
    } | panels
