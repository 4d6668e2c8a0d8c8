"""The kiosk in real headless Chromium: PIN login; a real scan through the broker turning its seat
occupied and leaving the expected arrivals live; kWh from fed telemetry; screenshots at both sizes."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, async_playwright, expect

from edge.devices import enroll_device
from edge.kiosk.seatmap import day_bounds
from edge.sync_store import SyncStore
from shared.passes import new_pass_id, short_id
from shared.sync import PassRecord, PullResponse, SeatRecord
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


def seed_todays_bookings(kiosk: KioskRig, passes: PassFactory) -> str:
    """Two zones of seats and today's passes, applied as a pull page; returns the QR text of the pass
    booked on seat Q1 (started 5 minutes ago, so expected and not yet a no-show)."""
    now = datetime.now(UTC).replace(microsecond=0)
    seats = [
        SeatRecord(id=uuid.uuid4(), label=f"{prefix}{n}", zone_id=zone, zone_name=name)
        for prefix, name, zone, count in (
            ("Q", "Quiet hall", uuid.uuid4(), 8),
            ("G", "Group room", uuid.uuid4(), 4),
        )
        for n in range(1, count + 1)
    ]
    by_label = {seat.label: seat for seat in seats}

    def booked(label: str, start: datetime, holder_name: str) -> PassRecord:
        seat = by_label[label]
        return PassRecord(
            pass_id=new_pass_id(), booking_id=uuid.uuid4(), seat_id=seat.id, seat_label=label,
            holder_id=uuid.uuid4(), holder_name=holder_name, valid_from=start - timedelta(minutes=15),
            valid_until=start + timedelta(hours=3),
        )  # fmt: skip

    _, end_of_day = day_bounds(now, ZoneInfo(kiosk.agent.config.rules.timezone))
    arriving = booked("Q1", now - timedelta(minutes=5), "Asha Arriving")
    later = booked("Q2", min(now + timedelta(hours=1), end_of_day - timedelta(minutes=1)), "Lata Later")
    missing = booked("G1", now - timedelta(minutes=40), "Nikhil Noshow")
    SyncStore(kiosk.store).apply_pull(
        PullResponse(cursor="c1", seats=seats, passes=[arriving, later, missing])
    )
    text, _ = passes.make(
        pass_id=arriving.pass_id, target=short_id(arriving.seat_id or uuid.uuid4()),
        valid_from=arriving.valid_from, valid_until=arriving.valid_until,
    )  # fmt: skip
    return text


def seed_meter_days(kiosk: KioskRig) -> None:
    """A second meter with readings yesterday (12.5 kWh) and today (3.25 kWh), in the library's zone."""
    enroll_device(kiosk.store, device_id="desk-meter", kind="energy")
    now = datetime.now(UTC)
    today, _ = day_bounds(now, ZoneInfo(kiosk.agent.config.rules.timezone))
    for at, kwh in ((today - timedelta(hours=20), 100.0), (today - timedelta(hours=2), 112.5), (now, 115.75)):
        kiosk.store.record_telemetry("desk-meter", "energy", kwh, at)


async def test_staff_logs_in_and_sees_a_scan_arrive_live(
    kiosk: KioskRig, browser: Browser, passes: PassFactory, artifacts_dir: Path
) -> None:
    seed_todays_readings(kiosk)
    seed_meter_days(kiosk)
    qr_text = seed_todays_bookings(kiosk, passes)
    width, height = SIZES[0]
    page = await browser.new_page(viewport={"width": width, "height": height})
    await page.goto(kiosk.url + "/")
    await page.screenshot(path=artifacts_dir / "kiosk-login-800x480.png")
    await page.get_by_label("Staff PIN").fill(STAFF_PIN)
    await page.keyboard.press("Enter")
    await expect(page.locator("#live-state")).to_have_text("live")
    await expect(page.locator("#feed")).to_contain_text("No check-ins yet.")
    seat = page.get_by_role("button", name=re.compile(r"^Seat Q1: "))
    await expect(seat).to_have_attribute("data-state", "booked")
    await expect(page.get_by_role("button", name=re.compile(r"^Seat G1: no-show"))).to_be_visible()
    arrivals = page.locator("#arrivals li")
    await expect(arrivals).to_have_count(3)
    await expect(arrivals.nth(0)).to_contain_text("Nikhil Noshow")
    await expect(arrivals.nth(0)).to_contain_text("late")
    await expect(arrivals.nth(1)).to_contain_text("Asha Arriving · seat Q1")
    await expect(arrivals.nth(2)).to_contain_text("Lata Later · seat Q2")
    await expect(page.locator('#energy-meters tr[data-meter="desk-meter"]')).to_have_text(
        re.compile(r"desk-meter\s*3\.25\s*12\.50")
    )
    await expect(page.locator("#energy-yesterday")).to_have_text("12.50")

    await kiosk.simulator["exit-scanner"].publish_battery(15)
    await kiosk.simulator["front-door"].scan(qr_text)
    await expect(seat).to_have_attribute("data-state", "occupied")
    await expect(seat).to_have_accessible_name(
        re.compile(r"Seat Q1: occupied, Asha Arriving until \d\d:\d\d")
    )
    await expect(page.locator("#feed li.ok").first).to_contain_text("Asha Arriving (seat Q1) @ front-door")
    await expect(page.locator("#occupancy")).to_have_text("1")
    await expect(arrivals).to_have_count(2)
    await expect(page.locator("#arrivals")).not_to_contain_text("Asha Arriving")
    await expect(page.locator("#devices tr", has_text="exit-scanner")).to_contain_text("15%")
    await expect(page.locator("#devices tr", has_text="front-door")).to_contain_text(
        re.compile(r"online · \w+")
    )
    await expect(page.get_by_role("img", name=re.compile(r"^co2 today, from"))).to_be_visible()

    await seat.focus()  # the seat keeps focus through live updates, and Enter shows its details
    await page.keyboard.press("Enter")
    await expect(page.locator("#seat-detail")).to_contain_text("Seat Q1: occupied")
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
