"""One real cloud (uvicorn, its own database cloned from the migrated template) with the fake
gateways, one library in Asia/Kolkata open all day, and one headless Chromium — all per module."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

from cloud.app import close_app, create_app
from cloud.config import CloudSettings
from cloud.db import platform_scope
from cloud.embedded_pg import EmbeddedPostgres
from cloud.identity import service as identity
from cloud.identity.roles import Role
from cloud.payments.fake_gateway import RunningFakeGateways, start_fake_gateways
from cloud.payments.gateways import RazorpayGateway, StripeGateway
from cloud.tenancy import service as tenancy
from tests.cloud.booking.conftest import LibrarySetup, build_library
from tests.cloud.booking.helpers import ALL_DAY
from tests.cloud.conftest import TEST_PASSWORD, _admin_execute
from tests.cloud.payflow.conftest import _serve
from tests.edge.kiosk.test_kiosk_browser import CHROMIUM, CHROMIUM_ARGS

LIBRARY_TZ = "Asia/Kolkata"
PUNE = (18.5204, 73.8567)


@dataclass
class StudentCloud:
    url: str
    fakes: RunningFakeGateways
    library: LibrarySetup

    def register(self, email: str | None = None) -> dict[str, str]:
        """A new student through the API; returns its email, password and bearer headers."""
        email = email or f"student-{uuid.uuid4().hex[:8]}@example.com"
        with httpx.Client(base_url=self.url, timeout=20) as client:
            created = client.post("/api/v1/auth/register", json={"email": email, "password": TEST_PASSWORD})
            assert created.status_code == 201, created.text
            login = client.post("/api/v1/auth/login", json={"email": email, "password": TEST_PASSWORD})
            assert login.status_code == 200, login.text
        return {"email": email, "Authorization": f"Bearer {login.json()['access_token']}"}


def _owner_headers(app: Any, url: str) -> dict[str, str]:
    email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    with app.state.session_factory() as session:
        platform_scope(session)
        user = identity.create_user(session, email, TEST_PASSWORD, full_name="Owner")
        tenant, _ = tenancy.create_tenant(
            session, name="Sunrise Trust", owner_email=email, owner_password=None, actor_id=None
        )
        tenancy.add_membership(session, tenant.id, user.id, Role.LIBRARY_OWNER)
        session.commit()
    login = httpx.post(f"{url}/api/v1/auth/login", json={"email": email, "password": TEST_PASSWORD})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def _build_library(url: str, headers: dict[str, str]) -> LibrarySetup:
    async with httpx.AsyncClient(base_url=url, timeout=20) as client:
        return await build_library(
            client,
            SimpleNamespace(headers=headers),
            timezone=LIBRARY_TZ,
            rules={"max_active_bookings": 10},
            extra={
                "opening_hours": ALL_DAY,
                "latitude": PUNE[0],
                "longitude": PUNE[1],
                "address": "FC Road, Pune",
            },
        )


@pytest.fixture(scope="module")
def student_cloud(
    pg_server: EmbeddedPostgres,
    pg_template: str,
    redis_server: str,
    master_key: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[StudentCloud]:
    name = f"web_{uuid.uuid4().hex[:16]}"
    _admin_execute(pg_server, f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    settings = CloudSettings(
        _env_file=None,
        database_url=pg_server.url(name),
        redis_url=redis_server,
        master_key=master_key,
        studyspot_data_dir=Path(tmp_path_factory.mktemp("student-web")) / "data",
        rate_limit_auth="10000/minute",
        rate_limit_booking="10000/minute",
        rate_limit_general="10000/minute",
        rate_limit_upload="10000/minute",
        db_pool_size=8,
        password_hash_time_cost=1,
        password_hash_memory_kib=1024,
    )
    app = create_app(settings)
    server, thread, url = _serve(app)
    fakes = start_fake_gateways(webhook_target_url=f"{url}/api/v1/payments/webhooks")
    app.state.payment_gateways = {
        "razorpay": RazorpayGateway(fakes.razorpay_config()),
        "stripe": StripeGateway(fakes.stripe_config()),
    }
    library = asyncio.run(_build_library(url, _owner_headers(app, url)))
    yield StudentCloud(url, fakes, library)
    fakes.stop()
    server.should_exit = True
    thread.join(timeout=10)

    async def release() -> None:
        for gateway in app.state.payment_gateways.values():
            await gateway.aclose()
        await close_app(app)

    asyncio.run(release())
    _admin_execute(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()
