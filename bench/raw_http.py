"""A load generator's HTTP client: pre-built HTTP/1.1 requests over raw keep-alive connections.

httpx spends 1-10 ms of CPU per request (building the request, its connection pool, parsing the
answer) on the same 2 cores as the cloud workers a benchmark measures, so its cost showed up as the
cloud's latency; writing pre-built request bytes and reading a Content-Length answer costs ~0.5 ms.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx


def request_bytes(method: str, url: str, headers: Mapping[str, str], body: bytes = b"") -> bytes:
    """The request as HTTP/1.1 bytes on a keep-alive connection (`url` absolute, for the Host header)."""
    parsed = httpx.URL(url)
    lines = [f"{method} {parsed.raw_path.decode()} HTTP/1.1", f"Host: {parsed.netloc.decode()}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class RawHttpPool:
    """Keep-alive HTTP/1.1 connections, one request at a time each, writing pre-built request bytes and
    reading the status and a Content-Length body."""

    def __init__(self, base: str) -> None:
        url = httpx.URL(base)
        self.host, self.port = url.host, url.port or 80
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(self, wire: bytes) -> int:
        """The answer's status."""
        status, _ = await self.exchange(wire)
        return status

    async def exchange(self, wire: bytes) -> tuple[int, bytes]:
        """The answer's status and body."""
        reused = bool(self.idle)
        reader, writer = self.idle.pop() if reused else await asyncio.open_connection(self.host, self.port)
        try:
            answer = await self._exchange(reader, writer, wire)
        except (ConnectionError, asyncio.IncompleteReadError):
            writer.close()
            if not reused:
                raise
            # the server closed it while idle, before reading this request: send it on a new one
            reader, writer = await asyncio.open_connection(self.host, self.port)
            answer = await self._exchange(reader, writer, wire)
        self.idle.append((reader, writer))
        return answer

    @staticmethod
    async def _exchange(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, wire: bytes
    ) -> tuple[int, bytes]:
        writer.write(wire)
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        length = next(
            (int(line.split(":", 1)[1]) for line in head if line.lower().startswith("content-length:")), None
        )
        if length is None:
            raise ConnectionError(f"no Content-Length in the answer: {head[0]}")
        return int(head[0].split()[1]), await reader.readexactly(length)

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()
