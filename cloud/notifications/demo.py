"""Demo helper: print every event kind, in English and Hindi, through the console channel.

`python -m cloud.notifications.demo` (or call `print_every_event()` from the demo orchestration).
"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from cloud.notifications.channels.base import OutgoingMessage
from cloud.notifications.channels.console import ConsoleChannel
from cloud.notifications.kinds import ChannelKind, EventKind, Language
from cloud.notifications.samples import SAMPLE_CONTEXTS
from cloud.notifications.templates import render


async def print_every_event(
    stream: TextIO = sys.stdout,
    library_tz: str = "Asia/Kolkata",
    languages: tuple[Language, ...] = tuple(Language),
) -> int:
    channel = ConsoleChannel(stream)
    count = 0
    for kind in EventKind:
        for language in languages:
            content = render(
                kind, ChannelKind.CONSOLE, language, SAMPLE_CONTEXTS[kind], library_tz=library_tz
            )
            message = OutgoingMessage(
                f"demo-{count}", ChannelKind.CONSOLE, kind, "demo-recipient", language, content
            )
            await channel.send(message)
            count += 1
    return count


if __name__ == "__main__":
    asyncio.run(print_every_event())
