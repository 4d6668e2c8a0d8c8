"""Build a pull page: a delta since a server cursor, paginated by keyset, with a full resync when needed.

The cursor is opaque to the edge (base64url JSON). Rows are ordered by (updated_at, kind, id); a
cursor in the middle of a pull carries the fixed window and the last key served, so rows changing
meanwhile never shift a page (they come again in the next delta). Rows newer than `now - LAG` wait
for the next pull, so a transaction that started earlier but commits later is not skipped.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import json
import uuid
from dataclasses import dataclass
from typing import Any, cast

from pydantic import BaseModel, ValidationError
from sqlalchemy import TextClause, text
from sqlalchemy.orm import Session

from cloud.fleet.hooks import PullWindow, pass_sources, pass_sources_rows_sql
from cloud.fleet.service import DeviceKey
from shared.sync import (
    LibraryTiming,
    PassRecord,
    PlanRecord,
    PullResponse,
    RemoteCommand,
    Revocation,
    SeatRecord,
    StaffRecord,
)

PAGE_SIZE = 1000
LAG = dt.timedelta(seconds=2)
HORIZON = dt.timedelta(hours=48)
MAX_CURSOR_AGE = dt.timedelta(days=7)

Record = PassRecord | Revocation | StaffRecord | PlanRecord | SeatRecord
SortKey = tuple[str, str, str]  # (updated_at iso, kind, id)


class Cursor(BaseModel):
    v: int = 1
    issued: dt.datetime
    since: dt.datetime | None  # lower bound (exclusive) of the delta; None: everything
    until: dt.datetime  # upper bound (inclusive), fixed for the whole pagination
    horizon: dt.datetime
    previous_horizon: dt.datetime | None
    after: SortKey | None = None  # last key served; None when the delta is complete
    full: bool = False

    def encode(self) -> str:
        return base64.urlsafe_b64encode(self.model_dump_json().encode()).decode().rstrip("=")


def decode_cursor(text: str | None) -> Cursor | None:
    if not text:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return Cursor.model_validate(json.loads(raw))
    except (binascii.Error, ValueError, ValidationError, UnicodeDecodeError):
        return None


def _start(cursor: Cursor | None, now: dt.datetime) -> tuple[Cursor, bool]:
    """The window of this page, and whether it starts a full resync."""
    if cursor is None or cursor.v != 1 or now - cursor.issued > MAX_CURSOR_AGE or cursor.until > now:
        return Cursor(
            issued=now, since=None, until=now - LAG, horizon=now + HORIZON, previous_horizon=None, full=True
        ), True
    if cursor.after is not None:  # in the middle of a pagination
        return cursor, False
    until = max(now - LAG, cursor.until)
    fresh = Cursor(
        issued=now, since=cursor.until, until=until, horizon=now + HORIZON, previous_horizon=cursor.horizon
    )
    return fresh, False


@dataclass(frozen=True)
class _Item:
    key: SortKey
    record: Record


def _key(updated_at: dt.datetime, kind: str, ident: str) -> SortKey:
    return (updated_at.astimezone(dt.UTC).isoformat(), kind, ident)


_STAFF_SQL = """
    SELECT m.updated_at, m.status, m.pin_hash, m.role, u.id AS user_id, u.full_name, u.email,
           u.status AS user_status
    FROM memberships m JOIN users u ON u.id = m.user_id
    WHERE m.tenant_id = :tenant AND m.updated_at <= :until
      AND (CAST(:since AS timestamptz) IS NULL OR m.updated_at > :since)
