"""The edge store: one SQLite file through sqlite-utils, WAL, versioned migrations.

`synchronous=FULL` is on for the whole connection so that an accepted check-in is on disk before
the door is told to open, and a `kill -9` at any point leaves a consistent file.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from edge.device_writes import MARK_SEEN, UPSERT_READINGS, UPSERT_STATE, DeviceWrites

log = logging.getLogger(__name__)

# Staff PINs are short and guessable: OWASP's lower argon2id setting (19 MiB, 2 passes).
_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
# Device MQTT passwords are generated tokens (`secrets.token_urlsafe(18)`: 144 random bits), which
# no offline search can guess whatever the KDF, so a slow hash buys nothing; it cost 19 MiB and
# ~80 ms per connect, in a worker thread per connecting device (a reconnect storm after a broker
# restart held ~100 MB). 1 MiB, 1 pass keeps the argon2id format; older hashes verify with their
# own parameters.
_DEVICE_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
MIN_DEVICE_PASSWORD_CHARS = 24  # token_urlsafe(18); shorter secrets would need the slow hash
# Held device writes are committed at the latest when this many rows or this much time pile up
# (the agent commits them sooner, on a short timer).
MAX_HELD_DEVICE_ROWS = 1000
MAX_HELD_DEVICE_SECONDS = 0.5


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("naive datetime refused: every time is timezone-aware")
    return moment.astimezone(UTC).isoformat()


def hash_secret(secret: str) -> str:
    return _HASHER.hash(secret)


def hash_device_password(password: str) -> str:
    if len(password) < MIN_DEVICE_PASSWORD_CHARS:
        raise ValueError(f"device passwords are generated tokens of {MIN_DEVICE_PASSWORD_CHARS}+ characters")
    return _DEVICE_HASHER.hash(password)


def verify_secret(secret_hash: str, secret: str) -> bool:
    """Checks a PIN or a device password: argon2 takes the cost parameters from the hash itself."""
    try:
        return _HASHER.verify(secret_hash, secret)
    except (VerificationError, InvalidHashError):
        return False


LIBRARY_TIMING_SETTING = "library_timing"  # the cloud's shared.sync.LibraryTiming as JSON, from sync


@dataclass(frozen=True)
class DeviceRecord:
    id: str
    kind: str
    topic_prefix: str
    username: str
    door_id: str | None
    direction: str
    zone: str | None


_APPEND_ONLY = """
CREATE TRIGGER IF NOT EXISTS checkins_no_update BEFORE UPDATE ON checkins
BEGIN SELECT RAISE(ABORT, 'checkins are append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkins_no_delete BEFORE DELETE ON checkins
BEGIN SELECT RAISE(ABORT, 'checkins are append-only'); END;
"""


def _migration_1(db: sqlite_utils.Database) -> None:
    db.table("settings").create({"key": str, "value": str}, pk="key")
    db.table("devices").create(
        {
            "id": str,
            "kind": str,
            "topic_prefix": str,
            "username": str,
            "password_hash": str,
            "mosquitto_hash": str,
            "door_id": str,
            "direction": str,
            "zone": str,
            "online": int,
            "last_seen": str,
            "created_at": str,
        },
        pk="id",
        not_null={"kind", "topic_prefix", "username"},
    )
    db.table("devices").create_index(["topic_prefix"], unique=True)
    db.table("devices").create_index(["username"], unique=True)
    db.table("passes").create(
        {
            "pass_id": str,
            "booking_id": str,
            "seat_id": str,
            "seat_label": str,
            "holder_id": str,
            "holder_name": str,
            "valid_from": str,
            "valid_until": str,
            "status": str,
        },
        pk="pass_id",
    )
    db.table("revocations").create({"pass_id": str, "revoked_at": str, "reason": str}, pk="pass_id")
    db.table("staff").create(
        {"user_id": str, "name": str, "pin_hash": str, "role": str, "active": int}, pk="user_id"
    )
    db.table("checkins").create(
        {
            "seq": int,
            "event_id": str,
            "pass_id": str,
            "holder": str,
            "door_id": str,
            "direction": str,
            "method": str,
            "occurred_at": str,
        },
        pk="seq",
        not_null={"event_id", "door_id", "direction", "method", "occurred_at"},
    )
    db.table("checkins").create_index(["event_id"], unique=True)
    db.table("checkins").create_index(["pass_id"])
    db.executescript(_APPEND_ONLY)
    db.table("presence").create({"pass_id": str, "inside": int, "door_id": str, "at": str}, pk="pass_id")
    db.table("outbox").create(
        {
            "id": str,
            "kind": str,
            "occurred_at": str,
            "payload": str,
            "attempts": int,
            "sent_at": str,
            "dead": int,
        },
        pk="id",
        defaults={"attempts": 0, "dead": 0},
    )
    db.table("outbox").create_index(["sent_at", "dead"])
    db.table("telemetry").create(
        {
            "device_id": str,
            "metric": str,
            "minute": str,
            "count": int,
            "total": float,
            "minimum": float,
            "maximum": float,
            "last": float,
        },
        pk=("device_id", "metric", "minute"),
    )
    db.table("device_state").create(
        {"device_id": str, "entity": str, "value": str, "updated_at": str}, pk=("device_id", "entity")
    )
    db.table("alerts").create(
        {"id": str, "kind": str, "device_id": str, "message": str, "raised_at": str, "cleared_at": str},
        pk="id",
    )


def _migration_2(db: sqlite_utils.Database) -> None:
    """Seats of the library (synced from the cloud) for the kiosk's seat map and desk sales."""
    db.table("seats").create(
        {
            "seat_id": str,
            "short_id": str,
            "label": str,
            "zone_id": str,
            "zone_name": str,
            "seat_type": str,
            "active": int,
        },
        pk="seat_id",
        not_null={"short_id", "label"},
    )
    db.table("seats").create_index(["short_id"])


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_migration_1, _migration_2]


