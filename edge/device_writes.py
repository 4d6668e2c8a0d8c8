"""Device state messages held in memory between two commits, merged per row they will write.

Each sensor reading cost its own commit (BEGIN, three upserts, COMMIT, two pragmas): about a third
of the agent's CPU per message under load. Held here, a burst of readings becomes one commit with
one upsert per device (last seen), per entity (latest state) and per metric and minute (the roll-up
of count, total, minimum, maximum, last), giving the rows that one commit per reading would have.
`Store` commits them before anyone reads or writes through `Store.db`, so every reader sees them;
the agent commits them 50 ms after the first (`DEVICE_WRITES_SECONDS`), so other processes do too.
What a `kill -9` or a power cut loses is at most those last 50 ms of device messages (0.5 s if the
event loop is starved): state the devices send again. Check-ins and the outbox are never held.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass


@dataclass
class Rollup:
    count: int
    total: float
    minimum: float
    maximum: float
    last: float

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)
        self.last = value


class DeviceWrites:
    def __init__(self) -> None:
        self.seen: dict[str, str] = {}  # device id → last seen
        self.states: dict[tuple[str, str], tuple[str, str]] = {}  # (device, entity) → (value, at)
        self.readings: dict[tuple[str, str, str], Rollup] = {}  # (device, metric, minute) → roll-up
        self.since: float | None = None  # monotonic time of the oldest write held

    def __len__(self) -> int:
        return len(self.seen) + len(self.states) + len(self.readings)

    def age(self) -> float:
        return 0.0 if self.since is None else time.monotonic() - self.since

    def add(
        self,
        device_id: str,
        entity: str,
        value: str,
        at: str,
        *,
        seen: bool,
        minute: str,
        reading: float | None,
    ) -> None:
        if self.since is None:
            self.since = time.monotonic()
        if seen:
            self.seen[device_id] = at
        self.states[(device_id, entity)] = (value, at)
        if reading is not None:
            key = (device_id, entity, minute)
            rollup = self.readings.get(key)
            if rollup is None:
                self.readings[key] = Rollup(1, reading, reading, reading, reading)
            else:
                rollup.add(reading)

    def take(self) -> DeviceWrites:
        """Everything held, leaving this empty (what a failed commit loses is gone either way)."""
        taken = DeviceWrites()
        taken.seen, taken.states, taken.readings = self.seen, self.states, self.readings
        self.seen, self.states, self.readings, self.since = {}, {}, {}, None
        return taken

    def write(self, conn: sqlite3.Connection) -> None:
        """The upserts, in the caller's transaction."""
        conn.executemany(MARK_SEEN, [(at, device) for device, at in self.seen.items()])
        conn.executemany(
            UPSERT_STATE,
            [(device, entity, value, at) for (device, entity), (value, at) in self.states.items()],
        )
        conn.executemany(
            UPSERT_READINGS,
            [
                (device, metric, minute, r.count, r.total, r.minimum, r.maximum, r.last)
                for (device, metric, minute), r in self.readings.items()
            ],
        )


# The store's device writes, held or not (`Store.set_device_state`, `Store.record_telemetry`).
MARK_SEEN = "UPDATE devices SET last_seen = ? WHERE id = ?"
UPSERT_STATE = (
    "INSERT INTO device_state (device_id, entity, value, updated_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (device_id, entity) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
)
# (device, metric, minute, count, total, minimum, maximum, last) of one or more readings
UPSERT_READINGS = """
    INSERT INTO telemetry (device_id, metric, minute, count, total, minimum, maximum, last)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (device_id, metric, minute) DO UPDATE SET
      count = count + excluded.count, total = total + excluded.total,
      minimum = min(minimum, excluded.minimum), maximum = max(maximum, excluded.maximum),
      last = excluded.last
"""
