"""Fixtures shared by every test folder. Part-specific fixtures live in each folder's conftest.py."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (several suites share this machine, so never hard-code one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def unused_port() -> int:
    return free_tcp_port()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests write screenshots and reports for people to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