"""
_STAFF = text(_STAFF_SQL)


def _pull_window(device: DeviceKey, window: Cursor, now: dt.datetime, page_size: int) -> PullWindow:
    return PullWindow(
        tenant_id=device.tenant_id,
        library_id=device.library_id,
        now=now,
        changed_after=window.since,
        changed_until=window.until,
        previous_horizon=window.previous_horizon,
        horizon=window.horizon,
        after=window.after,
        limit=page_size + 1,  # one more tells whether another page follows
    )


def _staff_items(session: Session, pull_window: PullWindow) -> list[_Item]:
    items = []
    for row in session.execute(_STAFF, pull_window.sql_params()):
        active = row.status == "active" and bool(row.pin_hash) and row.user_status == "active"
        if pull_window.changed_after is None and not active:
            continue  # a full resync only lists who may use the desk
        record = StaffRecord(
            user_id=row.user_id,
            name=(row.full_name or row.email)[:200],
            pin_hash=row.pin_hash or "",
            role=row.role,
            active=active,
        )
        items.append(_Item(_key(row.updated_at, "staff", str(row.user_id)), record))
    return items


def _source_items(session: Session, pull_window: PullWindow) -> list[_Item]:
    items = []
    for source in pass_sources():
        for updated_at, record in source(session, pull_window):
            items.append(_Item(_key(updated_at, *_kind_and_id(record)), record))
    return items


# By exact type: pydantic's model metaclass answers a failing isinstance() through ABCMeta, which
# took a fifth of a 1,000-pass page's CPU time. A subclass of a record falls back to isinstance().
_KINDS: dict[type, str] = {
    PassRecord: "pass",
    Revocation: "revocation",
    StaffRecord: "staff",
    PlanRecord: "plan",
    SeatRecord: "seat",
}


def _kind(record: Record) -> str:
    kind = _KINDS.get(type(record))
    if kind is not None:
        return kind
    return next(kind for cls, kind in _KINDS.items() if isinstance(record, cls))


def _kind_and_id(record: PassRecord | Revocation | PlanRecord | SeatRecord) -> tuple[str, str]:
    kind = _kind(record)
    if kind in ("plan", "seat"):
        return kind, str(cast(PlanRecord | SeatRecord, record).id)
    return kind, cast(PassRecord | Revocation, record).pass_id


def _change_queries(pull_window: PullWindow, window: Cursor) -> tuple[str, ...] | None:
    """The SELECTs of the staff and of every pass source, for a fresh delta: when none has a row, the
    pull is idle and skips them (asked in the device-state statement, from the very SELECTs that fetch
    the rows, so it cannot disagree with them). None mid-pagination, for a full resync, and when a
    source did not register its SQL."""
    if pull_window.changed_after is None or window.after is not None:
        return None
    queries = pass_sources_rows_sql()
    return None if queries is None else (_STAFF_SQL, *queries)


# What every page carries, in one statement: the device's config, the tenant's pass keys, the
# device's unacknowledged commands (at most 100, oldest first) and its library's booking times;
# first, whether a fresh delta has any row (see `_change_queries`).
_DEVICE_STATE = """
    d.config,
      (SELECT coalesce(json_object_agg(k.kid, k.public_key), '{}') FROM pass_signing_keys k
       WHERE k.tenant_id = d.tenant_id) AS pass_keys,
      (SELECT coalesce(json_agg(c ORDER BY c.issued_at), '[]') FROM (
         SELECT id, kind, args, issued_at, delivered_at FROM edge_commands
         WHERE device_id = d.id AND acked_at IS NULL ORDER BY issued_at LIMIT 100) c) AS commands,
      (SELECT json_build_object('checkin_open_minutes', l.checkin_open_minutes,
                                'no_show_grace_minutes', l.no_show_grace_minutes)
       FROM libraries l WHERE l.id = d.library_id) AS library
    FROM edge_devices d WHERE d.id = :device
"""
_MARK_DELIVERED = text(
    "UPDATE edge_commands SET delivered_at = :now WHERE id = ANY(:ids) AND delivered_at IS NULL"
)


@functools.lru_cache(maxsize=8)
def _device_state_statement(change_queries: tuple[str, ...] | None) -> TextClause:
    if change_queries is None:
        return text("SELECT NULL AS changed," + _DEVICE_STATE)
    changed = " OR ".join(f"EXISTS ({query})" for query in change_queries)
    return text(f"SELECT ({changed}) AS changed," + _DEVICE_STATE)


@dataclass(frozen=True)
class _DeviceState:
    config: dict[str, Any] | None
    pass_keys: dict[str, str]
    commands: list[RemoteCommand]
    library: LibraryTiming | None = None
    nothing_changed: bool = False  # a fresh delta with no row to fetch


def _device_state(
    session: Session, device: DeviceKey, now: dt.datetime, pull_window: PullWindow, window: Cursor
) -> _DeviceState:
    """Config, pass keys and commands; every unacknowledged command comes again on each pull until
    acked (the edge dedupes by id), and is marked delivered the first time."""
    statement = _device_state_statement(_change_queries(pull_window, window))
    row = session.execute(statement, {"device": device.device_id, **pull_window.sql_params()}).first()
    if row is None:
        return _DeviceState(None, {}, [])
    first_delivery = [command["id"] for command in row.commands if command["delivered_at"] is None]
    if first_delivery:
        session.execute(_MARK_DELIVERED, {"now": now, "ids": [uuid.UUID(i) for i in first_delivery]})
    commands = [RemoteCommand.model_validate(command) for command in row.commands]  # extra fields ignored
    library = LibraryTiming.model_validate(row.library) if row.library is not None else None
    return _DeviceState(row.config, row.pass_keys, commands, library, nothing_changed=row.changed is False)


def _items(session: Session, pull_window: PullWindow, window: Cursor) -> list[_Item]:
    """The page's candidates."""
    items = _staff_items(session, pull_window) + _source_items(session, pull_window)
    items.sort(key=lambda item: item.key)
    if window.after is not None:
        after = tuple(window.after)
        items = [item for item in items if item.key > after]
    return items


def build_pull(
    session: Session,
    device: DeviceKey,
    cursor_text: str | None,
    *,
    now: dt.datetime,
    page_size: int = PAGE_SIZE,
) -> PullResponse:
    window, full = _start(decode_cursor(cursor_text), now)
    pull_window = _pull_window(device, window, now, page_size)
    state = _device_state(session, device, now, pull_window, window)
    items = [] if state.nothing_changed else _items(session, pull_window, window)
    page, has_more = items[:page_size], len(items) > page_size
    if has_more:
        next_cursor = window.model_copy(update={"after": page[-1].key, "full": False})
    else:
        next_cursor = window.model_copy(update={"after": None, "full": False, "issued": now})
    by_kind: dict[str, list[Any]] = {kind: [] for kind in _KINDS.values()}
    for item in page:
        by_kind[item.key[1]].append(item.record)  # the sort key's kind
    return PullResponse(
        cursor=next_cursor.encode(),
        has_more=has_more,
        full_resync=full,
        passes=by_kind["pass"],
        revocations=by_kind["revocation"],
        staff=by_kind["staff"],
        plans=by_kind["plan"],
        seats=by_kind["seat"],
        config=state.config,
        commands=state.commands,
        pass_keys=state.pass_keys,
        library=state.library,
    )
