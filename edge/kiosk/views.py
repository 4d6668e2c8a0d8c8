"""What the kiosk shows, read straight from the agent's store: one JSON-able snapshot."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from edge.config import EdgeConfig
from edge.doors import DoorService
from edge.events import EventBus
from edge.kiosk.charts import energy_panel, environment_panel
from edge.kiosk.seatmap import BookingTiming, expected_arrivals, seat_map, todays_passes
from edge.store import Store, utcnow

FEED_SIZE = 20


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


def checkin_feed(store: Store, events: EventBus | None, zone: ZoneInfo) -> list[dict[str, Any]]:
    """Accepted entries/exits (checkins table) and rejected scans with their reasons, newest first."""
    accepted = [
        {
            "at": row["occurred_at"],
            "accepted": True,
            "direction": row["direction"],
            "door_id": row["door_id"],
            "who": row["holder"] or row["pass_id"] or "anonymous",
            "method": row["method"],
            "reason": "",
        }
        for row in store.db.query("SELECT * FROM checkins ORDER BY seq DESC LIMIT ?", [FEED_SIZE])
    ]
    feed = sorted(accepted + _rejections(store, events), key=lambda item: item["at"], reverse=True)
    return [item | {"local": _local(item["at"], zone)} for item in feed[:FEED_SIZE]]


def _battery_percent(value: str | None) -> int | None:
    try:
        return max(0, min(100, round(float(value)))) if value is not None else None
    except (ValueError, OverflowError):  # garbage or nan/inf from a device
        return None


def devices_panel(store: Store, zone: ZoneInfo) -> list[dict[str, Any]]:
    """Every device: online/offline, last seen (local time), battery % where the device reports one."""
    batteries = {
        row["device_id"]: _battery_percent(row["value"])
        for row in store.db.query("SELECT device_id, value FROM device_state WHERE entity = 'battery'")
    }
    return [
        device
        | {"last_seen_local": _local(device["last_seen"], zone), "battery": batteries.get(device["id"])}
        for device in store.device_status()
    ]


def booking_timing(agent: KioskAgent) -> BookingTiming:
    settings = agent.config.kiosk
    return BookingTiming(
        checkin_open=timedelta(minutes=settings.checkin_open_minutes),
        no_show_grace=timedelta(minutes=settings.no_show_grace_minutes),
    )


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


def snapshot(agent: KioskAgent) -> dict[str, Any]:
    store = agent.store
    if store is None:
        return {"ready": False}
    zone = library_zone(agent)
    now = utcnow()
    timing = booking_timing(agent)
    today = todays_passes(store, now, zone, timing)
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
        "environment": environment_panel(store, zone, now),
        "energy": energy_panel(store, zone, now),
        "seat_map": seat_map(store, today, now, zone, timing.no_show_grace),
        "arrivals": expected_arrivals(today, now, zone, timing.no_show_grace),
    }
