"""The QR check-in pipeline end to end through a real broker (amqtt and Mosquitto), no cloud."""

from __future__ import annotations

import asyncio
import json

import httpx

from edge.local_link import LocalLink
from edge.mqtt import MqttLink
from shared.passes import generate_signing_key
from shared.topics import LOCK, UNLOCK, Component, command_topic, event_topic
from tests.edge.conftest import Observer, eventually

DOOR = "front-door"
EXIT = "exit-scanner"


def lock_command(rig) -> str:
    return command_topic(rig.devices[DOOR].topic_prefix, Component.LOCK, "door_lock")


async def mosquitto_pub(rig, device_id: str, topic: str, message: bytes) -> None:
    device = rig.devices[device_id]
    process = await asyncio.create_subprocess_exec(
        "mosquitto_pub",
        "-h", rig.host, "-p", str(rig.port), "-u", device.username, "-P", device.password,
        "-i", f"pub-{device_id}", "-q", "1", "-t", topic, "-s",
        stdin=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await process.communicate(message)
    assert process.returncode == 0, stderr.decode()


async def test_mosquitto_pub_of_valid_pass_unlocks_the_door(rig_factory, passes) -> None:
    rig = await rig_factory()
    library = rig.agent.config.library_id
    text, claims = passes.make()
    async with Observer(rig.host, rig.port) as observer:
        await mosquitto_pub(rig, DOOR, rig.devices[DOOR].topics()["scan"], text.encode())
        assert await observer.wait_for(lock_command(rig), UNLOCK) == UNLOCK
        event = await observer.wait_event(library, "checkin")
        await observer.wait_for(rig.devices[DOOR].topics()["led_green_command"], "ON")
    assert event["pass_id"] == claims.pass_id and event["occupancy"] == 1
    recorded = rig.agent.store.checkins()
    assert [row["pass_id"] for row in recorded] == [claims.pass_id]
    assert rig.simulator[DOOR].states["lock"] == "UNLOCKED"  # the simulated lock obeyed


async def test_bad_passes_do_not_unlock_and_say_why(rig_factory, passes) -> None:
    rig = await rig_factory()
    library = rig.agent.config.library_id
    now_text, _ = passes.make()
    revoked_text, revoked = passes.make()
    rig.agent.store.revoke(revoked.pass_id, "refunded", revoked.valid_from)
    from datetime import UTC, datetime, timedelta

    past = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    tampered = now_text[:-6] + ("A" if now_text[-6] != "A" else "B") + now_text[-5:]
    cases = [
        (tampered.encode(), {"bad_signature", "malformed"}),
        (passes.make(valid_from=past, valid_until=past + timedelta(hours=2))[0].encode(), {"expired"}),
        (revoked_text.encode(), {"revoked"}),
        (passes.make(library=__import__("uuid").uuid4())[0].encode(), {"wrong_library"}),
        (passes.make(key=generate_signing_key())[0].encode(), {"unknown_key"}),
        (b"\xff\xfe not utf-8 \x80", {"malformed"}),
        (b"hello world", {"malformed"}),
        (b"x" * 2000, {"too_long"}),
    ]
    scan_topic = rig.devices[DOOR].topics()["scan"]
    async with Observer(rig.host, rig.port) as observer:
        for index, (payload, reasons) in enumerate(cases, start=1):
            await mosquitto_pub(rig, DOOR, scan_topic, payload)
            rejected = await observer.wait_count(event_topic(library, "rejected"), index)
            assert json.loads(rejected[-1])["reason"] in reasons, (index, rejected[-1])
        await observer.wait_for(rig.devices[DOOR].topics()["led_red_command"], "ON")
        assert UNLOCK not in observer.payloads(lock_command(rig))
    assert rig.agent.store.checkins() == []
    assert rig.agent.store.outbox_depth() == len(cases)  # every rejection is queued for the cloud


async def test_anti_passback_and_exit_by_scan(rig_factory, passes) -> None:
    rig = await rig_factory()
    library = rig.agent.config.library_id
    text, claims = passes.make()
    async with Observer(rig.host, rig.port) as observer:
        await rig.simulator[DOOR].scan(text)
        await observer.wait_event(library, "checkin")
        await rig.simulator[DOOR].scan(text + " ")  # a different payload, so the broker forwards it
        rejected = await observer.wait_event(library, "rejected")
        assert rejected["reason"] == "anti_passback"
        await rig.simulator[EXIT].scan(text)
        checkout = await observer.wait_event(library, "checkout")
        assert checkout["pass_id"] == claims.pass_id and checkout["occupancy"] == 0
        await rig.simulator[DOOR].scan(text)
        await observer.wait_count(event_topic(library, "checkin"), 2)
    directions = [row["direction"] for row in rig.agent.store.checkins()]
    assert directions == ["in", "out", "in"]


async def test_door_relocks_after_timeout_and_when_contact_closes(rig_factory, passes) -> None:
    rig = await rig_factory(checkin={"relock_seconds": 0.2})
    async with Observer(rig.host, rig.port) as observer:
        await rig.simulator[DOOR].scan(passes.make()[0])
        await observer.wait_for(lock_command(rig), UNLOCK)
        await observer.wait_for(lock_command(rig), LOCK)
    rig2 = await rig_factory(checkin={"relock_seconds": 60})
    door = rig2.simulator[DOOR]
    async with Observer(rig2.host, rig2.port) as observer:
        await door.scan(passes.make()[0])
        await observer.wait_for(lock_command(rig2), UNLOCK)
        await door.publish_state("contact", "ON")
        await door.publish_state("contact", "OFF")
        await observer.wait_for(lock_command(rig2), LOCK)
    assert rig2.agent.store.alerts("forced_door") == []


async def test_lock_that_does_not_confirm_raises_alert(rig_factory, passes) -> None:
    rig = await rig_factory(checkin={"lock_confirm_seconds": 0.3})
    rig.simulator[DOOR].respond_to_lock = False
    async with Observer(rig.host, rig.port) as observer:
        await rig.simulator[DOOR].scan(passes.make()[0])
        alert = await observer.wait_event(rig.agent.config.library_id, "alert")
    assert alert["alert"] == "lock_not_responding" and alert["device_id"] == DOOR
    assert [a["kind"] for a in rig.agent.store.alerts()] == ["lock_not_responding"]


async def test_exit_button_records_checkout_and_opens(rig_factory, passes) -> None:
    rig = await rig_factory()
    library = rig.agent.config.library_id
    async with Observer(rig.host, rig.port) as observer:
        await rig.simulator[DOOR].scan(passes.make()[0])
        await observer.wait_event(library, "checkin")
        await rig.simulator[DOOR].publish_state("exit_button", "ON")
        checkout = await observer.wait_event(library, "checkout")
        await observer.wait_count(lock_command(rig), 2)
    assert checkout["method"] == "exit_button" and checkout["occupancy"] == 0
    assert [row["method"] for row in rig.agent.store.checkins()] == ["qr", "exit_button"]


async def test_retained_scan_is_not_replayed_after_reconnect(rig_factory, passes) -> None:
    rig = await rig_factory()
    library = rig.agent.config.library_id
    agent = rig.agent
    async with Observer(rig.host, rig.port) as observer:
        await rig.simulator[DOOR].scan(passes.make()[0])  # retained, as ESPHome publishes it
        await observer.wait_event(library, "checkin")
        await agent.link.stop()
        agent.link.start()
        await agent.link.wait_connected()
        second, _ = passes.make()
        await rig.simulator[DOOR].scan(second)  # proves the agent re-subscribed
        await observer.wait_count(event_topic(library, "checkin"), 2)
    assert len(agent.store.checkins()) == 2
    assert agent.link.connects == 2
    assert isinstance(agent.link, LocalLink if rig.broker_kind == "amqtt" else MqttLink)


async def test_bad_device_messages_are_rejected_and_the_agent_keeps_working(rig_factory, passes) -> None:
    rig = await rig_factory()
    env = rig.simulator["hall-env"]
    await env.publish_state("co2", "not-a-number")
    await env.publish_state("temperature", "nan")
    await env.publish_state("humidity", "9" * 5000)
    await rig.simulator[DOOR].publish_state("lock", "EXPLODED")
    await env.publish_state("noise", "41.5")
    async with Observer(rig.host, rig.port) as observer:
        await rig.simulator[DOOR].scan(passes.make()[0])
        await observer.wait_for(lock_command(rig), UNLOCK)
    assert rig.agent.rejected_messages >= 4
    assert rig.agent.store.telemetry("hall-env", "noise")[0]["last"] == 41.5


async def test_health_reports_broker_store_devices_and_sync(rig_factory) -> None:
    rig = await rig_factory()

    def door_online() -> bool:
        return any(d["id"] == DOOR and d["online"] for d in rig.agent.health()["devices"])

    # the simulator returns once its devices connected; the agent reads their `online` after that
    await eventually(door_online)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rig.agent.kiosk_port}") as http:
        health = (await http.get("/health")).json()
        page = await http.get("/")
    assert health["status"] == "ok"
    assert health["broker"]["mode"] == ("embedded" if rig.broker_kind == "amqtt" else "external")
    assert health["store"]["ok"] and health["sync"]["queued_events"] == 0
    online = {device["id"]: device["online"] for device in health["devices"]}
    assert online[DOOR] is True
    assert page.status_code == 200 and "Inside now" in page.text
