"""Live seat map over WebSocket: auth, snapshot, seq-numbered changes through Redis pub/sub."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from cloud.booking.live import MemoryLiveHub, RedisLiveHub, live_hub_for
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


async def test_in_process_hub_numbers_and_delivers_events() -> None:
    hub = MemoryLiveHub()
    library = uuid.uuid4()
    async with hub.subscription(library) as events:
        await asyncio.to_thread(hub.publish, library, {"type": "seat", "event": "booked"})
        hub.publish(library, {"type": "seat", "event": "released"})
        received = [await asyncio.wait_for(events.get(), 5) for _ in range(2)]
    delivered = [(e.seq, e.data["event"], e.data["seq"]) for e in received]
    assert delivered == [(1, "booked", 1), (2, "released", 2)]
    assert await hub.current_seq(library) == 2
