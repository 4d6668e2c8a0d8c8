"""Every rule fires: CO2, energy budget, after-hours lockdown, empty room, door held open, forced door."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from shared.topics import LOCK, Component, command_topic
from tests.edge.conftest import Observer, eventually

DOOR = "front-door"


def relay_command(rig, relay_id: str) -> str:
    return command_topic(rig.devices[relay_id].topic_prefix, Component.SWITCH, "relay")


async def test_co2_high_alerts_and_starts_ventilation(rig_factory) -> None:
    rig = await rig_factory(rules={"co2_threshold_ppm": 1000, "ventilation_relay": "hall-vent"})
    async with Observer(rig.host, rig.port) as observer:
        await rig.simulator["hall-env"].publish_state("co2", "1450")
        alert = await observer.wait_event(rig.agent.config.library_id, "alert")
        await observer.wait_for(relay_command(rig, "hall-vent"), "ON")
    assert alert["alert"] == "co2_high"


async def test_energy_budget_exceeded_alerts(rig_factory) -> None:
    rig = await rig_factory(rules={"energy_daily_budget_kwh": 0.5})
    meter = rig.simulator["main-meter"]
    async with Observer(rig.host, rig.port) as observer:
        await meter.publish_state("energy", "10.0")
        await meter.publish_state("energy", "10.9")
        alert = await observer.wait_event(rig.agent.config.library_id, "alert")
    assert alert["alert"] == "energy_budget" and alert["device_id"] == "main-meter"


async def test_after_hours_lockdown_locks_doors_and_refuses_entry(rig_factory, passes) -> None:
    now = datetime.now(UTC)
    opens, closes = (now + timedelta(hours=2)).time(), (now + timedelta(hours=3)).time()
    rig = await rig_factory(rules={"open_at": opens.isoformat(), "close_at": closes.isoformat()})
    library = rig.agent.config.library_id
    lock_topic = command_topic(rig.devices[DOOR].topic_prefix, Component.LOCK, "door_lock")
    async with Observer(rig.host, rig.port) as observer:
        await rig.agent.rules.tick(now)
        assert rig.agent.doors.lockdown
        # The lockdown may have happened before the door connected: it is re-locked when it comes online.
        await eventually(lambda: (lock_topic, LOCK) in rig.simulator[DOOR].commands)
        await rig.simulator[DOOR].scan(passes.make()[0])
        rejected = await observer.wait_event(library, "rejected")
        await rig.agent.rules.tick(now + timedelta(hours=2, minutes=1))
    assert rejected["detail"] == "after-hours lockdown"
    assert rig.agent.doors.lockdown is False  # opening time lifts it


async def test_empty_room_switches_comfort_relays_off(rig_factory) -> None:
    rig = await rig_factory(rules={"comfort_relays": ["hall-ac", "hall-lights"], "empty_room_minutes": 15})
    now = datetime.now(UTC)
    async with Observer(rig.host, rig.port) as observer:
        await rig.agent.rules.tick(now)
        await rig.agent.rules.tick(now + timedelta(minutes=14))
        assert observer.payloads(relay_command(rig, "hall-ac")) == []
        await rig.agent.rules.tick(now + timedelta(minutes=16))
        await observer.wait_for(relay_command(rig, "hall-ac"), "OFF")
        await observer.wait_for(relay_command(rig, "hall-lights"), "OFF")


async def test_door_held_open_and_forced_door_alert(rig_factory) -> None:
    rig = await rig_factory(rules={"door_held_open_seconds": 0.2})
    library = rig.agent.config.library_id
    async with Observer(rig.host, rig.port) as observer:
        await rig.simulator[DOOR].publish_state("contact", "ON")  # nobody unlocked it
        alerts = await observer.wait_count(f"studyspot/{library}/events/alert", 2)
    kinds = {a["kind"] for a in rig.agent.store.alerts()}
    assert kinds == {"forced_door", "door_held_open"}, alerts


def test_opening_hours_across_midnight() -> None:
    from edge.rules import within_hours

    assert within_hours(time(23, 30), time(22, 0), time(2, 0))
    assert within_hours(time(1, 0), time(22, 0), time(2, 0))
    assert not within_hours(time(12, 0), time(22, 0), time(2, 0))
    assert within_hours(time(12, 0), time(6, 0), time(23, 0))


async def test_device_going_offline_raises_an_alert_for_the_cloud(rig_factory) -> None:
    from shared.topics import status_topic

    rig = await rig_factory()
    library = rig.agent.config.library_id
    async with Observer(rig.host, rig.port) as observer:
        # what the broker sends when the sensor's connection dies: its will, live (not a retained copy)
        await observer.client.publish(status_topic(rig.devices["hall-env"].topic_prefix), "offline", qos=1)
        alert = await observer.wait_event(library, "alert")
    assert (alert["alert"], alert["device_id"]) == ("device_offline", "hall-env")
    queued = [row["payload"] for row in rig.agent.store.pending_outbox() if row["kind"] == "alert"]
    assert [(item["kind"], item["device_id"]) for item in queued] == [("device_offline", "hall-env")]
