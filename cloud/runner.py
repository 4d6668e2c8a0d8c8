"""Run the cloud API inside another program (the demo, e2e tests): uvicorn in a background thread.

settings, pg = ensure_database(CloudSettings())
seeded = seed_demo(settings)
cloud = start_cloud_thread(settings, host="127.0.0.1", port=8000)   # port=0: any free port
... cloud.url ...
cloud.stop(); pg and pg.stop()
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import uvicorn

from cloud.app import create_app
from cloud.config import CloudSettings

START_TIMEOUT_SECONDS = 30.0


@dataclass
class RunningCloud:
    server: uvicorn.Server
    thread: threading.Thread
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 15.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def start_cloud_thread(settings: CloudSettings, *, host: str = "127.0.0.1", port: int = 8000) -> RunningCloud:
    """Serve `create_app(settings)` from a daemon thread; returns once it accepts connections."""
    config = uvicorn.Config(create_app(settings), host=host, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="studyspot-cloud", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("cloud API did not start (port in use?)")
        time.sleep(0.05)
    bound_port = port
    for listener in server.servers:
        for sock in listener.sockets:
            bound_port = int(sock.getsockname()[1])
    return RunningCloud(server, thread, host, bound_port)
