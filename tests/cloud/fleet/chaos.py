"""A TCP proxy the fault tests control: pass, drop, delay, or cut a response (and run a hook then)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


class ChaosProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.mode = "pass"  # "pass" | "drop" (close at once) | "delay"
        self.delay_seconds = 0.0
        self.on_first_response_bytes: Callable[[], None] | None = None  # one-shot; the answer is then cut
        self.on_request_bytes: Callable[[], None] | None = None  # one-shot, after forwarding a request
        self.connections = 0
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.mode == "drop":
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            self._pump(reader, up_writer, upstream=True), self._pump(up_reader, writer, upstream=False)
        )

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        try:
            while data := await source.read(65536):
                if self.mode == "delay":
                    await asyncio.sleep(self.delay_seconds)
                if self.mode == "drop":
                    break
                if not upstream and self.on_first_response_bytes is not None:
                    hook, self.on_first_response_bytes = self.on_first_response_bytes, None
                    hook()
                    break
                sink.write(data)
                await sink.drain()
                if upstream and self.on_request_bytes is not None:
                    hook, self.on_request_bytes = self.on_request_bytes, None
                    hook()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                sink.close()
