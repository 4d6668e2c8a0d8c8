"""The dashboard in real headless Chromium against a real uvicorn cloud (same database as
`cloud_client`): an owner with a library, an enrolled edge that has synced once, a booking."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page

from cloud.identity.roles import Role
from edge.enroll import enroll
from edge.store import Store
from edge.sync import SyncClient
from tests.cloud.booking.conftest import LibrarySetup, build_library, live_server
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


@pytest.fixture
async def owner_rig(
    live_server: str, cloud_client: httpx.AsyncClient, make_account: Any, tmp_path: Path
) -> OwnerRig:
    owner = await make_account(Role.LIBRARY_OWNER, email=f"owner-{tmp_path.name[-6:]}@example.com")
    library = await build_library(
        cloud_client, owner, name="Sunrise Library", extra={"opening_hours": ALL_DAY}
    )
    student = await make_account(Role.STUDENT)
    booked = await cloud_client.post(
        "/api/v1/bookings",
        json=hourly(library, "A2", slot(BOOKING_DAYS_AHEAD, "10:00", "12:00")),
        headers=student.headers,
    )
    assert booked.status_code == 201, booked.text
    device = await enrolled_edge(live_server, cloud_client, owner, library.id, tmp_path / "edge.sqlite3")
    day = local_day(BOOKING_DAYS_AHEAD).isoformat()
    return OwnerRig(live_server, owner, library, device, day)


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
