"""Running the API: one uvicorn process, or N worker processes each on its own SO_REUSEPORT socket.

With uvicorn's own `--workers`, every worker accepts from one shared socket, and the worker that
wakes first takes a whole burst: a client pool's 50 keep-alive connections all landed on one of
two workers while the other idled. Here each worker binds its own socket with SO_REUSEPORT and the
kernel spreads new connections over them by their addresses (what nginx's `reuseport` does).

The parent only supervises: a worker that dies is started again; SIGINT or SIGTERM stops them all
(each finishes its requests, as uvicorn does on SIGTERM) and then the parent returns. A worker
whose parent dies stops too.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess
from types import FrameType

import uvicorn

from cloud.app import create_app
from cloud.config import CloudSettings

log = logging.getLogger(__name__)

PARENT_CHECK_SECONDS = 1.0
RESTART_DELAY_SECONDS = 1.0
STOP_GRACE_SECONDS = 15.0
SUPERVISE_INTERVAL_SECONDS = 0.5


def uvicorn_config(settings: CloudSettings, log_level: str) -> uvicorn.Config:
    # live seat events are ~200-byte JSON sent to every watching socket: per-message deflate
    # compressed each copy separately (a third of the server's fan-out CPU) to save little
    return uvicorn.Config(create_app(settings), log_level=log_level, ws_per_message_deflate=False)


def serve_one(settings: CloudSettings, host: str, port: int, log_level: str = "info") -> None:
    config = uvicorn_config(settings, log_level)
    config.host, config.port = host, port
    uvicorn.Server(config).run()


def reuse_port_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _worker(settings: CloudSettings, host: str, port: int, log_level: str) -> None:
    """One worker process: the app on its own SO_REUSEPORT socket."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches the parent, which stops us
    sock = reuse_port_socket(host, port)
    server = uvicorn.Server(uvicorn_config(settings, log_level))
    watch = threading.Thread(target=_stop_when_orphaned, args=(server, os.getppid()), daemon=True)
    watch.start()
    server.run(sockets=[sock])


def _stop_when_orphaned(server: uvicorn.Server, parent_pid: int) -> None:
    """A worker whose supervisor died (kill -9, the OOM killer) finishes its requests and exits rather
    than serve on unsupervised: with SO_REUSEPORT it would share the port with the next `serve`."""
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_SECONDS)
    log.warning("API worker %s: its supervisor %s is gone; stopping", os.getpid(), parent_pid)
    server.should_exit = True


class WorkerPool:
    """`workers` processes serving `host:port`, restarted when one dies, until `stop`."""

    def __init__(self, settings: CloudSettings, host: str, port: int, workers: int, log_level: str) -> None:
        self._args = (settings, host, port, log_level)
        self._context = multiprocessing.get_context("spawn")  # no forked event loops or DB pools
        self._processes: list[BaseProcess] = [self._start() for _ in range(workers)]
        self._stopping = False

    def _start(self) -> BaseProcess:
        process = self._context.Process(target=_worker, args=self._args, name="studyspot-api-worker")
        process.start()
        return process

    def stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        self._stopping = True

    def supervise(self) -> None:
        while not self._stopping:
            for index, process in enumerate(self._processes):
                if not process.is_alive() and not self._stopping:
                    log.warning("API worker %s exited (%s): starting another", process.pid, process.exitcode)
                    time.sleep(RESTART_DELAY_SECONDS)
                    self._processes[index] = self._start()
            time.sleep(SUPERVISE_INTERVAL_SECONDS)
        self._terminate()

    def _terminate(self) -> None:
        for process in self._processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn's graceful shutdown
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in self._processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()


def serve_workers(
    settings: CloudSettings, host: str, port: int, workers: int, log_level: str = "info"
) -> None:
    reuse_port_socket(host, port).close()  # fail here, once, when the address is taken or invalid
    pool = WorkerPool(settings, host, port, workers, log_level)
    handlers = {sig: signal.signal(sig, pool.stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    log.info("serving on %s:%s with %s workers (SO_REUSEPORT)", host, port, workers)
    try:
        pool.supervise()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
