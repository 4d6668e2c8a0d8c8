"""A real agent (embedded amqtt broker, simulated demo devices) with its kiosk and one staff PIN."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from edge.agent import Agent
from edge.kiosk.staff import ensure_staff
from edge.simulator import DeviceSimulator, register_demo_devices
from edge.store import Store
from tests.edge.conftest import PassFactory, make_config

STAFF_PIN = "4821"
STAFF_ID = "staff-1"


@dataclass
class KioskRig:
    agent: Agent
    simulator: DeviceSimulator

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.agent.kiosk_port}"

    @property
    def store(self) -> Store:
        assert self.agent.store is not None
        return self.agent.store


@pytest.fixture
async def kiosk(passes: PassFactory, tmp_path: Path) -> AsyncIterator[KioskRig]:
    store = Store(tmp_path / "edge.sqlite3")
    devices = register_demo_devices(store)
    ensure_staff(store, STAFF_ID, "Asha Desk", STAFF_PIN)
    store.close()
    agent = Agent(make_config(passes, tmp_path))
    await agent.start()
    simulator = DeviceSimulator(agent.mqtt_host, agent.mqtt_port, devices)
    await simulator.start()
    yield KioskRig(agent, simulator)
    await simulator.stop()
    await agent.stop()


@pytest.fixture
async def staff_client(kiosk: KioskRig) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client logged in with the staff PIN."""
    async with httpx.AsyncClient(base_url=kiosk.url) as client:
        response = await client.post("/login", data={"pin": STAFF_PIN})
        assert response.status_code == 303
        yield client
