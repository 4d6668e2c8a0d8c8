"""Payment-flow fixtures: the cloud app behind a real uvicorn server, wired to the fake gateways
(also real HTTP) whose webhooks go back to that server; a library with an hourly plan and a student.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from cloud.app import close_app, create_app
from cloud.config import CloudSettings
from cloud.identity.roles import Role
from cloud.payments.fake_gateway import RunningFakeGateways, start_fake_gateways
from cloud.payments.gateways import RazorpayGateway, StripeGateway
from tests.cloud.booking.conftest import LibrarySetup, build_library
from tests.cloud.booking.helpers import ALL_DAY


@dataclass
class PayflowServer:
    app: FastAPI
    url: str
    fakes: RunningFakeGateways


def _serve(app: FastAPI) -> tuple[uvicorn.Server, threading.Thread, str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture
async def payflow(cloud_settings: CloudSettings) -> Any:
    app = create_app(cloud_settings.model_copy(update={"db_pool_size": 8}))
    server, thread, url = _serve(app)
    fakes = start_fake_gateways(webhook_target_url=f"{url}/api/v1/payments/webhooks")
    app.state.payment_gateways = {
        "razorpay": RazorpayGateway(fakes.razorpay_config()),
        "stripe": StripeGateway(fakes.stripe_config()),
    }
    yield PayflowServer(app, url, fakes)
    fakes.stop()
    server.should_exit = True
    thread.join(timeout=10)
    for gateway in app.state.payment_gateways.values():
        await gateway.aclose()
    await close_app(app)


@pytest.fixture
async def http(payflow: PayflowServer) -> Any:
    async with httpx.AsyncClient(base_url=payflow.url, timeout=20) as client:
        yield client


@pytest.fixture
async def owner(make_account: Any) -> Any:
    return await make_account(Role.LIBRARY_OWNER)


@pytest.fixture
async def student(make_account: Any) -> Any:
    return await make_account(Role.STUDENT)


@pytest.fixture
async def library(cloud_client: httpx.AsyncClient, owner: Any) -> LibrarySetup:
    return await build_library(cloud_client, owner, extra={"opening_hours": ALL_DAY})


def wait_until(check: Any, timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.02)
