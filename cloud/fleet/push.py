"""Apply a pushed batch: each event at most once (unique id), answered per event."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import text
from sqlalchemy.orm import Session

from cloud.audit import service as audit
from cloud.errors import ApiError
from cloud.fleet.hooks import (
    EventAlreadyApplied,
    EventRejected,
    edge_checkin,
    event_handler,
    mark_consumed,
    run_checkin_hooks,
)
from cloud.fleet.models import EdgeCommand, EdgeEventRow
from cloud.fleet.service import DeviceKey
from shared.sync import MAX_EVENTS_PER_BATCH, SALE_PAYLOADS, EdgeEvent, EventKind, EventResult, PushResult

MAX_FUTURE = dt.timedelta(hours=1)
MAX_PAST = dt.timedelta(days=30)
PASS_ID = re.compile(r"[0-9a-f]{16}")


class _Envelope(BaseModel):
    """The batch without its events, which are validated one by one so one bad event is rejected alone."""

    model_config = ConfigDict(extra="forbid")
    version: int
    device_id: uuid.UUID
    sent_at: AwareDatetime
    clock: AwareDatetime
    events: list[Any] = Field(max_length=MAX_EVENTS_PER_BATCH)


@dataclass(frozen=True)
class EdgeReport:
    """What the edge reports about itself in headers next to the batch."""

    agent_version: str | None
    queue_depth: int | None
    dead_letters: int | None


def parse_envelope(raw: Any, device: DeviceKey) -> _Envelope:
    try:
        envelope = _Envelope.model_validate(raw)
    except ValidationError as exc:
        details = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()[:20]]
        raise ApiError(422, "invalid_batch", "the batch is not valid", details) from None
    if envelope.version != 1:
        raise ApiError(422, "unsupported_version", f"sync version {envelope.version} is not supported")
    if envelope.device_id != device.device_id:
        raise ApiError(403, "wrong_device", "the batch names another device than the signing key's")
    return envelope


def _event_id(item: Any) -> uuid.UUID:
    try:
        return uuid.UUID(str(item["id"]))
    except (TypeError, KeyError, ValueError):
        raise ApiError(422, "invalid_batch", "every event needs a UUID id") from None


class TelemetryRow(BaseModel):
    model_config = ConfigDict(extra="ignore")
    sensor: str = Field(min_length=1, max_length=100)
    metric: str = Field(min_length=1, max_length=50)
    count: int = Field(gt=0)
    total: float
    minimum: float
    maximum: float
    last: float


class TelemetryMinute(BaseModel):
    """A `telemetry` event's payload: the closed minute's aggregates of every sensor metric."""

    model_config = ConfigDict(extra="ignore")
    minute: AwareDatetime
    rows: list[TelemetryRow] = Field(max_length=2000)


def _first_error(what: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    return f"invalid {what}: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}"[:300]


def _semantic_problem(event: EdgeEvent, now: dt.datetime) -> str | None:
    if event.occurred_at > now + MAX_FUTURE:
        return "occurred_at is in the future"
    if event.occurred_at < now - MAX_PAST:
        return "occurred_at is older than 30 days"
    payload = event.payload
    if event.kind in (EventKind.CHECKIN, EventKind.CHECKOUT):
        if not isinstance(payload.get("door_id"), str) or not payload["door_id"]:
            return "a check-in needs a door_id"
        pass_id = payload.get("pass_id")
        if pass_id is not None and not (isinstance(pass_id, str) and PASS_ID.fullmatch(pass_id)):
            return "pass_id must be 16 lowercase hex characters"
    if event.kind is EventKind.TELEMETRY and "rows" in payload:
        try:
            TelemetryMinute.model_validate(payload)
        except ValidationError as exc:
            return _first_error("telemetry", exc)
    if event.kind in SALE_PAYLOADS:
        try:
            SALE_PAYLOADS[event.kind].model_validate(payload)
        except ValidationError as exc:
            return _first_error(event.kind.value, exc)
    if event.kind is EventKind.COMMAND_ACK:
        try:
            uuid.UUID(str(payload.get("command_id")))
        except ValueError:
            return "a command_ack needs a command_id"
    return None


def _validate_events(
    items: list[Any], now: dt.datetime
) -> tuple[list[EdgeEvent], dict[uuid.UUID, EventResult]]:
    accepted: list[EdgeEvent] = []
    answered: dict[uuid.UUID, EventResult] = {}
    for item in items:
        event_id = _event_id(item)
        if event_id in answered:  # repeated inside the batch: the first one counts
            continue
        try:
            event = EdgeEvent.model_validate(item)
        except ValidationError as exc:
            first = exc.errors()[0]
            reason = f"invalid event: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
            answered[event_id] = EventResult(id=event_id, status="rejected", reason=reason[:300])
            continue
        problem = _semantic_problem(event, now)
        if problem is not None:
            answered[event_id] = EventResult(id=event_id, status="rejected", reason=problem)
            continue
        answered[event_id] = EventResult(id=event_id, status="applied")  # provisional
        accepted.append(event)
    return accepted, answered


def _command_of(session: Session, device: DeviceKey, event: EdgeEvent) -> EdgeCommand | None:
    command = session.get(EdgeCommand, uuid.UUID(str(event.payload["command_id"])))
    return command if command is not None and command.device_id == device.device_id else None


def _ack_command(session: Session, device: DeviceKey, event: EdgeEvent) -> None:
    command = _command_of(session, device, event)
    if command is not None and command.acked_at is None:
        command.acked_at = event.occurred_at
        command.result = {k: v for k, v in event.payload.items() if k != "command_id"}
        audit.record(
            session, f"fleet.command.{command.kind}.ack", tenant_id=device.tenant_id,
            target=f"edge_device:{device.device_id}",
            detail={"command_id": str(command.id), "result": command.result},
        )  # fmt: skip


def apply_push(
    session: Session, device: DeviceKey, raw: Any, *, now: dt.datetime, report: EdgeReport
) -> PushResult:
    """Validate and store the batch in the session's transaction (the caller commits)."""
    envelope = parse_envelope(raw, device)
    events, answered = _validate_events(envelope.events, now)
    # command acks are checked before insert so an unknown command is rejected, not stored
    for event in [e for e in events if e.kind is EventKind.COMMAND_ACK]:
        if _command_of(session, device, event) is None:
            answered[event.id] = EventResult(id=event.id, status="rejected", reason="unknown command_id")
            events.remove(event)
    for event in [e for e in events if event_handler(e.kind) is not None]:
        problem = _handle(session, device, event)
        if problem is not None:
            answered[event.id] = EventResult(id=event.id, status="rejected", reason=problem)
            events.remove(event)
    applied = _insert_new(session, device, events)
    for event in events:
        if event.id not in applied:
            answered[event.id] = EventResult(id=event.id, status="duplicate")
    _after_insert(session, device, [e for e in events if e.id in applied])
    record_contact(session, device, report, now=now, edge_clock=envelope.clock, applied=len(applied))
    return PushResult(results=list(answered.values()))


