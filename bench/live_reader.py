"""A light WebSocket client for the live fan-out benchmark: one asyncio protocol per socket that
stamps each frame's arrival in `data_received`, before anything else is done with it.

The benchmark's 1,000 readers share the 2 cores with the server. With the `websockets` client every
event cost each socket a frame parse in Python, a queue hand-off and a task wake-up (the stamps came
after all of that, one socket after another); here a socket's arrival costs a clock read and a
frame-header read, and payloads are only checked once the round is over. The stamp is still taken
when the bytes reach this process, so the figure stays the time from the request to each receipt.

Speaks RFC 6455 as far as the benchmark needs: the opening handshake (checked), unfragmented
unmasked server frames, pongs to pings, a close.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
import time
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA
OPEN_TIMEOUT_SECONDS = 30
OnText = Callable[[float, bytes], None]


class LiveSocket(asyncio.Protocol):
    """One client socket; `on_text(stamp, payload)` is called for each text frame after the first
    (the snapshot, returned by `open_live_socket`)."""

    def __init__(self, key: bytes, on_text: OnText) -> None:
        self._key = key
        self._on_text = on_text
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.handshake: asyncio.Future[bytes] = loop.create_future()
        self.snapshot: asyncio.Future[bytes] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no asyncio.Transport subclass

    def connection_lost(self, exc: Exception | None) -> None:
        for future in (self.handshake, self.snapshot):
            if not future.done():
                future.set_exception(ConnectionError("the server closed the live socket"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        stamp = time.perf_counter()
        if not self._buffer and self.snapshot.done():
            payload = _lone_text_payload(data)
            if payload is not None:  # the usual event: one whole frame in one read
                self._on_text(stamp, payload)
                return
        self._buffer += data
        if not self.handshake.done():
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self.handshake.set_result(bytes(self._buffer[:end]))
            del self._buffer[: end + 4]
        while (frame := self._next_frame()) is not None:
            self._handle(stamp, *frame)

    def _next_frame(self) -> tuple[int, bytes] | None:
        buffer = self._buffer
        if len(buffer) < 2:
            return None
        length, start = buffer[1] & 0x7F, 2
        if length == 126:
            if len(buffer) < 4:
                return None
            length, start = struct.unpack_from("!H", buffer, 2)[0], 4
        elif length == 127:
            if len(buffer) < 10:
                return None
            length, start = struct.unpack_from("!Q", buffer, 2)[0], 10
        if len(buffer) < start + length:
            return None
        if not buffer[0] & 0x80 or buffer[1] & 0x80:
            raise ConnectionError("the benchmark reader expects whole, unmasked server frames")
        opcode, payload = buffer[0] & 0x0F, bytes(buffer[start : start + length])
        del buffer[: start + length]
        return opcode, payload

    def _handle(self, stamp: float, opcode: int, payload: bytes) -> None:
        if opcode == TEXT:
            if self.snapshot.done():
                self._on_text(stamp, payload)
            else:
                self.snapshot.set_result(payload)
        elif opcode == PING:
            self.send_frame(PONG, payload)
        elif opcode == CLOSE and self._transport is not None:
            self._transport.close()

    def write(self, data: bytes) -> None:
        assert self._transport is not None
        self._transport.write(data)

    def send_frame(self, opcode: int, payload: bytes) -> None:
        """A masked client frame (payloads under 126 bytes: pongs and closes)."""
        assert self._transport is not None and len(payload) < 126
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
        self._transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def check_handshake(self, head: bytes) -> None:
        status, *lines = head.decode("latin-1").split("\r\n")
        fields = (line.partition(":") for line in lines)
        headers = {name.strip().lower(): value.strip() for name, _, value in fields}
        accept = base64.b64encode(hashlib.sha1(self._key + WS_GUID).digest()).decode()  # noqa: S324 - RFC 6455
        if not status.startswith("HTTP/1.1 101") or headers.get("sec-websocket-accept") != accept:
            raise ConnectionError(f"the live socket was refused: {status}")

    async def close(self) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        self.send_frame(CLOSE, struct.pack("!H", 1000))
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), timeout=5)
        except TimeoutError:
            self._transport.close()


def _lone_text_payload(data: bytes) -> bytes | None:
    """The payload when `data` is exactly one final text frame shorter than 64 KiB, else None."""
    if len(data) < 4 or data[0] != 0x80 | TEXT:
        return None
    length, start = data[1], 2
    if length == 126:
        length, start = (data[2] << 8) | data[3], 4
    return data[start:] if len(data) == start + length else None


async def open_live_socket(url: str, on_text: OnText) -> tuple[LiveSocket, bytes]:
    """Connect to a `ws://` URL; returns the socket and its first text frame (the snapshot)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    key = base64.b64encode(os.urandom(16))
    loop = asyncio.get_running_loop()
    _, socket = await loop.create_connection(lambda: LiveSocket(key, on_text), host, port)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    socket.write(request.encode())
    async with asyncio.timeout(OPEN_TIMEOUT_SECONDS):
        socket.check_handshake(await socket.handshake)
        return socket, await socket.snapshot
