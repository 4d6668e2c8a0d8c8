"""Extension points for the booking domain, so fleet never imports it and it never imports fleet's routes.

- Check-ins pushed by an edge are stored in `edge_events`; every registered check-in hook is called
  for each newly applied check-in/out inside the push transaction (in a savepoint: a failing hook
  is logged and the event stays unconsumed for `pending_checkins` instead of failing the batch).
  If `cloud.booking.service` defines `record_edge_checkin(session, checkin) -> bool`, it is called
  as a hook too.
- Passes, revocations, plans and seats for the pull come from registered pass sources.
- Other pushed event kinds (desk sales) may have one event handler each, called in a savepoint for a
  new event before it is stored; raising `EventRejected` rejects the event (dead letter at the edge).
  After-push callbacks run once the push transaction committed (e.g. refunds sent to a gateway).
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cloud.fleet.models import EdgeEventRow
from cloud.models_common import utcnow
from shared.sync import PassRecord, PlanRecord, Revocation, SeatRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EdgeCheckin:
    event_id: uuid.UUID
    tenant_id: uuid.UUID
    library_id: uuid.UUID
    device_id: uuid.UUID
    pass_id: str | None  # None for an exit button press
    holder: str | None  # short id of the holder, as in the pass
    direction: str  # "in" or "out"
    door_id: str
    occurred_at: dt.datetime


# Called with every check-in/out newly applied from one batch; returns the event ids it consumed.
CheckinHook = Callable[[Session, Sequence[EdgeCheckin]], Iterable[uuid.UUID]]
SingleCheckinHook = Callable[[Session, EdgeCheckin], bool]


@dataclass(frozen=True)
class PullWindow:
    """What a pass source must return for one library.

    Passes/revocations whose row changed in (changed_after, changed_until] (all of them when
    changed_after is None), plus passes that enter the horizon in (previous_horizon, horizon], i.e.
    whose valid_from is in that range — only passes still valid after `now` and starting before
    `horizon` matter to the door.
    """

    tenant_id: uuid.UUID
    library_id: uuid.UUID
    now: dt.datetime
    changed_after: dt.datetime | None
    changed_until: dt.datetime
    previous_horizon: dt.datetime | None
    horizon: dt.datetime
    # Within a pagination: the page's sort key (row's updated_at ISO, kind, id) comes after `after`,
    # and the page needs at most `limit` records of each source. A source may use them to fetch less
    # (records at or before `after` are dropped and extra ones cut anyway); None: no bound.
    after: tuple[str, str, str] | None = None
    limit: int | None = None

    def sql_params(self) -> dict[str, Any]:
        """The bind parameters a source's rows SQL (see `register_pass_source`) is run with; `after_at`,
        `after_kind`, `after_id` are `after` (NULL without it), `limit` NULL means no limit."""
        after_at, after_kind, after_id = (
            (dt.datetime.fromisoformat(self.after[0]), *self.after[1:]) if self.after else (None, None, None)
        )
        return {
            "tenant": self.tenant_id, "library": self.library_id, "now": self.now,
            "since": self.changed_after, "until": self.changed_until, "horizon": self.horizon,
            "previous_horizon": self.previous_horizon or self.horizon,
            "after_at": after_at, "after_kind": after_kind, "after_id": after_id, "limit": self.limit,
        }  # fmt: skip


def page_rows_sql(changed_at: str, kind: str, record_id: str) -> str:
    """The tail (a condition to AND, ORDER BY, LIMIT) with which a source's rows SQL returns only rows
    of the window's page: those whose pull sort key (`changed_at`, `kind`, `record_id`) comes after
    `after`, in that order, at most `limit` of them (a page of a 5,000-pass pull reads about its
    1,000 rows instead of all of them)."""
    return f"""
      AND (CAST(:after_at AS timestamptz) IS NULL
           OR ({changed_at}, '{kind}' COLLATE "C", {record_id} COLLATE "C")
              > (CAST(:after_at AS timestamptz), CAST(:after_kind AS text) COLLATE "C",
                 CAST(:after_id AS text) COLLATE "C"))
    ORDER BY {changed_at}, {record_id} COLLATE "C"
    LIMIT CAST(:limit AS integer)
