"""The dashboard in real headless Chromium against a real uvicorn cloud (same database as
`cloud_client`): an owner with a library and 28 days of history (`seed_history`), an enrolled edge
that has synced once, an upcoming booking and a monthly subscription with its first due."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, Page

from cloud.analytics.history import seed_history
from cloud.billing.jobs import run_billing_jobs
from cloud.identity.roles import Role
from edge.enroll import enroll
from edge.store import Store
from edge.sync import SyncClient
from tests.cloud.booking.conftest import LIBRARY_TZ, LibrarySetup, build_library, live_server
from tests.cloud.booking.helpers import ALL_DAY, hourly, local_day, slot
from tests.edge.kiosk.test_kiosk_browser import browser

__all__ = ["browser", "live_server"]  # fixtures reused from the booking and kiosk suites

SIZES = ((1280, 800), (800, 480))
BOOKING_DAYS_AHEAD = 2


@dataclass
class OwnerRig:
    url: str
    owner: Any
    library: LibrarySetup
    device_name: str
    booking_day: str


async def enrolled_edge(url: str, client: httpx.AsyncClient, owner: Any, library_id: str, path: Path) -> str:
    """A real edge store enrolled through the API that pulls once, so the cloud sees it online."""
    name = "front-desk-pi"
    response = await client.post(
        "/api/v1/fleet/devices", json={"library_id": library_id, "name": name}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    store = Store(path)
    enroll(url, response.json()["enrollment_token"], store)
    sync = SyncClient(store)
    await sync.pull_once()
    await sync.stop()
    store.close()
    return name


def seed_library_history(app: FastAPI, tenant_id: uuid.UUID, library_id: str, days: int = 28) -> None:
    with app.state.session_factory() as session:
        now = dt.datetime.now(dt.UTC)
        counts = seed_history(
            session, tenant_id=tenant_id, library_id=uuid.UUID(library_id), now=now, days=days
        )
        session.commit()
    assert counts["bookings"] > 0 and counts["payments"] > 0, counts


async def book_and_subscribe(
    app: FastAPI, client: httpx.AsyncClient, library: LibrarySetup, student: Any
) -> None:
    """An upcoming hourly booking, and a monthly subscription paid at the desk whose next period
    the billing job has renewed (an upcoming due)."""
    booked = await client.post(
        "/api/v1/bookings",
        json=hourly(library, "A2", slot(BOOKING_DAYS_AHEAD, "10:00", "12:00")),
        headers=student.headers,
    )
    assert booked.status_code == 201, booked.text
    subscription = {
        "plan_id": library.plans["Morning"]["id"],
        "seat_id": library.seat("C1")["id"],
        "start_date": local_day(1).isoformat(),
    }
    created = await client.post("/api/v1/subscriptions", json=subscription, headers=student.headers)
    assert created.status_code == 201, created.text
    confirmed = await client.post(
        f"/api/v1/subscriptions/{created.json()['id']}/confirm", headers=library.owner.headers
    )
    assert confirmed.status_code == 200, confirmed.text
    period_end = dt.date.fromisoformat(confirmed.json()["end_date"])
    renewal_day = dt.datetime.combine(
        period_end - dt.timedelta(days=5), dt.time(12), tzinfo=ZoneInfo(LIBRARY_TZ)
    )
    assert run_billing_jobs(app.state, renewal_day.astimezone(dt.UTC)).renewals == 1


@pytest.fixture
async def edge_rig(
    live_server: str, cloud_client: httpx.AsyncClient, make_account: Any, tmp_path: Path
) -> OwnerRig:
    """An owner with a library and one online edge (what the admin pages need)."""
    owner = await make_account(Role.LIBRARY_OWNER, email=f"owner-{tmp_path.name[-6:]}@example.com")
    library = await build_library(
        cloud_client, owner, name="Sunrise Library", extra={"opening_hours": ALL_DAY}
    )
    device = await enrolled_edge(live_server, cloud_client, owner, library.id, tmp_path / "edge.sqlite3")
    return OwnerRig(live_server, owner, library, device, local_day(BOOKING_DAYS_AHEAD).isoformat())


@pytest.fixture
async def owner_rig(
    edge_rig: OwnerRig, cloud_app: FastAPI, cloud_client: httpx.AsyncClient, make_account: Any
) -> OwnerRig:
    """The edge rig plus 28 days of history, an upcoming booking and an upcoming monthly due."""
    seed_library_history(cloud_app, edge_rig.owner.tenant_id, edge_rig.library.id)
    await book_and_subscribe(cloud_app, cloud_client, edge_rig.library, await make_account(Role.STUDENT))
    return edge_rig


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    page = await browser.new_page(viewport={"width": SIZES[0][0], "height": SIZES[0][1]})
    yield page
    await page.close()


async def sign_in(page: Page, url: str, account: Any) -> None:
    await page.goto(url + "/dashboard")
    await page.get_by_label("Email").fill(account.email)
    await page.get_by_label("Password").fill(account.password)
    await page.get_by_role("button", name="Sign in").click()


async def screenshots(page: Page, artifacts_dir: Path, name: str) -> None:
    for width, height in SIZES:
        await page.set_viewport_size({"width": width, "height": height})
        await page.screenshot(path=artifacts_dir / f"dashboard-{name}-{width}x{height}.png", full_page=True)
    await page.set_viewport_size({"width": SIZES[0][0], "height": SIZES[0][1]})
