"""An idle pull (nothing changed since the edge's cursor) is answered from one EXISTS statement without
running the pass sources; every kind of change still reaches the very next pull.

`build_pull` runs in process against the live cloud's database, as the app role in the device's
tenant scope, with `now` = the wall clock + the pull's lag, so rows committed just before a pull are
already inside its window (no sleeping for the lag).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from cloud import crypto
from cloud.booking.service import issue_demo_booking
from cloud.db import platform_scope, tenant_scope
from cloud.fleet import pull as pull_module
from cloud.fleet.hooks import PullItem, PullWindow, register_pass_source, unregister_pass_source
from cloud.fleet.pull import LAG, build_pull
from cloud.fleet.service import DeviceKey, new_key_id
from cloud.identity import service as identity
from shared.sync import LibraryTiming, PullResponse

from .conftest import TEST_PASSWORD, LiveCloud, Tenant, make_tenant


class Door:
    """One device of a fresh tenant, pulling with its cursor like an edge does."""

    def __init__(self, cloud: LiveCloud, tenant: Tenant) -> None:
        self.cloud = cloud
        self.tenant = tenant
        self.cursor: str | None = None
        self.key = DeviceKey(new_key_id(), "", "active", uuid.uuid4(), tenant.tenant_id, tenant.library_id)
        self.owner(
            "INSERT INTO edge_devices (id, tenant_id, library_id, name, status, config)"
            " VALUES (:d, :t, :l, 'door', 'active', '{\"sync_interval\": 30}')",
            d=self.key.device_id, t=tenant.tenant_id, l=tenant.library_id,
        )  # fmt: skip

    def owner(self, sql: str, **params: Any) -> list[Any]:
        """Run `sql` as the database owner and commit; its rows, if any."""
        with self.cloud.owner_session() as session:
            result = session.connection().execute(text(sql), params)
            rows = list(result.all()) if result.returns_rows else []
            session.commit()
            return rows

    def pull(self, *, ahead: dt.timedelta = LAG) -> PullResponse:
        now = dt.datetime.now(dt.UTC) + ahead
        factory: Any = self.cloud.session_factory
        with factory() as session:
            tenant_scope(session, self.tenant.tenant_id, None)
            page = build_pull(session, self.key, self.cursor, now=now)
            session.commit()
        self.cursor = page.cursor
        return page


@pytest.fixture
def sources_runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many pulls ran the pass sources (an idle delta must not)."""
    runs: list[int] = []
    real = pull_module._source_items

    def counted(session: Session, window: PullWindow) -> Any:
        runs.append(1)
        return real(session, window)

    monkeypatch.setattr(pull_module, "_source_items", counted)
    yield runs


@pytest.fixture
def door(live_cloud: LiveCloud) -> Door:
    door = Door(live_cloud, make_tenant(live_cloud))
    first = door.pull()
    assert first.full_resync and [s.name for s in first.staff] == ["Olga Owner"]
    return door


def _empty(page: PullResponse) -> bool:
    return not (page.passes or page.revocations or page.staff or page.plans or page.seats or page.has_more)


def _student(cloud: LiveCloud) -> uuid.UUID:
    with cloud.owner_session() as session:
        platform_scope(session)
        student = identity.create_user(session, f"s-{uuid.uuid4().hex[:8]}@example.com", TEST_PASSWORD)
        session.commit()
        return student.id


def _book(door: Door, *, starts: dt.datetime | None = None) -> tuple[uuid.UUID, str]:
    (seat,) = door.owner(
        "INSERT INTO seats (tenant_id, library_id, label) VALUES (:t, :l, :label) RETURNING id",
        t=door.tenant.tenant_id, l=door.tenant.library_id, label=f"S{uuid.uuid4().hex[:4]}",
    )  # fmt: skip
    with door.cloud.owner_session() as session:
        booking_id, _ = issue_demo_booking(
            session, library_id=door.tenant.library_id, seat_id=seat.id, user_id=_student(door.cloud),
            master_key=crypto.load_master_key(door.cloud.settings), now=starts,
        )  # fmt: skip
        pass_id = session.execute(
            text("SELECT pass_id FROM bookings WHERE id = :b"), {"b": booking_id}
        ).scalar()
    return booking_id, str(pass_id)


def test_an_idle_pull_skips_the_sources_and_still_carries_config_and_keys(
    door: Door, sources_runs: list[int]
) -> None:
    page = door.pull()
    assert _empty(page) and not page.full_resync and sources_runs == []
    assert page.config == {"sync_interval": 30}


def test_every_pull_carries_the_library_booking_times_the_owner_set(door: Door) -> None:
    door.owner(
        "UPDATE libraries SET checkin_open_minutes = 20, no_show_grace_minutes = 25 WHERE id = :l",
        l=door.tenant.library_id,
    )
    assert door.pull().library == LibraryTiming(checkin_open_minutes=20, no_show_grace_minutes=25)


