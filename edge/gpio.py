"""A door wired to the Pi itself, through gpiozero: strike relay, exit button, PIR, door contact.

gpiozero calls back from its own threads; every callback is handed to the event loop with
`call_soon_threadsafe`, so the door logic only ever runs on the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from edge.config import GpioSettings

log = logging.getLogger(__name__)


def make_pin_factory(name: str) -> Any:
    if name == "mock":
        from gpiozero.pins.mock import MockFactory

        return MockFactory()
    if name == "lgpio":
        from gpiozero.pins.lgpio import LGPIOFactory

        return LGPIOFactory()
    if name == "rpigpio":
        from gpiozero.pins.rpigpio import RPiGPIOFactory

        return RPiGPIOFactory()
    from gpiozero.pins.native import NativeFactory

    return NativeFactory()


class GpioDoor:
    """Implements `DoorActuator`; reports lock state, contact, exit button and motion back."""

    def __init__(
        self,
        settings: GpioSettings,
        loop: asyncio.AbstractEventLoop,
        *,
        on_lock_state: Callable[[str], Awaitable[None]],
        on_contact: Callable[[bool], Awaitable[None]],
        on_exit: Callable[[], Awaitable[None]],
        on_motion: Callable[[bool], Awaitable[None]],
    ) -> None:
        from gpiozero import Button, DigitalInputDevice, OutputDevice

        self.settings = settings
        self.loop = loop
        self._pending: set[asyncio.Future[None]] = set()
        self.factory = make_pin_factory(settings.pin_factory)
        self._on_lock_state = on_lock_state
        self.strike = OutputDevice(settings.strike_pin, pin_factory=self.factory, initial_value=False)
        self.exit_button = Button(settings.exit_button_pin, pin_factory=self.factory)
        # Reed contact to ground with pull-up: "pressed" (low) means the door is closed.
        self.contact = Button(settings.contact_pin, pin_factory=self.factory)
        # A PIR module's output is already a clean digital level; edge callbacks need no sampling thread.
        self.pir = DigitalInputDevice(settings.pir_pin, pull_up=False, pin_factory=self.factory)
        self.exit_button.when_pressed = lambda: self._spawn(on_exit())
        self.contact.when_released = lambda: self._spawn(on_contact(True))
        self.contact.when_pressed = lambda: self._spawn(on_contact(False))
        self.pir.when_activated = lambda: self._spawn(on_motion(True))
        self.pir.when_deactivated = lambda: self._spawn(on_motion(False))

    def _spawn(self, coro: Awaitable[None]) -> None:
        def start() -> None:
            task = asyncio.ensure_future(coro)
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

        self.loop.call_soon_threadsafe(start)

    async def command(self, command: str) -> None:
        unlock = command.upper() in ("UNLOCK", "OPEN")
        if unlock:
            self.strike.on()
        else:
            self.strike.off()
        # The relay's own state is the confirmation: it switched or gpiozero raised.
        await self._on_lock_state("UNLOCKED" if self.strike.value else "LOCKED")

    def close(self) -> None:
        for device in (self.strike, self.exit_button, self.contact, self.pir):
            device.close()