"""


PullItem = tuple[dt.datetime, PassRecord | Revocation | PlanRecord | SeatRecord]  # (row's updated_at, record)
PassSource = Callable[[Session, PullWindow], Iterable[PullItem]]

_checkin_hooks: list[CheckinHook] = []
_pass_sources: list[PassSource] = []
_rows_sql: dict[PassSource, list[str]] = {}


class EventRejected(ValueError):
    """An event handler refuses the event for good; the message is the reason the edge keeps."""


class EventAlreadyApplied(Exception):
    """The handler found the event's effect already there (a concurrent push applied it): its
    savepoint is rolled back and the event is acknowledged."""


# (session in the device's tenant scope, the signing device's DeviceKey, the validated EdgeEvent)
EventHandler = Callable[[Session, Any, Any], None]
# (the FastAPI request of the push, the DeviceKey) once the push committed
AfterPush = Callable[[Any, Any], Awaitable[None]]
_event_handlers: dict[str, EventHandler] = {}
_after_push: list[AfterPush] = []


def register_event_handler(kind: str, handler: EventHandler) -> None:
    _event_handlers[kind] = handler


def event_handler(kind: str) -> EventHandler | None:
    return _event_handlers.get(kind)


def register_after_push(callback: AfterPush) -> None:
    if callback not in _after_push:
        _after_push.append(callback)


async def run_after_push(request: Any, device: Any) -> None:
    """Post-commit work of a push; a failure is logged, never turned into a failed push."""
    for callback in list(_after_push):
        try:
            await callback(request, device)
        except Exception:
            log.exception("after-push callback %r failed", callback)


def register_checkin_hook(hook: CheckinHook) -> CheckinHook:
    if hook not in _checkin_hooks:
        _checkin_hooks.append(hook)
    return hook


def unregister_checkin_hook(hook: CheckinHook) -> None:
    if hook in _checkin_hooks:
        _checkin_hooks.remove(hook)


def register_pass_source(source: PassSource, rows_sql: Sequence[str] | None = None) -> PassSource:
    """`rows_sql`, when given, are the SELECTs whose rows the source turns into records (bind
    parameters from `PullWindow.sql_params`): an idle pull asks PostgreSQL whether any of them has a
    row, in one statement with every other source's, instead of running the sources."""
    if source not in _pass_sources:
        _pass_sources.append(source)
    if rows_sql is not None:
        _rows_sql[source] = list(rows_sql)
    return source


def unregister_pass_source(source: PassSource) -> None:
    if source in _pass_sources:
        _pass_sources.remove(source)
    _rows_sql.pop(source, None)


def pass_sources() -> list[PassSource]:
    return list(_pass_sources)


def pass_sources_rows_sql() -> list[str] | None:
    """Every source's rows SQL, or None when a source has none (then no shortcut is safe)."""
    sources = pass_sources()
    if any(source not in _rows_sql for source in sources):
        return None
    return [sql for source in sources for sql in _rows_sql[source]]


def _booking_hook() -> CheckinHook | None:
    try:
        module = importlib.import_module("cloud.booking.service")
    except ImportError:
        return None
    single = getattr(module, "record_edge_checkin", None)
    if not callable(single):
        return None

    def each(session: Session, checkins: Sequence[EdgeCheckin]) -> list[uuid.UUID]:
        return [item.event_id for item in checkins if single(session, item)]

    return each


def booking_hook_defined() -> bool:
    return _booking_hook() is not None


def checkin_hooks() -> list[CheckinHook]:
    booking = _booking_hook()
    return [*_checkin_hooks, *([booking] if booking is not None else [])]


def run_checkin_hooks(session: Session, checkins: Sequence[EdgeCheckin]) -> set[uuid.UUID]:
    """Every hook, each in its own savepoint; returns the event ids some hook consumed."""
    consumed: set[uuid.UUID] = set()
    if not checkins:
        return consumed
    for hook in checkin_hooks():
        try:
            with session.begin_nested():
                consumed.update(hook(session, checkins))
        except Exception:
            log.exception("check-in hook %r failed for %d events", hook, len(checkins))
    return consumed


def checkin_of(row: EdgeEventRow) -> EdgeCheckin:
    return edge_checkin(
        row.id, row.kind, row.occurred_at, row.payload,
        tenant_id=row.tenant_id, library_id=row.library_id, device_id=row.device_id,
    )  # fmt: skip


def edge_checkin(
    event_id: uuid.UUID,
    kind: str,
    occurred_at: dt.datetime,
    payload: dict[str, Any],
    *,
    tenant_id: uuid.UUID,
    library_id: uuid.UUID,
    device_id: uuid.UUID,
) -> EdgeCheckin:
    """A check-in/out event's payload as the hooks see it (from a stored row or a pushed event)."""
    return EdgeCheckin(
        event_id=event_id,
        tenant_id=tenant_id,
        library_id=library_id,
        device_id=device_id,
        pass_id=payload.get("pass_id"),
        holder=payload.get("holder"),
        direction=str(payload.get("direction") or ("in" if kind == "checkin" else "out")),
        door_id=str(payload.get("door_id", "")),
        occurred_at=occurred_at,
    )


def pending_checkins(session: Session, limit: int = 500) -> list[EdgeCheckin]:
    """Check-ins/outs no hook consumed yet, oldest first (for a booking job to catch up)."""
    rows = session.scalars(
        select(EdgeEventRow)
        .where(EdgeEventRow.kind.in_(("checkin", "checkout")), EdgeEventRow.consumed_at.is_(None))
        .order_by(EdgeEventRow.occurred_at)
        .limit(limit)
    )
    return [checkin_of(row) for row in rows]


def mark_consumed(session: Session, event_ids: Iterable[uuid.UUID]) -> None:
    ids = list(event_ids)
    if ids:
        session.execute(update(EdgeEventRow).where(EdgeEventRow.id.in_(ids)).values(consumed_at=utcnow()))
