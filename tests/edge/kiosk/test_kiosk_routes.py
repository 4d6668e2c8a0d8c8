"""The kiosk's routes over HTTP against a real agent: login, lockout, desk actions, live stream."""

from __future__ import annotations

import json
import re

import httpx

from edge.kiosk.charts import MAX_CHART_POINTS, day_chart
from edge.kiosk.staff import MAX_FAILURES
from edge.sync_store import SyncStore
from shared.passes import generate_signing_key
from shared.topics import UNLOCK, Component, command_topic
from tests.edge.conftest import Observer, PassFactory, eventually
from tests.edge.kiosk.conftest import STAFF_ID, STAFF_PIN, KioskRig

DOOR = "front-door"


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def test_login_page_is_public_and_everything_else_needs_a_pin(kiosk: KioskRig) -> None:
    async with httpx.AsyncClient(base_url=kiosk.url) as http:
        page = await http.get("/")
        live = await http.get("/api/live")
        unlock = await http.post("/actions/unlock", data={"door_id": DOOR, "confirmed": "yes"})
        css = await http.get("/static/kiosk.css")
    assert page.status_code == 200 and 'label for="pin"' in page.text and "Inside now" in page.text
    assert live.status_code == 401 and live.json()["error"]["code"] == "unauthorized"
    assert unlock.status_code == 303 and kiosk.store.pending_outbox() == []
    assert css.status_code == 200 and "http" not in page.text.replace("http://www.w3.org", "")


async def test_right_pin_sets_a_strict_httponly_session(kiosk: KioskRig) -> None:
    async with httpx.AsyncClient(base_url=kiosk.url) as http:
        login = await http.post("/login", data={"pin": STAFF_PIN})
        page = await http.get("/")
    cookie = login.headers["set-cookie"].lower()
    assert login.status_code == 303 and "httponly" in cookie and "samesite=strict" in cookie
    assert page.status_code == 200 and "Asha Desk" in page.text and 'id="feed"' in page.text


async def test_a_forged_or_garbage_cookie_is_not_a_session(kiosk: KioskRig) -> None:
    async with httpx.AsyncClient(base_url=kiosk.url, cookies={"kiosk_session": "e30.e30.AAAA"}) as http:
        page = await http.get("/")
    assert 'label for="pin"' in page.text and "Asha Desk" not in page.text


async def test_five_wrong_pins_lock_out_even_the_right_one(kiosk: KioskRig) -> None:
    async with httpx.AsyncClient(base_url=kiosk.url) as http:
        wrong = [await http.post("/login", data={"pin": "0000"}) for _ in range(MAX_FAILURES)]
        locked = await http.post("/login", data={"pin": STAFF_PIN})
        garbage = await http.post("/login", content=b"\xff" * 10_000)
    assert [response.status_code for response in wrong] == [401] * MAX_FAILURES
    assert locked.status_code == 429 and "Wait 5 minutes" in locked.text
    assert "kiosk_session" not in locked.headers.get("set-cookie", "")
    assert garbage.status_code in (400, 429)


async def test_unlock_asks_for_confirmation_then_unlocks_and_records(
    kiosk: KioskRig, staff_client: httpx.AsyncClient
) -> None:
    csrf = csrf_of((await staff_client.get("/")).text)
    first = await staff_client.post("/actions/unlock", data={"csrf": csrf, "door_id": DOOR})
    assert first.status_code == 200 and "Unlock door" in first.text
    assert not [row for row in kiosk.store.pending_outbox() if row["kind"] == "remote_unlock"]
    prefix = kiosk.store.device(DOOR).topic_prefix  # type: ignore[union-attr]
    async with Observer(kiosk.agent.mqtt_host, kiosk.agent.mqtt_port) as observer:
        done = await staff_client.post(
            "/actions/unlock", data={"csrf": csrf, "door_id": DOOR, "confirmed": "yes"}
        )
        await observer.wait_for(command_topic(prefix, Component.LOCK, "door_lock"), UNLOCK)
    assert done.status_code == 200 and "Unlock sent" in done.text
    [recorded] = [row for row in kiosk.store.pending_outbox() if row["kind"] == "remote_unlock"]
    assert recorded["payload"]["staff_id"] == STAFF_ID and recorded["payload"]["door_id"] == DOOR


