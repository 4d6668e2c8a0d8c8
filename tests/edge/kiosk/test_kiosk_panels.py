"""The kiosk's panels on a real store, loaded the way sync loads it (no agent, no browser): seat states,
expected arrivals, kWh today vs yesterday in the library's zone, battery readings."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import cast
from zoneinfo import ZoneInfo

from edge.devices import enroll_device
from edge.kiosk.charts import energy_panel
from edge.kiosk.seatmap import BookingTiming, expected_arrivals, seat_map, todays_passes
from edge.kiosk.views import DayPanelCache, KioskAgent, booking_timing, devices_panel
from edge.store import LIBRARY_TIMING_SETTING, Store
from edge.sync_store import SyncStore
from shared.sync import LibraryTiming, PassRecord, PassStatus, PullResponse, Revocation, SeatRecord

KOLKATA = ZoneInfo("Asia/Kolkata")
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=KOLKATA).astimezone(UTC)
TIMING = BookingTiming(checkin_open=timedelta(minutes=15), no_show_grace=timedelta(minutes=15))
QUIET, GROUP = uuid.uuid4(), uuid.uuid4()


def seat(label: str, zone_id: uuid.UUID | None, zone_name: str, active: bool = True) -> SeatRecord:
    return SeatRecord(id=uuid.uuid4(), label=label, zone_id=zone_id, zone_name=zone_name, active=active)


def booking(seat_record: SeatRecord, start: datetime, hours: float, **fields: object) -> PassRecord:
    values: dict[str, object] = {
        "pass_id": uuid.uuid4().hex[:16],
        "booking_id": uuid.uuid4(),
        "seat_id": seat_record.id,
        "seat_label": seat_record.label,
        "holder_id": uuid.uuid4(),
        "holder_name": f"holder of {seat_record.label}",
        "valid_from": start - TIMING.checkin_open,
        "valid_until": start + timedelta(hours=hours),
    }
    return PassRecord.model_validate(values | fields)


def check_in(store: Store, record: PassRecord, direction: str, at: datetime) -> None:
    store.record_checkin(
        pass_id=record.pass_id, holder="h", door_id="front", direction=direction, method="qr", at=at,
        outbox_payload={},
    )  # fmt: skip


def test_each_seat_state_and_the_arrivals_follow_passes_checkins_and_revocations(store: Store) -> None:
    seats = {label: seat(label, QUIET, "Quiet") for label in ("A1", "A2", "A3", "A4", "A5", "A6")}
    seats |= {"B1": seat("B1", GROUP, "Group"), "B9": seat("B9", GROUP, "Group", active=False)}
    inside = booking(seats["A1"], NOW - timedelta(hours=1), 3)
    later = booking(seats["A2"], NOW + timedelta(hours=2), 2, holder_name="Priya")
    missing = booking(seats["A3"], NOW - timedelta(minutes=20), 2, holder_name="Late Lalit")
    cancelled = booking(seats["A4"], NOW + timedelta(hours=1), 1)
    left = booking(seats["A5"], NOW - timedelta(hours=2), 4)
    no_show_revoked = booking(seats["B1"], NOW - timedelta(minutes=30), 3, status=PassStatus.REVOKED)
    due_now = booking(seats["A6"], NOW - timedelta(minutes=5), 2, holder_name="Just Due")
    tomorrow = booking(seats["A6"], NOW + timedelta(hours=20), 2)
    passes = [inside, later, missing, cancelled, left, no_show_revoked, due_now, tomorrow]
    page = PullResponse(
        cursor="c1", full_resync=True, seats=list(seats.values()), passes=passes,
        revocations=[Revocation(pass_id=cancelled.pass_id, revoked_at=NOW, reason="cancelled")],
    )  # fmt: skip
    SyncStore(store).apply_pull(page)
    check_in(store, inside, "in", NOW - timedelta(minutes=50))
    check_in(store, left, "in", NOW - timedelta(hours=2))
    check_in(store, left, "out", NOW - timedelta(minutes=10))

    today = todays_passes(store, NOW, KOLKATA, TIMING)
    zones = seat_map(store, today, NOW, KOLKATA, TIMING.no_show_grace)
    states = {s["label"]: s["state"] for zone in zones for s in zone["seats"]}
    assert [zone["name"] for zone in zones] == ["Group", "Quiet"]
    assert states == {
        "A1": "occupied", "A2": "booked", "A3": "no_show", "A4": "free", "A5": "booked", "A6": "booked",
        "B1": "no_show",
    }  # fmt: skip
    quiet = zones[1]
    assert quiet["counts"] == {"free": 1, "booked": 3, "occupied": 1, "no_show": 1}
    occupied = next(s for s in quiet["seats"] if s["label"] == "A1")
    assert occupied["holder"] == "holder of A1" and occupied["until"] == "14:00"  # library time

    arrivals = expected_arrivals(today, NOW, KOLKATA, TIMING.no_show_grace)
    assert [(a["start_local"], a["holder"], a["late"]) for a in arrivals] == [
        ("11:40", "Late Lalit", True),
        ("11:55", "Just Due", False),
        ("14:00", "Priya", False),
    ]


def test_the_kiosk_uses_the_library_times_synced_from_the_cloud_over_its_config(store: Store) -> None:
    kiosk = SimpleNamespace(checkin_open_minutes=15, no_show_grace_minutes=15)
    agent = cast(KioskAgent, SimpleNamespace(config=SimpleNamespace(kiosk=kiosk), store=store))
    assert booking_timing(agent) == TIMING  # nothing synced yet: the edge config

    timing = LibraryTiming(checkin_open_minutes=30, no_show_grace_minutes=10)
    SyncStore(store).apply_pull(PullResponse(cursor="c1", library=timing))
    assert booking_timing(agent) == BookingTiming(timedelta(minutes=30), timedelta(minutes=10))

    store.set_setting(LIBRARY_TIMING_SETTING, "{not json")
    assert booking_timing(agent) == TIMING  # unreadable: the edge config again, no crash


def test_kwh_today_and_yesterday_split_at_local_midnight(store: Store) -> None:
    enroll_device(store, device_id="main-meter", kind="energy")
    enroll_device(store, device_id="ac-meter", kind="energy")
    local_midnight = datetime(2026, 11, 24, 0, 0, tzinfo=KOLKATA)
    readings = [(-20, 100.0), (-6, 108.5), (-1, 112.5), (2, 113.0), (11, 120.25)]  # hours from midnight
    for hours, kwh in readings:
        store.record_telemetry("main-meter", "energy", kwh, local_midnight + timedelta(hours=hours))
    store.record_telemetry("ac-meter", "energy", 3.0, local_midnight + timedelta(hours=1))
    store.record_telemetry("ac-meter", "energy", 4.5, local_midnight + timedelta(hours=10))

    panel = energy_panel(store, KOLKATA, NOW)
    assert panel["meters"] == [
        {"id": "ac-meter", "today_kwh": 1.5, "yesterday_kwh": 0.0},
        {"id": "main-meter", "today_kwh": 7.75, "yesterday_kwh": 12.5},
    ]
    assert (panel["today_kwh"], panel["yesterday_kwh"]) == (9.25, 12.5)
    assert panel["yesterday_bar"] == 288.0 and panel["today_bar"] == round(9.25 / 12.5 * 288, 1)


def test_battery_is_a_clamped_percentage_and_garbage_is_not_shown(store: Store) -> None:
    for device_id, value in (
        ("scanner-a", "15.4"),
        ("scanner-b", "140"),
        ("scanner-c", "nan"),
        ("door", None),
    ):
        enroll_device(store, device_id=device_id, kind="scanner")
        if value is not None:
            store.set_device_state(device_id, "battery", value, NOW)
    batteries = {device["id"]: device["battery"] for device in devices_panel(store, KOLKATA)}
    assert batteries == {"scanner-a": 15, "scanner-b": 100, "scanner-c": None, "door": None}


def test_day_panels_are_rebuilt_on_a_write_or_a_new_minute(store: Store) -> None:
    cache, builds = DayPanelCache(), []

    def build() -> dict[str, object]:
        builds.append(1)
        return {"n": len(builds)}

    assert cache.get(store, NOW, build) == {"n": 1}
    assert cache.get(store, NOW + timedelta(seconds=30), build) == {"n": 1}  # same minute, no write
    store.set_setting("anything", "1")
    assert cache.get(store, NOW + timedelta(seconds=31), build) == {"n": 2}
    assert cache.get(store, NOW + timedelta(minutes=1), build) == {"n": 3}
