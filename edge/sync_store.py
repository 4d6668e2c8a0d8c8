"""Sync's own reads and writes on the edge store (its sqlite-utils Database), beside `edge.store`.

Settings keys written here: `cloud_url`, `device_id`, `tenant_id`, `library_id`, `library_timezone`,
`device_key_id`, `device_private_key`, `device_next_key_id`, `device_next_private_key`,
`pass_keys` (JSON), `device_config` (JSON), `sync_cursor`, `sync_last_success`,
`sync_last_push`, `sync_last_pull`, `sync_clock_offset`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlite_utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.store import LIBRARY_TIMING_SETTING, Store, iso, utcnow
from shared.passes import private_key_from_text, private_key_to_text, short_id
from shared.sync import PullResponse, RemoteCommand


class NotEnrolled(RuntimeError):
    """The store holds no device identity: run `studyspot edge enroll` first."""


@dataclass(frozen=True)
class DeviceIdentity:
    cloud_url: str
    device_id: str
    library_id: str
    key_id: str
    private_key: Ed25519PrivateKey


def _create_tables(store: Store) -> None:
    db = store.db
    if not db.table("sync_dead_letters").exists():
        db.table("sync_dead_letters").create(
            {"id": str, "kind": str, "reason": str, "dead_at": str}, pk="id", if_not_exists=True
        )
    if not db.table("sync_plans").exists():
        db.table("sync_plans").create(
            {"id": str, "name": str, "kind": str, "price_minor": int, "currency": str,
             "duration_minutes": int, "active": int},
            pk="id",
            if_not_exists=True,
        )  # fmt: skip
    if not db.table("sync_commands").exists():
        db.table("sync_commands").create(
            {"id": str, "kind": str, "args": str, "issued_at": str, "received_at": str, "done_at": str},
            pk="id",
            if_not_exists=True,
        )


class SyncStore:
    """Everything sync keeps on the edge, on the agent's one SQLite file."""

    def __init__(self, store: Store) -> None:
        self.store = store
        _create_tables(store)

    @property
    def db(self) -> sqlite_utils.Database:
        return self.store.db  # through the store: held device writes are committed first

    # -- identity ---------------------------------------------------------------------------------
    def save_identity(
        self, *, cloud_url: str, device_id: str, tenant_id: str, library_id: str, library_timezone: str,
        key_id: str, private_key: Ed25519PrivateKey, pass_keys: dict[str, str], config: dict[str, Any],
    ) -> None:  # fmt: skip
        values = {
            "cloud_url": cloud_url.rstrip("/"),
            "device_id": device_id,
            "tenant_id": tenant_id,
            "library_id": library_id,
            "library_timezone": library_timezone,
            "device_key_id": key_id,
            "device_private_key": private_key_to_text(private_key),
            "pass_keys": json.dumps(pass_keys),
            "device_config": json.dumps(config),
        }
        with self.store.transaction():
            for key, value in values.items():
                self._put(key, value)
            for key in ("sync_cursor", "device_next_key_id", "device_next_private_key"):
                self.db.execute("DELETE FROM settings WHERE key = ?", [key])

    def _put(self, key: str, value: str) -> None:
        self.store.set_setting(key, value)

    def identity(self) -> DeviceIdentity:
        get = self.store.get_setting
        values = [
            get(k) for k in ("cloud_url", "device_id", "library_id", "device_key_id", "device_private_key")
        ]
        cloud_url, device_id, library_id, key_id, private_text = values
        if not (cloud_url and device_id and library_id and key_id and private_text):
            raise NotEnrolled("this edge is not enrolled: run `studyspot edge enroll --cloud URL --token T`")
        return DeviceIdentity(cloud_url, device_id, library_id, key_id, private_key_from_text(private_text))

    def is_enrolled(self) -> bool:
        try:
            self.identity()
        except NotEnrolled:
            return False
        return True

    # -- key rotation -----------------------------------------------------------------------------
    def save_next_key(self, private_key: Ed25519PrivateKey) -> None:
        with self.store.transaction():
            self._put("device_next_private_key", private_key_to_text(private_key))
            self.db.execute("DELETE FROM settings WHERE key = 'device_next_key_id'")

    def next_key(self) -> tuple[str | None, Ed25519PrivateKey] | None:
        text = self.store.get_setting("device_next_private_key")
        if not text:
            return None
        return self.store.get_setting("device_next_key_id"), private_key_from_text(text)

    def set_next_key_id(self, key_id: str) -> None:
        self.store.set_setting("device_next_key_id", key_id)

    def promote_next_key(self) -> None:
        """The cloud accepted a request signed with the next key: it is now the key."""
        pending = self.next_key()
        if pending is None or pending[0] is None:
            return
        key_id, private_key = pending
        assert key_id is not None
        with self.store.transaction():
            self._put("device_key_id", key_id)
            self._put("device_private_key", private_key_to_text(private_key))
            self.db.execute(
                "DELETE FROM settings WHERE key IN ('device_next_key_id', 'device_next_private_key')"
            )

    # -- outbox -----------------------------------------------------------------------------------
    def pending(self, limit: int) -> list[dict[str, Any]]:
        return self.store.pending_outbox(limit)

    def acknowledge(self, event_ids: Iterable[str]) -> int:
        """Remove events the cloud applied (or already had)."""
        ids = list(event_ids)
        if not ids:
            return 0
        with self.store.transaction():
            return self._remove(ids)

    def dead_letter(self, rejected: dict[str, str]) -> None:
        """Keep events the cloud rejected for good, with the reason, out of the queue."""
        if not rejected:
            return
        with self.store.transaction():
            self._keep_dead(rejected)

    def settle_push(self, acknowledged: list[str], rejected: dict[str, str]) -> int:
        """The cloud's answer to one batch in one transaction (one fsync, not three): acknowledged
        events removed, rejected ones dead-lettered, the push marked. Returns how many were removed."""
        with self.store.transaction():
            removed = self._remove(acknowledged)
            self._keep_dead(rejected)
            self._mark("push", utcnow())
        return removed

    def _remove(self, ids: list[str]) -> int:
        removed = 0
        for chunk in _chunks(ids, 500):
            marks = ",".join("?" * len(chunk))
            removed += self.db.execute(f"DELETE FROM outbox WHERE id IN ({marks})", chunk).rowcount  # noqa: S608
        return removed

    def _keep_dead(self, rejected: dict[str, str]) -> None:
        now = iso(utcnow())
        for event_id, reason in rejected.items():
            self.db.execute("UPDATE outbox SET dead = 1 WHERE id = ?", [event_id])
            self.db.execute(
                "INSERT INTO sync_dead_letters (id, kind, reason, dead_at)"
                " SELECT id, kind, ?, ? FROM outbox WHERE id = ?"
                " ON CONFLICT (id) DO UPDATE SET reason = excluded.reason",
                [reason, now, event_id],
            )

    def count_attempt(self, event_ids: Iterable[str]) -> None:
        ids = list(event_ids)
        with self.store.transaction():
            for chunk in _chunks(ids, 500):
                marks = ",".join("?" * len(chunk))
                self.db.execute(f"UPDATE outbox SET attempts = attempts + 1 WHERE id IN ({marks})", chunk)  # noqa: S608

    def dead_letters(self) -> list[dict[str, Any]]:
        rows = self.db.query(
            "SELECT d.id, d.kind, d.reason, d.dead_at, o.payload FROM sync_dead_letters d"
            " LEFT JOIN outbox o ON o.id = d.id ORDER BY d.dead_at DESC"
        )
        return [
            dict(row) | {"payload": json.loads(row["payload"]) if row["payload"] else None} for row in rows
        ]

    def dead_letter_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM outbox WHERE dead = 1").fetchone()[0])

    def queue_depth(self) -> int:
        return self.store.outbox_depth()

    def queue_closed_telemetry(self, now: datetime) -> int:
        """Queue one `telemetry` event per closed minute not queued yet; returns how many were queued."""
        current = now.astimezone(UTC).replace(second=0, microsecond=0)
        with self.store.transaction():
            mark = self.store.get_setting("sync_telemetry_through")
            rows = self.db.execute(
                "SELECT device_id, metric, minute, count, total, minimum, maximum, last FROM telemetry"
                " WHERE minute < ? AND (? IS NULL OR minute >= ?) ORDER BY minute",
                [iso(current), mark, mark],
            ).fetchall()
            by_minute: dict[str, list[dict[str, Any]]] = {}
            for device_id, metric, minute, count, total, minimum, maximum, last in rows:
                by_minute.setdefault(minute, []).append(
                    {
                        "sensor": device_id,
                        "metric": metric,
                        "count": count,
                        "total": total,
                        "minimum": minimum,
                        "maximum": maximum,
                        "last": last,
                    }
                )
            for minute, minute_rows in by_minute.items():
                payload = {"minute": minute, "rows": minute_rows}
                _enqueue_in_transaction(self.store, "telemetry", payload, datetime.fromisoformat(minute))
            self._put("sync_telemetry_through", iso(current))
        return len(by_minute)

    # -- pull -------------------------------------------------------------------------------------
    def cursor(self) -> str | None:
        return self.store.get_setting("sync_cursor")

    def apply_pull(self, page: PullResponse) -> list[RemoteCommand]:
        """Apply one page atomically (with its cursor); returns the commands not seen before."""
        with self.store.transaction():
            if page.full_resync:
                self.db.execute("DELETE FROM passes")
                self.db.execute("DELETE FROM staff")
                self.db.execute("DELETE FROM seats")
            self._apply_passes(page)
            self._apply_staff(page)
            self._apply_plans(page)
            self._apply_seats(page)
            if page.pass_keys:
                self._put("pass_keys", json.dumps(page.pass_keys, sort_keys=True))
            if page.config is not None:
                self._put("device_config", json.dumps(page.config, sort_keys=True))
            if page.library is not None:
                self._put(LIBRARY_TIMING_SETTING, page.library.model_dump_json())
            new_commands = self._record_commands(page.commands)
            self._put("sync_cursor", page.cursor)
        return new_commands

    def _apply_passes(self, page: PullResponse) -> None:
        for record in page.passes:
            self.db.execute(
                "INSERT OR REPLACE INTO passes (pass_id, booking_id, seat_id, seat_label, holder_id,"
                " holder_name, valid_from, valid_until, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    record.pass_id, str(record.booking_id), str(record.seat_id or record.zone_id or ""),
                    record.seat_label, str(record.holder_id), record.holder_name, iso(record.valid_from),
                    iso(record.valid_until), record.status.value,
                ],
            )  # fmt: skip
        for revocation in page.revocations:
            self.db.execute(
                "INSERT OR REPLACE INTO revocations (pass_id, revoked_at, reason) VALUES (?, ?, ?)",
                [revocation.pass_id, iso(revocation.revoked_at), revocation.reason],
            )

    def _apply_staff(self, page: PullResponse) -> None:
        for staff in page.staff:
            if not staff.active:
                self.db.execute("DELETE FROM staff WHERE user_id = ?", [str(staff.user_id)])
                continue
            self.db.execute(
                "INSERT OR REPLACE INTO staff (user_id, name, pin_hash, role, active) VALUES (?, ?, ?, ?, 1)",
                [str(staff.user_id), staff.name, staff.pin_hash, staff.role],
            )

    def _apply_plans(self, page: PullResponse) -> None:
        for plan in page.plans:
            self.db.execute(
                "INSERT OR REPLACE INTO sync_plans (id, name, kind, price_minor, currency, duration_minutes,"
                " active) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [str(plan.id), plan.name, plan.kind, plan.price_minor, plan.currency, plan.duration_minutes,
                 int(plan.active)],
            )  # fmt: skip

    def _apply_seats(self, page: PullResponse) -> None:
        for seat in page.seats:
            self.db.execute(
                "INSERT OR REPLACE INTO seats (seat_id, short_id, label, zone_id, zone_name, seat_type,"
                " active) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [str(seat.id), short_id(seat.id), seat.label, str(seat.zone_id) if seat.zone_id else None,
                 seat.zone_name, seat.seat_type, int(seat.active)],
            )  # fmt: skip

    def plans(self) -> list[dict[str, Any]]:
        """Plans the kiosk may sell (money in integer minor units with the currency)."""
        return list(self.db.query("SELECT * FROM sync_plans WHERE active = 1 ORDER BY price_minor"))

    def _record_commands(self, commands: list[RemoteCommand]) -> list[RemoteCommand]:
        fresh = []
        for command in commands:
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO sync_commands (id, kind, args, issued_at, received_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [
                    str(command.id),
                    command.kind,
                    json.dumps(command.args),
                    iso(command.issued_at),
                    iso(utcnow()),
                ],
            )
            if cursor.rowcount:
                fresh.append(command)
        return fresh

    def undone_commands(self) -> list[RemoteCommand]:
        rows = self.db.query("SELECT * FROM sync_commands WHERE done_at IS NULL ORDER BY issued_at")
        return [
            RemoteCommand(
                id=row["id"],
                kind=row["kind"],
                args=json.loads(row["args"]),
                issued_at=datetime.fromisoformat(row["issued_at"]),
            )
            for row in rows
        ]

    def finish_command(self, command: RemoteCommand, result: dict[str, Any]) -> str:
        """Mark a command done and queue its acknowledgement for the cloud, atomically."""
        now = utcnow()
        with self.store.transaction():
            self.db.execute("UPDATE sync_commands SET done_at = ? WHERE id = ?", [iso(now), str(command.id)])
            event_id = _enqueue_in_transaction(
                self.store, "command_ack", {"command_id": str(command.id), **result}, now
            )
        return event_id

    def pass_keys(self) -> dict[str, str]:
        return dict(json.loads(self.store.get_setting("pass_keys") or "{}"))

    def staff(self) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM staff ORDER BY name"))

    def passes(self) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM passes ORDER BY valid_from"))

    # -- health -----------------------------------------------------------------------------------
    def mark(self, what: str, at: datetime | None = None) -> None:
        with self.store.transaction():
            self._mark(what, at or utcnow())

    def _mark(self, what: str, at: datetime) -> None:
        self.store.set_setting(f"sync_last_{what}", iso(at))
        self.store.set_setting("sync_last_success", iso(at))

    def set_clock_offset(self, seconds: float) -> None:
        self.store.set_setting("sync_clock_offset", f"{seconds:.3f}")

    def clock_offset(self) -> float:
        return float(self.store.get_setting("sync_clock_offset", "0") or 0)


def _enqueue_in_transaction(store: Store, kind: str, payload: dict[str, Any], at: datetime) -> str:
    import uuid

    event_id = str(uuid.uuid4())
    store.db.execute(
        "INSERT INTO outbox (id, kind, occurred_at, payload, attempts, dead) VALUES (?, ?, ?, ?, 0, 0)",
        [event_id, kind, iso(at), json.dumps(payload, default=str)],
    )
    return event_id


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
