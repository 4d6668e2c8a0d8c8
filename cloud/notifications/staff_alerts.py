"""Staff alerts from the edge: an `alert` event pushed by sync notifies the library's owners and staff.

The handler runs inside the push transaction (device's tenant scope), before the event row is
stored, so the outbox rows commit with it; the dedupe key carries the edge event id, so a replayed
batch never notifies twice. An alert kind missing from `EDGE_ALERT_KINDS` is stored by the push but
notifies nobody (logged).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from typing import Any

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from cloud.catalog.models import LibraryRecord
from cloud.fleet.hooks import register_event_handler
from cloud.fleet.service import DeviceKey
from cloud.identity.roles import Role
from cloud.models_common import utcnow
from cloud.notifications import outbox
from cloud.notifications.kinds import ChannelKind, EventKind
from cloud.notifications.planning import RecipientProfile, plan_rows
from cloud.notifications.push_tokens import device_tokens
from shared.sync import EdgeEvent
from shared.sync import EventKind as SyncKind

log = logging.getLogger("studyspot.notifications.alerts")

# The edge's alert names (edge/doors.py, edge/rules.py, edge/agent.py) -> our event kinds.
EDGE_ALERT_KINDS: dict[str, EventKind] = {
    "forced_door": EventKind.DOOR_FORCED,
    "door_held_open": EventKind.DOOR_HELD_OPEN,
    "lock_not_responding": EventKind.LOCK_NOT_RESPONDING,
    "lock_jammed": EventKind.LOCK_NOT_RESPONDING,  # a jammed lock obeys no command either
    "device_offline": EventKind.DEVICE_OFFLINE,
    "co2_high": EventKind.CO2_HIGH,
    "energy_budget": EventKind.ENERGY_BUDGET_EXCEEDED,
}
# Raised by the edge and kept in the cloud, but no message: the kiosk shows them to the desk.
SILENT_EDGE_ALERTS = frozenset({"pass_shared", "mqtt_flood", "store_full"})

STAFF_ROLES = (Role.LIBRARY_OWNER.value, Role.LIBRARY_STAFF.value)
ALERT_CHANNELS = (ChannelKind.EMAIL, ChannelKind.PUSH, ChannelKind.CONSOLE)

_HELD = re.compile(r"more than ([0-9.]+) s")
_CO2 = re.compile(r"CO2 ([0-9.]+) ppm")
_ENERGY = re.compile(r"([0-9.]+) kWh today, budget ([0-9.]+) kWh")


def install() -> None:
    """Register the `alert` event handler with the fleet push (idempotent)."""
    register_event_handler(SyncKind.ALERT.value, apply_alert)


def apply_alert(session: Session, device: DeviceKey, event: EdgeEvent) -> None:
    """Queue the alert's messages; never rejects the event (an alert is stored whatever happens here)."""
    edge_kind = event.payload.get("kind")
    kind = EDGE_ALERT_KINDS.get(edge_kind) if isinstance(edge_kind, str) else None
    if kind is None:
        if edge_kind not in SILENT_EDGE_ALERTS:
            log.warning("unknown edge alert kind %r: stored, nobody notified", edge_kind)
        return
    try:
        with session.begin_nested():
            queued = outbox.enqueue(session, alert_rows(session, device, event, kind))
    except (SQLAlchemyError, ValidationError, ValueError):
        log.exception("could not queue %s for edge event %s", kind.value, event.id)
        return
    log.info("edge alert %s (%s): %d message(s) queued", kind.value, event.id, queued)


def alert_rows(session: Session, device: DeviceKey, event: EdgeEvent, kind: EventKind) -> list[Any]:
    library = session.get(LibraryRecord, device.library_id)
    if library is None:
        return []
    context = {"library_name": library.name, **_details(kind, event)}
    rows = []
    for user_id, email in staff_of(session, device.tenant_id):
        profile = RecipientProfile(
            user_id=user_id,
            email=email,
            device_tokens=device_tokens(session, user_id, device.tenant_id),
        )
        rows += plan_rows(
            kind, f"edge_event:{event.id}", profile, context,
            tenant_id=device.tenant_id, library_id=library.id, library_tz=library.timezone,
            now=utcnow(), channels=ALERT_CHANNELS,
        )  # fmt: skip
    return rows


def staff_of(session: Session, tenant_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
    """Active owners and staff of the tenant (their stored preferences apply at send time)."""
    rows = session.execute(
        text(
            "SELECT DISTINCT u.id, u.email FROM memberships m JOIN users u ON u.id = m.user_id"
            " WHERE m.tenant_id = :tenant AND m.role = ANY(:roles) AND m.status = 'active'"
            " AND u.status = 'active'"
        ),
        {"tenant": tenant_id, "roles": list(STAFF_ROLES)},
    )
    return [(row.id, row.email) for row in rows]


def _details(kind: EventKind, event: EdgeEvent) -> dict[str, Any]:
    """Template context from the payload: `device_id` names the door or sensor, `message` has the figures."""
    payload = event.payload
    source = str(payload.get("device_id") or "unknown device")[:100]
    message = str(payload.get("message") or "")
    at: dt.datetime = event.occurred_at
    if kind is EventKind.DEVICE_OFFLINE:
        return {"device_name": source, "last_seen_at": at}
    if kind is EventKind.CO2_HIGH:
        return {"zone_name": source, "co2_ppm": _numbers(_CO2, message, event)[0], "occurred_at": at}
    if kind is EventKind.ENERGY_BUDGET_EXCEEDED:
        used, budget = _numbers(_ENERGY, message, event)
        return {"used_kwh": used, "budget_kwh": budget, "occurred_at": at}
    details: dict[str, Any] = {"door_name": source, "occurred_at": at}
    if kind is EventKind.DOOR_HELD_OPEN:
        details["held_seconds"] = _numbers(_HELD, message, event)[0]
    return details


def _numbers(pattern: re.Pattern[str], message: str, event: EdgeEvent) -> tuple[float, ...]:
    found = pattern.search(message)
    if found is None:
        log.warning("edge alert %s: no figures in %r", event.id, message[:200])
        return (0.0,) * pattern.groups
    return tuple(_plain(float(group)) for group in found.groups())


def _plain(value: float) -> float:
    return int(value) if value.is_integer() else value
