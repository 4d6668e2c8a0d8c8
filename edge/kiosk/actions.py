"""Staff actions at the desk; each is recorded (store + outbox for the cloud) and announced live."""

from __future__ import annotations

from typing import Any

from edge.kiosk.views import KioskAgent
from edge.store import iso, utcnow


class ActionRefused(ValueError):
    """A desk action with bad input (unknown door, alert, direction); shown to staff, never a 500."""


def _parts(agent: KioskAgent) -> tuple[Any, Any, Any]:
    if agent.store is None or agent.events is None or agent.doors is None:
        raise ActionRefused("the agent is still starting")
    return agent.store, agent.events, agent.doors


def door_ids(agent: KioskAgent) -> list[str]:
    return sorted(agent.doors.actuators) if agent.doors is not None else []


def _known_door(agent: KioskAgent, door_id: str) -> str:
    if door_id not in door_ids(agent):
        raise ActionRefused(f"unknown door {door_id!r}")
    return door_id


async def manual_checkin(
    agent: KioskAgent, staff: dict[str, Any], door_id: str, direction: str, who: str
) -> str:
    store, events, _ = _parts(agent)
    if direction not in ("in", "out"):
        raise ActionRefused("direction is in or out")
    door = _known_door(agent, door_id)
    name = who.strip()[:80] or None
    now = utcnow()
    payload = {
        "door_id": door,
        "direction": direction,
        "occurred_at": iso(now),
        "method": "manual",
        "holder": name,
        "staff_id": staff["sub"],
    }
    event_id: str = store.record_checkin(
        pass_id=None,
        holder=name,
        door_id=door,
        direction=direction,
        method="manual",
        at=now,
        outbox_payload=payload,
    )
    kind = "checkin" if direction == "in" else "checkout"
    await events.emit(kind, payload | {"event_id": event_id, "occupancy": store.occupancy()}, now)
    return event_id


async def remote_unlock(agent: KioskAgent, staff: dict[str, Any], door_id: str) -> str:
    store, events, doors = _parts(agent)
    door = _known_door(agent, door_id)
    now = utcnow()
    payload = {"door_id": door, "staff_id": staff["sub"], "staff_name": staff.get("name"), "at": iso(now)}
    event_id: str = store.enqueue("remote_unlock", payload, now)
    await doors.open(door)
    await events.emit("remote_unlock", payload | {"event_id": event_id}, now)
    return event_id


async def acknowledge_alert(agent: KioskAgent, staff: dict[str, Any], alert_id: str) -> None:
    store, events, _ = _parts(agent)
    now = utcnow()
    with store.transaction():
        cursor = store.db.execute(
            "UPDATE alerts SET cleared_at = ? WHERE id = ? AND cleared_at IS NULL", [iso(now), alert_id]
        )
        if cursor.rowcount != 1:
            raise ActionRefused("no such open alert")
    payload = {"alert_id": alert_id, "staff_id": staff["sub"], "at": iso(now)}
    store.enqueue("alert_acknowledged", payload, now)
    await events.emit("alert_acknowledged", payload, now)
