"""`cloud migrate` on a fresh embedded PostgreSQL (started and stopped cleanly) and `cloud serve`."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from cloud.cli import app
from cloud.db import normalize_url


def _postgres_processes(pgdata: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(attrs=["name", "cmdline"]):
        if proc.info["name"] == "postgres" and str(pgdata) in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


def test_migrate_starts_embedded_postgres_and_stops_it(monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="studyspot-cli-", dir="/tmp"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("STUDYSPOT_DATA_DIR", str(data_dir))
    try:
        result = CliRunner().invoke(app, ["migrate"])
        assert result.exit_code == 0, result.output
        assert "migrations applied" in result.output
        assert (data_dir / "pgdata" / "PG_VERSION").exists()
        assert _postgres_processes(data_dir / "pgdata") == []
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_answers_health_and_stops_on_sigint(database_url: str, master_key: str, tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MASTER_KEY": master_key,
        "STUDYSPOT_DATA_DIR": str(tmp_path),
    }
    env.pop("REDIS_URL", None)
    log_path = tmp_path / "serve.log"
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-c", "from cloud.cli import app; app()", "serve", "--port", str(port)],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    try:
        status = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert status == 200, log_path.read_text()
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        log_file.close()
    engine = create_engine(normalize_url(database_url))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() >= 1
    engine.dispose()


def test_seed_audit_and_purge_commands(
    database_url: str, master_key: str, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("MASTER_KEY", master_key)
    monkeypatch.setenv("STUDYSPOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PASSWORD_HASH_TIME_COST", "1")
    monkeypatch.setenv("PASSWORD_HASH_MEMORY_KIB", "1024")
    runner = CliRunner()
    seeded = runner.invoke(app, ["seed-demo"])
    assert seeded.exit_code == 0, seeded.output
    assert '"tenant_id"' in seeded.output
    verified = runner.invoke(app, ["audit-verify"])
    assert verified.exit_code == 0, verified.output
    purged = runner.invoke(app, ["purge-expired"])
    assert purged.exit_code == 0 and '"refresh_tokens": 0' in purged.output
    assert '"audit_details": 0' in purged.output
    rotated = runner.invoke(app, ["rotate-jwt-key"])
    assert rotated.exit_code == 0 and "new signing key" in rotated.output


def _listening_workers(parent: psutil.Process, port: int) -> set[int]:
    pids = set()
    for child in parent.children():
        with contextlib.suppress(psutil.Error):
            sockets = child.net_connections("tcp")
            if any(c.status == psutil.CONN_LISTEN and c.laddr[1] == port for c in sockets):
                pids.add(child.pid)
    return pids


def _wait_for(condition: Callable[[], bool], what: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _open_keepalive_connection(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: studyspot\r\n\r\n")
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    return sock


def _serve_workers(
    database_url: str, redis_url: str, master_key: str, tmp_path: Path, port: int
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "MASTER_KEY": master_key}
    env["STUDYSPOT_DATA_DIR"] = str(tmp_path)
    with (tmp_path / "serve.log").open("wb") as log_file:
        command = [sys.executable, "-c", "from cloud.cli import app; app()", "serve", "--port", str(port)]
        return subprocess.Popen([*command, "--workers", "2"], env=env, stdout=log_file, stderr=log_file)


def test_serve_with_workers_spreads_connections_restarts_a_dead_worker_and_stops_on_sigterm(
    database_url: str, redis_url: str, master_key: str, tmp_path: Path
) -> None:
    port = _free_port()
    process = _serve_workers(database_url, redis_url, master_key, tmp_path, port)
    log_path = tmp_path / "serve.log"
    parent = psutil.Process(process.pid)
    try:
        _wait_for(lambda: len(_listening_workers(parent, port)) == 2, "two workers listening")
        workers = _listening_workers(parent, port)
        connections = [_open_keepalive_connection(port) for _ in range(16)]
        served_by = {
            pid
            for pid in workers
            for c in psutil.Process(pid).net_connections("tcp")
            if c.status == psutil.CONN_ESTABLISHED and c.laddr[1] == port
        }
        assert served_by == workers, "the kernel spread 16 connections over both workers' sockets"
        for sock in connections:
            sock.close()

        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        _wait_for(lambda: len(_listening_workers(parent, port) - {victim}) == 2, "a replacement worker")
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
        every_worker = workers | _listening_workers(parent, port)

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert [pid for pid in every_worker if psutil.pid_exists(pid)] == []


def test_serve_workers_stop_when_their_supervisor_is_killed(
    database_url: str, redis_url: str, master_key: str, tmp_path: Path
) -> None:
    port = _free_port()
    process = _serve_workers(database_url, redis_url, master_key, tmp_path, port)
    parent = psutil.Process(process.pid)
    workers: list[psutil.Process] = []
    try:
        _wait_for(lambda: len(_listening_workers(parent, port)) == 2, "two workers listening")
        workers = [psutil.Process(pid) for pid in _listening_workers(parent, port)]
        process.kill()
        process.wait()
        _, alive = psutil.wait_procs(workers, timeout=30)
        assert alive == [], "orphaned workers kept serving"
    finally:
        process.kill()
        for worker in workers:
            with contextlib.suppress(psutil.Error):
                worker.kill()


def test_serve_refuses_several_workers_without_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    result = CliRunner().invoke(app, ["serve", "--workers", "2"])
    assert result.exit_code == 2
    assert "needs REDIS_URL" in result.output
