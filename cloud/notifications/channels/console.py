"""Console channel for the demo: the message goes to the log (and stdout) instead of a provider."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from cloud.notifications.channels.base import Channel, DeliveryResult, OutgoingMessage, utc_now
from cloud.notifications.kinds import ChannelKind

logger = logging.getLogger("studyspot.notifications.console")


class ConsoleChannel(Channel):
    kind = ChannelKind.CONSOLE

    def __init__(self, stream: TextIO | None = sys.stdout) -> None:
        self._stream = stream

    async def send(self, message: OutgoingMessage) -> DeliveryResult:
        block = format_for_console(message)
        logger.info("%s", block)
        if self._stream is not None:
            print(block, file=self._stream, flush=True)
        return DeliveryResult(self.kind, provider_message_id=message.message_id, accepted_at=utc_now())


def format_for_console(message: OutgoingMessage) -> str:
    header = (
        f"[notification {message.message_id}] {message.kind.value} -> {message.recipient} "
        f"({message.channel.value}, {message.language.value})"
    )
    lines = [header, f"  subject: {message.content.subject}"]
    lines += [f"  | {line}" for line in message.content.text.splitlines()]
    if message.unsubscribe_url:
        lines.append(f"  unsubscribe: {message.unsubscribe_url}")
    return "\n".join(lines)
