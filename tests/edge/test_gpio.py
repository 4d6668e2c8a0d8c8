"""A door wired to the Pi's GPIO (gpiozero MockFactory) behind the same door logic."""

from __future__ import annotations

import asyncio
from pathlib import Path

from edge.agent import Agent
from edge.devices import enroll_device
from edge.simulator import DeviceSimulator, SimDevice
from edge.store import Store
from shared.topics import DeviceKind
from tests.edge.conftest import eventually, make_config


async def test_gpio_door_strike_exit_button_contact_and_pir(passes, tmp_path: Path) -> None:
    store = Store(tmp_path / "edge.sqlite3")
    scanner = enroll_device(store, device_id="gpio-scanner", kind="scanner", door_id="gpio-door")
    store.close()
    config = make_config(
        passes, tmp_path, gpio={"enabled": True, "pin_factory": "mock"}, kiosk={"enabled": False}
    )
    agent = Agent(config)
    await agent.start()
    spec = SimDevice(
        id="gpio-scanner",
        kind=DeviceKind.SCANNER,
        topic_prefix=scanner.record.topic_prefix,
        username=scanner.record.username,
        password=scanner.password,
    )
    simulator = DeviceSimulator(agent.mqtt_host, agent.mqtt_port, [spec])
    await simulator.start()
    try:
        gpio, live_store, doors, rules = agent.gpio_door, agent.store, agent.doors, agent.rules
        assert gpio is not None and live_store is not None and doors is not None and rules is not None
        strike = gpio.factory.pin(config.gpio.strike_pin)
        await simulator["gpio-scanner"].scan(passes.make()[0])
        await eventually(lambda: strike.state)  # relay energised: the strike releases
        assert [row["method"] for row in live_store.checkins()] == ["qr"]

        gpio.factory.pin(config.gpio.exit_button_pin).drive_low()  # pressed
        await eventually(lambda: len(live_store.checkins()) == 2)
        assert live_store.checkins()[-1]["method"] == "exit_button"

        await doors.lock("gpio-door")
        assert not strike.state
        gpio.factory.pin(config.gpio.contact_pin).drive_low()  # closed
        await asyncio.sleep(0)
        gpio.factory.pin(config.gpio.contact_pin).drive_high()  # opened while locked
        await eventually(lambda: bool(live_store.alerts("forced_door")))

        gpio.factory.pin(config.gpio.pir_pin).drive_high()
        await eventually(lambda: rules.last_activity is not None)
        assert live_store.alerts("lock_not_responding") == []
    finally:
        await simulator.stop()
        await agent.stop()
