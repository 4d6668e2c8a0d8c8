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
import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.fleet.hooks import PullWindow, pass_sources
from cloud.fleet.models import EdgeCommand, EdgeDevice
from cloud.fleet.service import DeviceKey
from cloud.identity.models import User
from cloud.tenancy.models import Membership
from cloud.tenancy.passkeys import pass_public_keys_text
from shared.sync import (
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


def _staff_items(session: Session, device: DeviceKey, window: Cursor) -> list[_Item]:
    query = (
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.tenant_id == device.tenant_id, Membership.updated_at <= window.until)
    )
    if window.since is not None:
        query = query.where(Membership.updated_at > window.since)
    items = []
    for membership, user in session.execute(query).all():
        active = membership.status == "active" and bool(membership.pin_hash) and user.status == "active"
        if window.since is None and not active:
            continue  # a full resync only lists who may use the desk
        record = StaffRecord(
            user_id=user.id,
            name=(user.full_name or user.email)[:200],
            pin_hash=membership.pin_hash or "",
            role=membership.role,
            active=active,
        )
        items.append(_Item(_key(membership.updated_at, "staff", str(user.id)), record))
    return items


def _source_items(session: Session, device: DeviceKey, window: Cursor, now: dt.datetime) -> list[_Item]:
    pull_window = PullWindow(
        tenant_id=device.tenant_id,
        library_id=device.library_id,
        now=now,
        changed_after=window.since,
        changed_until=window.until,
        previous_horizon=window.previous_horizon,
        horizon=window.horizon,
    )
    items = []
    for source in pass_sources():
        for updated_at, record in source(session, pull_window):
            items.append(_Item(_key(updated_at, *_kind_and_id(record)), record))
    return items


def _kind_and_id(record: PassRecord | Revocation | PlanRecord | SeatRecord) -> tuple[str, str]:
    if isinstance(record, PlanRecord):
        return "plan", str(record.id)
    if isinstance(record, SeatRecord):
        return "seat", str(record.id)
    return ("pass" if isinstance(record, PassRecord) else "revocation"), record.pass_id


def _deliver_commands(session: Session, device: DeviceKey, now: dt.datetime) -> list[RemoteCommand]:
    """Every unacknowledged command, again on each pull until acked (the edge dedupes by id)."""
    rows = session.scalars(
        select(EdgeCommand)
        .where(EdgeCommand.device_id == device.device_id, EdgeCommand.acked_at.is_(None))
        .order_by(EdgeCommand.issued_at)
        .limit(100)
    ).all()
    for row in rows:
        row.delivered_at = row.delivered_at or now
    return [RemoteCommand(id=row.id, kind=row.kind, args=row.args, issued_at=row.issued_at) for row in rows]


def build_pull(
    session: Session,
    device: DeviceKey,
    cursor_text: str | None,
    *,
    now: dt.datetime,
    page_size: int = PAGE_SIZE,
) -> PullResponse:
    window, full = _start(decode_cursor(cursor_text), now)
    items = _staff_items(session, device, window) + _source_items(session, device, window, now)
    items.sort(key=lambda item: item.key)
    if window.after is not None:
        after = tuple(window.after)
        items = [item for item in items if item.key > after]
    page, has_more = items[:page_size], len(items) > page_size
    if has_more:
        next_cursor = window.model_copy(update={"after": page[-1].key, "full": False})
    else:
        next_cursor = window.model_copy(update={"after": None, "full": False, "issued": now})
    row = session.get(EdgeDevice, device.device_id)
    config: dict[str, Any] | None = row.config if row is not None else None
    return PullResponse(
        cursor=next_cursor.encode(),
        has_more=has_more,
        full_resync=full,
        passes=[i.record for i in page if isinstance(i.record, PassRecord)],
        revocations=[i.record for i in page if isinstance(i.record, Revocation)],
        staff=[i.record for i in page if isinstance(i.record, StaffRecord)],
        plans=[i.record for i in page if isinstance(i.record, PlanRecord)],
        seats=[i.record for i in page if isinstance(i.record, SeatRecord)],
        config=config,
        commands=_deliver_commands(session, device, now),
        pass_keys=pass_public_keys_text(session, device.tenant_id),
    )