class Store:
    """All persistent state of the agent. Calls are short and synchronous (single event-loop thread)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        self._db = sqlite_utils.Database(conn)
        self._held = DeviceWrites()
        self._device_writes = 0
        self.migrate()

    @property
    def db(self) -> sqlite_utils.Database:
        """The database, with held device writes committed first: whoever reads or writes through
        it sees them, and in order."""
        if self._held:
            try:
                self.commit_held_device_writes()
            except sqlite3.Error:
                log.exception("held device writes lost")  # readings: the devices send new ones
        return self._db

    # -- schema ---------------------------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> None:
        for version, migration in enumerate(MIGRATIONS, start=1):
            if self.schema_version >= version:
                continue
            migration(self.db)
            self.db.execute(f"PRAGMA user_version={version}")

    @contextmanager
    def _without_fsync(self) -> Iterator[None]:
        """Writes that devices repeat every few seconds (readings, last seen, states) skip the fsync.

        With synchronous=FULL each of them cost an fsync (three per sensor reading): on an SD card
        that caps ingest at a few dozen readings a second and blocks the event loop the doors
        share. In WAL mode NORMAL still survives kill -9; a power cut can lose the last few such
        rows, which the devices re-send. Check-ins and the outbox keep FULL.
        """
        if self.db.conn.in_transaction:  # the enclosing transaction decides
            yield
            return
        self.db.execute("PRAGMA synchronous=NORMAL")
        try:
            yield
        finally:
            self.db.execute("PRAGMA synchronous=FULL")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic, fsynced write. Inside it use `self.db.execute` only (sqlite-utils commits)."""
        with self._atomic():
            yield

    @contextmanager
    def _atomic(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.conn.close()  # `db` commits held device writes first

    def healthy(self) -> bool:
        try:
            self.db.execute("SELECT count(*) FROM settings").fetchone()
            return True
        except sqlite3.Error:
            return False

    # -- settings -------------------------------------------------------------------------------
    def get_setting(self, key: str, default: str | None = None) -> str | None:
        rows = list(self.db.query("SELECT value FROM settings WHERE key = ?", [key]))
        return rows[0]["value"] if rows else default

    def set_setting(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )

    # -- devices --------------------------------------------------------------------------------
    def devices_version(self) -> tuple[int, int]:
        """Changes whenever the device registry may have changed: a registry write through this store,
        or a commit by another connection (`studyspot edge device ...`; SQLite's data_version).
        Asked on every PUBLISH, it leaves held device writes held: they do not touch the registry."""
        return int(self._db.execute("PRAGMA data_version").fetchone()[0]), self._device_writes

    def register_device(
        self,
        *,
        device_id: str,
        kind: str,
        topic_prefix: str,
        username: str,
        password: str,
        door_id: str | None = None,
        direction: str = "in",
        zone: str | None = None,
        mosquitto_hash: str | None = None,
    ) -> DeviceRecord:
        self._device_writes += 1
        self.db.table("devices").upsert(
            {
                "id": device_id,
                "kind": kind,
                "topic_prefix": topic_prefix,
                "username": username,
                "password_hash": hash_device_password(password),
                "mosquitto_hash": mosquitto_hash,
                "door_id": door_id,
                "direction": direction,
                "zone": zone,
                "online": 0,
                "created_at": iso(utcnow()),
            },
            pk="id",
        )
        return self.device(device_id)  # type: ignore[return-value]

    def declare_device(
        self,
        *,
        device_id: str,
        kind: str,
        topic_prefix: str,
        door_id: str | None,
        direction: str,
        zone: str | None,
    ) -> None:
        """Upsert a device's metadata from the config, keeping any credentials already stored."""
        self._device_writes += 1
        existing = self.device(device_id)
        row: dict[str, Any] = {
            "id": device_id,
            "kind": kind,
            "topic_prefix": topic_prefix,
            "door_id": door_id,
            "direction": direction,
            "zone": zone,
        }
        if existing is None:
            row |= {"username": device_id, "online": 0, "created_at": iso(utcnow())}
            self.db.table("devices").insert(row)
        else:
            self.db.table("devices").update(device_id, row)

    def remove_device(self, device_id: str) -> bool:
        """Forget a device and its credentials (its past check-ins and telemetry stay)."""
        self._device_writes += 1
        with self.transaction():
            removed = self.db.execute("DELETE FROM devices WHERE id = ?", [device_id]).rowcount
            self.db.execute("DELETE FROM device_state WHERE device_id = ?", [device_id])
        return bool(removed)

    def device(self, device_id: str) -> DeviceRecord | None:
        rows = list(self.db.query("SELECT * FROM devices WHERE id = ?", [device_id]))
        return _device(rows[0]) if rows else None

    def devices(self) -> list[DeviceRecord]:
        return [_device(row) for row in self.db.query("SELECT * FROM devices ORDER BY id")]

    def device_credentials(self, username: str) -> tuple[DeviceRecord, str | None] | None:
        rows = list(self.db.query("SELECT * FROM devices WHERE username = ?", [username]))
        if not rows:
            return None
        return _device(rows[0]), rows[0]["password_hash"]

    def mosquitto_hashes(self) -> list[tuple[DeviceRecord, str | None]]:
        rows = self.db.query("SELECT * FROM devices ORDER BY id")
        return [(_device(row), row["mosquitto_hash"]) for row in rows]

    def mark_device_seen(
        self, device_id: str, *, online: bool | None = None, at: datetime | None = None
    ) -> None:
        with self._without_fsync():
            self._mark_seen(device_id, at or utcnow(), online)

    def _mark_seen(self, device_id: str, at: datetime, online: bool | None = None) -> None:
        # plain SQL: sqlite-utils' Table.update introspects the table (3 queries) on every call
        if online is None:
            self.db.execute(MARK_SEEN, [iso(at), device_id])
        else:
            self.db.execute(
                "UPDATE devices SET last_seen = ?, online = ? WHERE id = ?", [iso(at), int(online), device_id]
            )

    def device_status(self) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT id, kind, topic_prefix, online, last_seen FROM devices ORDER BY id")
        return [dict(row) | {"online": bool(row["online"])} for row in rows]

    # -- device state and telemetry ---------------------------------------------------------------
    def set_device_state(self, device_id: str, entity: str, value: str, at: datetime) -> None:
        with self._without_fsync():
            self._upsert_state(device_id, entity, value, at)

    def record_device_state(
        self,
        device_id: str,
        entity: str,
        value: str,
        at: datetime,
        *,
        seen: bool,
        reading: float | None,
        hold: bool = False,
    ) -> None:
        """A device's state message in one unsynced commit: last seen (if live), the entity's state and,
        for a sensor, its reading in the per-minute roll-up (three commits and six pragmas before).
        With `hold` it joins the held device writes (`commit_held_device_writes`) instead."""
        writes = self._held if hold else DeviceWrites()
        writes.add(device_id, entity, value, iso(at), seen=seen, minute=_minute(at), reading=reading)
        if not hold:
            self._commit_device_writes(writes)
        elif len(self._held) >= MAX_HELD_DEVICE_ROWS or self._held.age() >= MAX_HELD_DEVICE_SECONDS:
            self.commit_held_device_writes()

    def commit_held_device_writes(self) -> None:
        """One unsynced commit of every held device write; on an error they are dropped, not retried."""
        held = self._held.take()
        if held:
            self._commit_device_writes(held)

    def _commit_device_writes(self, writes: DeviceWrites) -> None:
        with self._without_fsync(), self._atomic():
            writes.write(self.db.conn)  # after the held ones, if `writes` are not them

    def _upsert_state(self, device_id: str, entity: str, value: str, at: datetime) -> None:
        self.db.execute(UPSERT_STATE, [device_id, entity, value, iso(at)])

    def device_state(self, device_id: str, entity: str) -> str | None:
        rows = list(
            self.db.query(
                "SELECT value FROM device_state WHERE device_id = ? AND entity = ?", [device_id, entity]
            )
        )
        return rows[0]["value"] if rows else None

    def record_telemetry(self, device_id: str, metric: str, value: float, at: datetime) -> None:
        with self._without_fsync():
            self._upsert_reading(device_id, metric, _minute(at), value)

    def _upsert_reading(self, device_id: str, metric: str, minute: str, value: float) -> None:
        self.db.execute(UPSERT_READINGS, [device_id, metric, minute, 1, value, value, value, value])

    def telemetry(self, device_id: str, metric: str) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT * FROM telemetry WHERE device_id = ? AND metric = ? ORDER BY minute",
                [device_id, metric],
            )
        )

    def compact_telemetry(self, older_than: datetime) -> int:
        """Drop per-minute telemetry older than the horizon (the cloud has its own copy)."""
        cursor = self.db.execute("DELETE FROM telemetry WHERE minute < ?", [iso(older_than)])
        return cursor.rowcount

    # -- seats ----------------------------------------------------------------------------------
    def seats(self) -> list[dict[str, Any]]:
        """Every active seat, by zone then label (`active` as a bool)."""
        rows = self.db.query("SELECT * FROM seats WHERE active = 1 ORDER BY zone_name, label")
        return [dict(row) | {"active": bool(row["active"])} for row in rows]

    # -- passes, revocations, presence ------------------------------------------------------------
    def revoke(self, pass_id: str, reason: str, at: datetime) -> None:
        self.db.table("revocations").upsert(
            {"pass_id": pass_id, "revoked_at": iso(at), "reason": reason}, pk="pass_id"
        )

    def is_revoked(self, pass_id: str) -> bool:
        return bool(list(self.db.query("SELECT 1 FROM revocations WHERE pass_id = ?", [pass_id])))

    def presence(self, pass_id: str) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM presence WHERE pass_id = ?", [pass_id]))
        return rows[0] if rows else None

    def occupancy(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM presence WHERE inside = 1").fetchone()[0]) + int(
            self.get_setting("anonymous_inside_offset", "0") or 0
        )

    # -- check-ins (append-only, durable) --------------------------------------------------------
    def record_checkin(
        self,
        *,
        pass_id: str | None,
        holder: str | None,
        door_id: str,
        direction: str,
        method: str,
        at: datetime,
        outbox_payload: dict[str, Any],
    ) -> str:
        """Append a check-in/out, update presence and queue it for the cloud, in one transaction."""
        event_id = str(uuid.uuid4())
        kind = "checkin" if direction == "in" else "checkout"
        with self.transaction():
            self.db.execute(
                "INSERT INTO checkins (event_id, pass_id, holder, door_id, direction, method, occurred_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [event_id, pass_id, holder, door_id, direction, method, iso(at)],
            )
            if pass_id is not None:
                self.db.execute(
                    "INSERT INTO presence (pass_id, inside, door_id, at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (pass_id) DO UPDATE SET inside = excluded.inside,"
                    " door_id = excluded.door_id, at = excluded.at",
                    [pass_id, int(direction == "in"), door_id, iso(at)],
                )
            else:
                self._shift_anonymous(+1 if direction == "in" else -1)
            self._enqueue(event_id, kind, at, outbox_payload | {"event_id": event_id})
        return event_id

    def _shift_anonymous(self, delta: int) -> None:
        inside = int(self.db.execute("SELECT count(*) FROM presence WHERE inside = 1").fetchone()[0])
        offset = int(self.get_setting("anonymous_inside_offset", "0") or 0) + delta
        # An exit button press for someone we counted by pass must not drive occupancy negative.
        offset = max(offset, -inside)
        self.db.execute(
            "INSERT INTO settings (key, value) VALUES ('anonymous_inside_offset', ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [str(offset)],
        )

    def checkins(self) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM checkins ORDER BY seq"))

    # -- outbox ---------------------------------------------------------------------------------
    def _enqueue(self, event_id: str, kind: str, at: datetime, payload: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO outbox (id, kind, occurred_at, payload, attempts, dead) VALUES (?, ?, ?, ?, 0, 0)",
            [event_id, kind, iso(at), json.dumps(payload, default=str)],
        )

    def enqueue(self, kind: str, payload: dict[str, Any], at: datetime | None = None) -> str:
        event_id = str(uuid.uuid4())
        with self.transaction():
            self._enqueue(event_id, kind, at or utcnow(), payload)
        return event_id

    def pending_outbox(self, limit: int = 500) -> list[dict[str, Any]]:
        rows = self.db.query(
            "SELECT * FROM outbox WHERE sent_at IS NULL AND dead = 0 ORDER BY occurred_at LIMIT ?", [limit]
        )
        return [dict(row) | {"payload": json.loads(row["payload"])} for row in rows]

    def outbox_depth(self) -> int:
        return int(
            self.db.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL AND dead = 0").fetchone()[0]
        )

    # -- alerts ---------------------------------------------------------------------------------
    def raise_alert(self, kind: str, device_id: str | None, message: str, at: datetime) -> str:
        alert_id = str(uuid.uuid4())
        with self.transaction():
            self.db.execute(
                "INSERT INTO alerts (id, kind, device_id, message, raised_at) VALUES (?, ?, ?, ?, ?)",
                [alert_id, kind, device_id, message, iso(at)],
            )
            payload = {"alert_id": alert_id, "kind": kind, "device_id": device_id, "message": message}
            self._enqueue(str(uuid.uuid4()), "alert", at, payload)
        return alert_id

    def alerts(self, kind: str | None = None) -> list[dict[str, Any]]:
        if kind is None:
            return list(self.db.query("SELECT * FROM alerts ORDER BY raised_at"))
        return list(self.db.query("SELECT * FROM alerts WHERE kind = ? ORDER BY raised_at", [kind]))

    def open_alerts(self) -> Iterator[dict[str, Any]]:
        return self.db.query("SELECT * FROM alerts WHERE cleared_at IS NULL ORDER BY raised_at DESC LIMIT 50")

    def energy_since(self, device_id: str, since: datetime, until: datetime | None = None) -> float:
        """kWh used from `since` (to before `until`), from the meter's cumulative `energy` readings per
        minute: the highest reading in the window less the last one before it (or the window's lowest)."""
        window = self.db.execute(
            "SELECT min(minimum), max(maximum) FROM telemetry WHERE device_id = ? AND metric = 'energy'"
            " AND minute >= ? AND minute < ?",
            [device_id, iso(since), iso(until) if until is not None else "9999"],
        ).fetchone()
        if window is None or window[0] is None:
            return 0.0
        previous = self.db.execute(
            "SELECT last FROM telemetry WHERE device_id = ? AND metric = 'energy' AND minute < ?"
            " ORDER BY minute DESC LIMIT 1",
            [device_id, iso(since)],
        ).fetchone()
        baseline = previous[0] if previous is not None else window[0]
        return max(0.0, float(window[1] - baseline))  # a meter that restarted from 0 reads below it


def _minute(at: datetime) -> str:
    return at.astimezone(UTC).replace(second=0, microsecond=0).isoformat()


def _device(row: dict[str, Any]) -> DeviceRecord:
    return DeviceRecord(
        id=row["id"],
        kind=row["kind"],
        topic_prefix=row["topic_prefix"],
        username=row["username"],
        door_id=row["door_id"],
        direction=row["direction"] or "in",
        zone=row["zone"],
    )
