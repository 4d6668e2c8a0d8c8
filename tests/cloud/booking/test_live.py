"""Live seat map over WebSocket: auth, snapshot, seq-numbered changes through Redis pub/sub."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from cloud.app import create_app
from cloud.booking.live import LiveEvent, LiveSubscriber, MemoryLiveHub, RedisLiveHub, live_hub_for
from cloud.config import CloudSettings
from tests.cloud.booking.conftest import build_library
from tests.cloud.booking.helpers import ALL_DAY, hourly, now_slot


def _token(account: Any) -> str:
    return str(account.headers["Authorization"].split(" ", 1)[1])


async def _next(socket: Any) -> dict[str, Any]:
    return dict(json.loads(await asyncio.wait_for(socket.recv(), 10)))


async def test_snapshot_then_booked_occupied_released_in_sequence(
    cloud_app: FastAPI, cloud_client: httpx.AsyncClient, live_server: str, owner: Any, student: Any
) -> None:
    # the socket is served by the uvicorn app, the writes by another app instance: Redis fans out
    setup = await build_library(cloud_client, owner, name="Live Hall", extra={"opening_hours": ALL_DAY})
    assert isinstance(live_hub_for(cloud_app.state), RedisLiveHub)
    url = live_server.replace("http", "ws") + f"/api/v1/libraries/{setup.id}/live?token={_token(student)}"
    async with connect(url) as socket:
        snapshot = await _next(socket)
        assert snapshot["type"] == "snapshot" and snapshot["seq"] == 0
        assert {seat["label"]: seat["state"] for seat in snapshot["seats"]} == dict.fromkeys(
            ("A1", "A2", "A3", "C1"), "free"
        )
        body = hourly(setup, "A1", now_slot(), "Free hour")
        booking = (await cloud_client.post("/api/v1/bookings", json=body, headers=student.headers)).json()
        await cloud_client.post(f"/api/v1/bookings/{booking['id']}/check-in", headers=owner.headers)
        other_body = hourly(setup, "A2", now_slot())
        other = (await cloud_client.post("/api/v1/bookings", json=other_body, headers=student.headers)).json()
        await cloud_client.post(f"/api/v1/bookings/{other['id']}/cancel", headers=student.headers)
        events = [await _next(socket) for _ in range(4)]
    assert [(e["seq"], e["event"]) for e in events] == [
        (1, "booked"),
        (2, "occupied"),
        (3, "booked"),
        (4, "released"),
    ]
    assert events[0]["seat_id"] == setup.seat("A1")["id"] and events[3]["seat_id"] == setup.seat("A2")["id"]
    async with connect(url) as socket:
        again = await _next(socket)
    assert again["seq"] == 4
    assert {seat["label"]: seat["state"] for seat in again["seats"]}["A1"] == "occupied"


async def test_live_socket_needs_a_valid_token_and_a_known_library(
    live_server: str, cloud_client: httpx.AsyncClient, owner: Any, student: Any
) -> None:
    setup = await build_library(cloud_client, owner)
    base = live_server.replace("http", "ws")
    with pytest.raises(InvalidStatus):
        async with connect(f"{base}/api/v1/libraries/{setup.id}/live?token=forged"):
            pass
    async with connect(f"{base}/api/v1/libraries/{uuid.uuid4()}/live?token={_token(student)}") as socket:
        with pytest.raises(ConnectionClosed) as unknown:
            await _next(socket)
    assert unknown.value.rcvd is not None and unknown.value.rcvd.code == 4404


async def test_without_redis_the_in_process_hub_sends_the_booking_to_the_socket(
    cloud_settings: CloudSettings, cloud_client: httpx.AsyncClient, owner: Any, student: Any
) -> None:
    setup = await build_library(cloud_client, owner, name="Memory Hall", extra={"opening_hours": ALL_DAY})
    app = create_app(cloud_settings.model_copy(update={"redis_url": None}))
    path = f"/api/v1/libraries/{setup.id}/live?token={_token(student)}"

    def watch_a_booking() -> list[dict[str, Any]]:  # the socket and the booking share one app
        with TestClient(app) as client, client.websocket_connect(path) as socket:
            snapshot = socket.receive_json()
            body = hourly(setup, "A1", now_slot(), "Free hour")
            booked = client.post("/api/v1/bookings", json=body, headers=student.headers)
            assert booked.status_code == 201, booked.text
            return [snapshot, socket.receive_json()]

    snapshot, event = await asyncio.to_thread(watch_a_booking)
    assert isinstance(live_hub_for(app.state), MemoryLiveHub)
    assert snapshot["seq"] == 0 and (event["seq"], event["event"]) == (1, "booked")


async def test_in_process_hub_numbers_and_delivers_events() -> None:
    hub = MemoryLiveHub()
    library = uuid.uuid4()
    sent: asyncio.Queue[str] = asyncio.Queue()

    async def send_text(text: str) -> None:
        sent.put_nowait(text)

    subscriber = LiveSubscriber(send_text)
    async with hub.subscription(library, subscriber):
        subscriber.start(0)
        await asyncio.to_thread(hub.publish, library, {"type": "seat", "event": "booked"})
        hub.publish(library, {"type": "seat", "event": "released"})
        received = [json.loads(await asyncio.wait_for(sent.get(), 5)) for _ in range(2)]
    assert [(e["seq"], e["event"]) for e in received] == [(1, "booked"), (2, "released")]
    assert await hub.current_seq(library) == 2


async def test_subscriber_holds_events_until_the_snapshot_and_keeps_order_behind_a_slow_send() -> None:
    sent: list[int] = []
    transport_drained, four_sent = asyncio.Event(), asyncio.Event()

    async def send_text(text: str) -> None:
        seq = json.loads(text)["seq"]
        if seq == 3:  # this client stopped reading: the send waits for the transport
            await transport_drained.wait()
        sent.append(seq)
        if seq == 4:
            four_sent.set()

    subscriber = LiveSubscriber(send_text)
    for seq in (1, 2, 3):  # while the snapshot (seq 1) is being read and sent
        subscriber.deliver(LiveEvent.numbered(seq, {"type": "seat"}))
    assert sent == []
    subscriber.start(1)
    subscriber.deliver(LiveEvent.numbered(4, {"type": "seat"}))
    assert sent == [2]  # sent at once; 3 waits in a task and 4 behind it
    transport_drained.set()
    await asyncio.wait_for(four_sent.wait(), 5)
    subscriber.deliver(LiveEvent.numbered(5, {"type": "seat"}))
    assert sent == [2, 3, 4, 5]


async def test_a_subscriber_stopped_mid_send_cancels_it() -> None:
    never = asyncio.Event()
    finished: list[str] = []

    async def send_text(text: str) -> None:
        try:
            await never.wait()
        finally:
            finished.append(text)

    subscriber = LiveSubscriber(send_text)
    subscriber.start(0)
    subscriber.deliver(LiveEvent.numbered(1, {"type": "seat"}))
    subscriber.deliver(LiveEvent.numbered(2, {"type": "seat"}))
    subscriber.stop()
    await asyncio.sleep(0.05)
    assert [json.loads(text)["seq"] for text in finished] == [1]  # closed, and 2 never started
