"""The kiosk in real headless Chromium: PIN login, a check-in appearing live, screenshots at both sizes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright, expect

from tests.edge.conftest import PassFactory
from tests.edge.kiosk.conftest import STAFF_PIN, KioskRig

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SIZES = ((800, 480), (1280, 800))


def seed_todays_readings(kiosk: KioskRig) -> None:
    """Half an hour of per-minute CO2 and temperature so the sparklines have a shape (kept to today)."""
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    for minute in range(30, 0, -1):
        at = max(midnight, now - timedelta(minutes=minute))
        kiosk.store.record_telemetry("hall-env", "co2", 600 + 12 * minute % 250, at)
        kiosk.store.record_telemetry("hall-env", "temperature", 24 + (minute % 7) / 2, at)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


async def test_staff_logs_in_and_sees_a_scan_arrive_live(
    kiosk: KioskRig, browser: Browser, passes: PassFactory, artifacts_dir: Path
) -> None:
    seed_todays_readings(kiosk)
    width, height = SIZES[0]
    page = await browser.new_page(viewport={"width": width, "height": height})
    await page.goto(kiosk.url + "/")
    await page.screenshot(path=artifacts_dir / "kiosk-login-800x480.png")
    await page.get_by_label("Staff PIN").fill(STAFF_PIN)
    await page.keyboard.press("Enter")
    await expect(page.locator("#live-state")).to_have_text("live")
    await expect(page.locator("#feed")).to_contain_text("No check-ins yet.")

    text, claims = passes.make()
    await kiosk.simulator["front-door"].scan(text)
    entry = page.locator("#feed li.ok").first
    await expect(entry).to_contain_text(claims.holder)
    await expect(page.locator("#occupancy")).to_have_text("1")
    await expect(page.get_by_role("img", name="co2 today")).to_be_visible()
    await page.screenshot(path=artifacts_dir / "kiosk-desk-800x480.png", full_page=True)

    for width, height in SIZES[1:]:
        await page.set_viewport_size({"width": width, "height": height})
        await page.screenshot(path=artifacts_dir / f"kiosk-desk-{width}x{height}.png", full_page=True)
    await page.close()


async def test_unlock_confirmation_works_with_the_keyboard(kiosk: KioskRig, browser: Browser) -> None:
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    await page.goto(kiosk.url + "/")
    await page.get_by_label("Staff PIN").fill(STAFF_PIN)
    await page.get_by_role("button", name="Log in").press("Enter")
    await page.get_by_label("Door").select_option("front-door")
    await page.get_by_role("button", name="Unlock door").focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#confirm-question")).to_contain_text("front-door")
    await page.get_by_role("button", name="Yes, unlock").press("Enter")
    await expect(page.locator("#message")).to_contain_text("Unlock sent to front-door")
    assert [row["kind"] for row in kiosk.store.pending_outbox()].count("remote_unlock") == 1
    await page.close()