def _handle(session: Session, device: DeviceKey, event: EdgeEvent) -> str | None:
    """Run the registered handler of a new event in a savepoint (before the event row is stored, so
    a rejected event is not kept as applied); a known event id is left to `_insert_new` (duplicate)."""
    handler = event_handler(event.kind)
    if handler is None or session.get(EdgeEventRow, event.id) is not None:
        return None
    try:
        with session.begin_nested():
            handler(session, device, event)
    except EventRejected as exc:
        return str(exc)[:300]
    except EventAlreadyApplied:
        return None
    return None


# One statement with a fixed text and one JSON parameter per batch: a 500-row multi-VALUES insert
# was compiled by SQLAlchemy and re-parsed by psycopg on every push, and arrays as parameters are
# dumped element by element in Python; PostgreSQL parses the JSON in C.
_INSERT_EVENTS = text(
    """
    INSERT INTO edge_events (id, tenant_id, device_id, library_id, kind, occurred_at, payload)
    SELECT e.id, :tenant, :device, :library, e.kind, e.occurred_at, e.payload
    FROM jsonb_to_recordset(CAST(:events AS jsonb))
         AS e(id uuid, kind text, occurred_at timestamptz, payload jsonb)
    ON CONFLICT (id) DO NOTHING
    RETURNING id
    """
)