async def test_manual_checkin_and_checkout_move_occupancy(
    kiosk: KioskRig, staff_client: httpx.AsyncClient
) -> None:
    csrf = csrf_of((await staff_client.get("/")).text)
    form = {"csrf": csrf, "door_id": DOOR, "who": "Walk-in Ravi", "confirmed": "yes"}
    checked_in = await staff_client.post("/actions/checkin", data=form)
    assert checked_in.status_code == 200 and kiosk.store.occupancy() == 1
    await staff_client.post("/actions/checkout", data=form)
    rows = kiosk.store.checkins()
    assert kiosk.store.occupancy() == 0
    assert [(row["direction"], row["method"], row["holder"]) for row in rows] == [
        ("in", "manual", "Walk-in Ravi"),
        ("out", "manual", "Walk-in Ravi"),
    ]
    queued = [row["payload"]["staff_id"] for row in kiosk.store.pending_outbox() if row["kind"] == "checkin"]
    assert queued == [STAFF_ID]


async def test_bad_actions_get_clear_errors_not_crashes(
    kiosk: KioskRig, staff_client: httpx.AsyncClient
) -> None:
    csrf = csrf_of((await staff_client.get("/")).text)
    no_csrf = await staff_client.post("/actions/unlock", data={"door_id": DOOR, "confirmed": "yes"})
    unknown_door = await staff_client.post(
        "/actions/unlock", data={"csrf": csrf, "door_id": "nope", "confirmed": "yes"}
    )
    unknown_action = await staff_client.post("/actions/explode", data={"csrf": csrf})
    unknown_alert = await staff_client.post("/actions/acknowledge", data={"csrf": csrf, "alert_id": "x"})
    too_big = await staff_client.post("/actions/checkin", content=b"a=" + b"b" * 10_000)
    assert no_csrf.status_code == 403
    assert unknown_door.status_code == 400 and "unknown door" in unknown_door.text
    assert unknown_action.status_code == 400 and unknown_alert.status_code == 400
    assert too_big.status_code == 400
    assert (await staff_client.get("/health")).status_code == 200


async def test_acknowledging_an_alert_clears_and_records_it(
    kiosk: KioskRig, staff_client: httpx.AsyncClient
) -> None:
    assert kiosk.agent.events is not None
    await kiosk.agent.events.alert("door_held_open", DOOR, "door open for 60 s")
    page = (await staff_client.get("/")).text
    assert "door_held_open" in page
    alert_id = re.search(r'name="alert_id" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    done = await staff_client.post("/actions/acknowledge", data={"csrf": csrf_of(page), "alert_id": alert_id})
    assert done.status_code == 200 and list(kiosk.store.open_alerts()) == []
    assert "alert_acknowledged" in [row["kind"] for row in kiosk.store.pending_outbox()]


async def next_snapshot(lines: object) -> dict:
    event = ""
    async for line in lines:  # type: ignore[attr-defined]
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: ") and event == "snapshot":
            return json.loads(line.removeprefix("data: "))
    raise AssertionError("stream ended")


async def test_live_stream_pushes_a_rejected_scan_with_its_reason(
    kiosk: KioskRig, staff_client: httpx.AsyncClient, passes: PassFactory
) -> None:
    await kiosk.simulator["hall-env"].publish_state("co2", "950")
    await eventually(lambda: kiosk.store.telemetry("hall-env", "co2"))
    async with staff_client.stream("GET", "/api/live") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.aiter_lines()
        first = await next_snapshot(lines)
        forged, _ = passes.make(key=generate_signing_key())
        await kiosk.simulator[DOOR].scan(forged)
        second = await next_snapshot(lines)
        while not second["feed"]:
            second = await next_snapshot(lines)
    assert first["feed"] == [] and {d["id"] for d in first["devices"]} >= {DOOR, "hall-env"}
    co2 = next(r for r in first["environment"] if r["metric"] == "co2")
    assert co2["device_id"] == "hall-env" and isinstance(co2["latest"], float)
    [rejected] = second["feed"]
    assert rejected["accepted"] is False and rejected["reason"].startswith("unknown_key")
    assert second["sync"]["queue_depth"] >= 1 and second["sync"]["dead_letters"] == 0
    synced = SyncStore(kiosk.store)
    synced.acknowledge(row["id"] for row in synced.pending(500))  # as the sync client does
    assert "rejected: unknown_key" in (await staff_client.get("/")).text


def test_day_chart_places_readings_by_time_of_day() -> None:
    assert day_chart([]) == "" and day_chart([(0.5, 5.0)]) == ""
    assert day_chart([(0.0, 400.0), (0.5, 800.0), (0.75, 600.0)]) == "0.0,72.0 144.0,0.0 216.0,36.0"
    minutes = [(m / 1440, float(m)) for m in range(1440)]
    assert len(day_chart(minutes).split()) <= MAX_CHART_POINTS