def test_every_change_reaches_the_next_pull(door: Door, sources_runs: list[int]) -> None:
    booking_id, pass_id = _book(door)
    page = door.pull()
    assert pass_id in {p.pass_id for p in page.passes} and {s.label for s in page.seats}
    assert page.pass_keys  # the tenant's first pass made its signing key
    assert _empty(door.pull())

    door.owner("UPDATE bookings SET status = 'cancelled' WHERE id = :b", b=booking_id)
    page = door.pull()
    assert pass_id in {r.pass_id for r in page.revocations}
    assert _empty(door.pull())

    door.owner(
        "UPDATE memberships SET pin_hash = 'changed' WHERE tenant_id = :t AND user_id = :u",
        t=door.tenant.tenant_id, u=door.tenant.owner_id,
    )  # fmt: skip
    assert [s.pin_hash for s in door.pull().staff] == ["changed"]
    assert _empty(door.pull())

    door.owner(
        "INSERT INTO plans (tenant_id, library_id, name, kind, price_minor, currency)"
        " VALUES (:t, :l, 'Day pass', 'day_pass', 15000, 'INR')",
        t=door.tenant.tenant_id, l=door.tenant.library_id,
    )  # fmt: skip
    assert [p.name for p in door.pull().plans] == ["Day pass"]
    assert _empty(door.pull())

    door.owner("UPDATE seats SET label = 'Window 1' WHERE library_id = :l", l=door.tenant.library_id)
    assert {s.label for s in door.pull().seats} == {"Window 1"}
    assert _empty(door.pull())
    assert len(sources_runs) == 5  # once per change; the idle pulls in between ran none


def test_commands_and_config_come_on_an_idle_pull(door: Door) -> None:
    door.owner(
        "INSERT INTO edge_commands (tenant_id, device_id, kind, args) VALUES (:t, :d, 'unlock_door', '{}')",
        t=door.tenant.tenant_id, d=door.key.device_id,
    )  # fmt: skip
    door.owner(
        "UPDATE edge_devices SET config = '{\"sync_interval\": 10}' WHERE id = :d", d=door.key.device_id
    )
    page = door.pull()
    assert _empty(page) and [c.kind for c in page.commands] == ["unlock_door"]
    assert page.config == {"sync_interval": 10}
    ((delivered,),) = door.owner(
        "SELECT delivered_at FROM edge_commands WHERE device_id = :d", d=door.key.device_id
    )
    assert delivered is not None
    assert [c.kind for c in door.pull().commands] == ["unlock_door"]  # again until acknowledged


def test_a_pass_entering_the_horizon_comes_without_any_row_change(door: Door) -> None:
    _, pass_id = _book(door, starts=dt.datetime.now(dt.UTC) + dt.timedelta(hours=50))
    assert door.pull().passes == []  # 50 h ahead: beyond the 48 h horizon
    later = door.pull(ahead=LAG + dt.timedelta(hours=3))
    assert [p.pass_id for p in later.passes] == [pass_id]


def test_a_source_without_its_sql_turns_the_shortcut_off(door: Door, sources_runs: list[int]) -> None:
    def opaque(session: Session, window: PullWindow) -> Iterable[PullItem]:
        return []

    register_pass_source(opaque)
    try:
        assert _empty(door.pull())
    finally:
        unregister_pass_source(opaque)
    assert sources_runs == [1]


def test_small_pages_serve_every_pass_and_revocation_once(door: Door) -> None:
    """Pages cut inside one `updated_at` (rows changed in one transaction): the sources' keyset in
    SQL (sort key after the cursor's, at most a page each) neither skips nor repeats a row."""
    booked = [_book(door) for _ in range(7)]
    cancelled = [booking_id for booking_id, _ in booked[::3]]
    door.owner(
        "UPDATE bookings SET status = CASE WHEN id = ANY(:c) THEN 'cancelled' ELSE status END"
        " WHERE library_id = :l",
        c=cancelled, l=door.tenant.library_id,
    )  # fmt: skip
    passes: list[str] = []
    revocations: list[str] = []
    records = 0
    cursor: str | None = None
    pages = 0
    factory: Any = door.cloud.session_factory
    while True:
        with factory() as session:
            tenant_scope(session, door.tenant.tenant_id, None)
            now = dt.datetime.now(dt.UTC) + LAG
            page = build_pull(session, door.key, cursor, now=now, page_size=2)
            session.commit()
        pages += 1
        passes += [p.pass_id for p in page.passes]
        revocations += [r.pass_id for r in page.revocations]
        records += len(page.passes) + len(page.revocations) + len(page.staff) + len(page.seats)
        cursor = page.cursor
        if not page.has_more:
            break
    assert sorted(passes) == sorted(pass_id for _, pass_id in booked)
    cancelled_passes = {pass_id for booking_id, pass_id in booked if booking_id in cancelled}
    assert sorted(revocations) == sorted(cancelled_passes)
    assert records == 7 + len(cancelled_passes) + 1 + 7  # passes, revocations, the owner, seats
    assert pages == (records + 1) // 2