def _insert_new(session: Session, device: DeviceKey, events: list[EdgeEvent]) -> set[uuid.UUID]:
    """Store the events not stored yet (each id at most once, ever); returns the ids stored now."""
    if not events:
        return set()
    rows = [
        {"id": str(e.id), "kind": e.kind, "occurred_at": e.occurred_at.isoformat(), "payload": e.payload}
        for e in events
    ]
    params = {
        "tenant": device.tenant_id, "device": device.device_id, "library": device.library_id,
        "events": json.dumps(rows),
    }  # fmt: skip
    return set(session.scalars(_INSERT_EVENTS, params).all())


def _after_insert(session: Session, device: DeviceKey, events: list[EdgeEvent]) -> None:
    checkins = []
    _store_telemetry(
        session, device, [e for e in events if e.kind is EventKind.TELEMETRY and "rows" in e.payload]
    )
    for event in events:
        if event.kind is EventKind.COMMAND_ACK:
            _ack_command(session, device, event)
        elif event.kind in (EventKind.CHECKIN, EventKind.CHECKOUT):
            checkin = edge_checkin(
                event.id, event.kind.value, event.occurred_at, event.payload,
                tenant_id=device.tenant_id, library_id=device.library_id, device_id=device.device_id,
            )  # fmt: skip
            checkins.append(checkin)
    mark_consumed(session, run_checkin_hooks(session, checkins))


# Fixed text and one JSON parameter, as `_INSERT_EVENTS`: a multi-VALUES ORM insert was compiled
# by SQLAlchemy on every push (most of a one-event push's CPU time).
_UPSERT_TELEMETRY = text(
    """
    INSERT INTO edge_telemetry (tenant_id, library_id, edge_device_id, sensor, metric, minute, samples,
                                total, minimum, maximum, last)
    SELECT :tenant, :library, :device, r.sensor, r.metric, r.minute, r.samples, r.total, r.minimum,
           r.maximum, r.last
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(sensor text, metric text, minute timestamptz,
         samples integer, total double precision, minimum double precision, maximum double precision,
         last double precision)
    ON CONFLICT (library_id, sensor, metric, minute) DO UPDATE SET samples = excluded.samples,
        total = excluded.total, minimum = excluded.minimum, maximum = excluded.maximum, last = excluded.last
    """
)


def _store_telemetry(session: Session, device: DeviceKey, events: list[EdgeEvent]) -> None:
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for event in events:
        minute = TelemetryMinute.model_validate(event.payload)
        for row in minute.rows:
            at = minute.minute.isoformat()
            rows[(row.sensor, row.metric, at)] = {
                "sensor": row.sensor, "metric": row.metric, "minute": at, "samples": row.count,
                "total": row.total, "minimum": row.minimum, "maximum": row.maximum, "last": row.last,
            }  # fmt: skip
    if not rows:
        return
    params = {
        "tenant": device.tenant_id, "library": device.library_id, "device": device.device_id,
        "rows": json.dumps(list(rows.values())),
    }  # fmt: skip
    session.execute(_UPSERT_TELEMETRY, params)


_UPDATE_DEVICE = text(
    """
    UPDATE edge_devices SET last_seen_at = :now, clock_skew_seconds = :skew,
        events_received = events_received + :applied,
        agent_version = coalesce(:agent_version, agent_version),
        queue_depth = coalesce(:queue_depth, queue_depth),
        dead_letters = coalesce(:dead_letters, dead_letters)
    WHERE id = :device
    """
)


def record_contact(
    session: Session,
    device: DeviceKey,
    report: EdgeReport,
    *,
    now: dt.datetime,
    edge_clock: dt.datetime,
    applied: int = 0,
) -> None:
    """The device was seen now: its report, clock skew and event count, in one statement (no row load)."""
    params = {
        "device": device.device_id, "now": now, "skew": round((edge_clock - now).total_seconds(), 3),
        "applied": applied,
        "agent_version": report.agent_version[:50] if report.agent_version is not None else None,
        "queue_depth": report.queue_depth, "dead_letters": report.dead_letters,
    }  # fmt: skip
    session.execute(_UPDATE_DEVICE, params)
