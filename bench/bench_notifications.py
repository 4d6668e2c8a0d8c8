"""Notification dispatch throughput: messages per second to a local SMTP server (aiosmtpd) and to a
local HTTP provider (the Twilio fake under uvicorn), with one and with four concurrent workers.

Each round renders and sends a batch through the real channel adapters; the figure's median is the
median rate over rounds and its "p99" is the rate of the slowest 1 % of rounds (the low tail).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable

import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

from bench.harness import BenchResult, percentile
from cloud.notifications.channels.base import Channel, OutgoingMessage
from cloud.notifications.channels.email import EmailChannel, SmtpSecurity, SmtpSettings
from cloud.notifications.channels.sms import SmsChannel, TwilioSettings
from cloud.notifications.fake_providers import FakeTwilio, ServerThread
from cloud.notifications.kinds import ChannelKind, EventKind, Language
from cloud.notifications.samples import SAMPLE_CONTEXTS
from cloud.notifications.templates import render

ROUNDS = 5
BATCH = 120
TWILIO_SID = "AC" + "2" * 32
TWILIO_TOKEN = "bench-token"


class CountingHandler:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: object, session: Session, envelope: Envelope) -> str:
        self.count += 1
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _message(channel: ChannelKind, recipient: str, index: int) -> OutgoingMessage:
    kind = EventKind.BOOKING_CONFIRMED
    content = render(kind, channel, Language.HINDI, SAMPLE_CONTEXTS[kind], library_tz="Asia/Kolkata")
    return OutgoingMessage(f"bench-{index}", channel, kind, recipient, Language.HINDI, content)


async def _dispatch(channel: Channel, messages: list[OutgoingMessage], workers: int) -> float:
    """Send all messages with `workers` concurrent consumers; return messages per second."""
    queue: asyncio.Queue[OutgoingMessage] = asyncio.Queue()
    for message in messages:
        queue.put_nowait(message)

    async def worker() -> None:
        while not queue.empty():
            await channel.send(queue.get_nowait())

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return len(messages) / (time.perf_counter() - start)


async def _rates(
    make_channel: Callable[[], Channel],
    channel_kind: ChannelKind,
    recipient: str,
    workers: int,
    close: Callable[[Channel], Awaitable[None]],
) -> list[float]:
    channel = make_channel()
    messages = [_message(channel_kind, recipient, i) for i in range(BATCH)]
    await _dispatch(channel, messages[:10], workers)  # warm-up
    rates = [await _dispatch(channel, messages, workers) for _ in range(ROUNDS)]
    await close(channel)
    return rates


def _result(figure: str, rates: list[float]) -> BenchResult:
    ordered = sorted(rates)
    return BenchResult(figure, ordered[len(ordered) // 2], percentile(ordered, 0.01), "msg/s")


async def _close(channel: Channel) -> None:
    await channel.aclose()


def run() -> list[BenchResult]:
    results: list[BenchResult] = []
    handler = CountingHandler()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = SmtpSettings(
            host="127.0.0.1", port=port, security=SmtpSecurity.NONE, from_address="b@bench.test"
        )
        for workers in (1, 4):
            rates = asyncio.run(
                _rates(lambda: EmailChannel(settings), ChannelKind.EMAIL, "to@bench.test", workers, _close)
            )
            results.append(_result(f"email to local SMTP, {workers} worker(s)", rates))
    finally:
        controller.stop()

    fake = FakeTwilio(TWILIO_SID, TWILIO_TOKEN)
    with ServerThread(fake.app) as base_url:
        twilio = TwilioSettings(
            account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN, from_number="+15005550006", base_url=base_url
        )
        for workers in (1, 4):
            rates = asyncio.run(
                _rates(
                    lambda: SmsChannel(twilio, httpx.AsyncClient(timeout=10)),
                    ChannelKind.SMS,
                    "+919876543210",
                    workers,
                    _close,
                )
            )
            results.append(_result(f"SMS to local Twilio fake (HTTP), {workers} worker(s)", rates))
    return results


if __name__ == "__main__":
    for result in run():
        print(result)
