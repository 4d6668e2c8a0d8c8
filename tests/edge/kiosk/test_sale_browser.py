"""The walk-in sale page in real headless Chromium, with the cloud stopped: an enrolled agent whose
cloud address has nothing listening. Staff sells a seat for cash, the receipt shows, the sale waits
in the outbox; screenshots at both kiosk sizes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from edge.agent import Agent
from edge.kiosk.staff import ensure_staff
from edge.sales import DeskSales
from edge.simulator import DeviceSimulator, register_demo_devices
from edge.store import Store
from edge.sync_store import SyncStore
from shared.passes import generate_signing_key
from shared.sync import PlanRecord, PullResponse, SeatRecord, WalkinBookingPayload
from tests.conftest import free_tcp_port
from tests.edge.conftest import PassFactory, make_config
from tests.edge.kiosk.conftest import STAFF_PIN, KioskRig
from tests.edge.kiosk.test_kiosk_browser import SIZES, browser

__all__ = ["browser"]  # the Chromium fixture, shared with the desk page's test

STAFF_ID = str(uuid.uuid4())
PLAN_ID = uuid.uuid4()
SEAT_ID = uuid.uuid4()


def enroll_offline(store: Store, library_id: str) -> None:
    """An enrolled identity pointing at a cloud that is down (a free port nobody listens on)."""
    sync = SyncStore(store)
    sync.save_identity(
        cloud_url=f"http://127.0.0.1:{free_tcp_port()}", device_id=str(uuid.uuid4()),
        tenant_id=str(uuid.uuid4()), library_id=library_id, library_timezone="Asia/Kolkata", key_id="k1",
        private_key=generate_signing_key(), pass_keys={}, config={},
    )  # fmt: skip
    plan = PlanRecord(id=PLAN_ID, name="Hourly desk", kind="hourly", price_minor=4000, currency="INR")
    seats = [
        SeatRecord(id=SEAT_ID, label="A-12", zone_name="Quiet hall"),
        SeatRecord(id=uuid.uuid4(), label="C-1", zone_name="Cabins"),
    ]
    sync.apply_pull(PullResponse(cursor="c1", plans=[plan], seats=seats))


@pytest.fixture
async def offline_kiosk(passes: PassFactory, tmp_path: Path) -> AsyncIterator[KioskRig]:
    store = Store(tmp_path / "edge.sqlite3")
    devices = register_demo_devices(store)
    ensure_staff(store, STAFF_ID, "Asha Desk", STAFF_PIN)
    enroll_offline(store, str(passes.library_id))
    store.close()
    agent = Agent(make_config(passes, tmp_path))
    await agent.start()
    simulator = DeviceSimulator(agent.mqtt_host, agent.mqtt_port, devices)
    await simulator.start()
    yield KioskRig(agent, simulator)
    await simulator.stop()
    await agent.stop()


async def log_in(page: Page, url: str) -> None:
    await page.goto(url + "/")
    await page.get_by_label("Staff PIN").fill(STAFF_PIN)
    await page.keyboard.press("Enter")
    await expect(page.locator("#sale-link")).to_be_visible()


async def test_staff_sells_a_walkin_with_the_cloud_down(
    offline_kiosk: KioskRig, browser: Browser, artifacts_dir: Path
) -> None:
    width, height = SIZES[0]
    page = await browser.new_page(viewport={"width": width, "height": height})
    await log_in(page, offline_kiosk.url)
    await page.locator("#sale-link").click()
    await expect(page.get_by_role("heading", name="Sell a seat")).to_be_visible()
    await page.screenshot(path=artifacts_dir / "kiosk-sale-800x480.png", full_page=True)

    await page.get_by_label("Seat", exact=True).select_option(label="A-12")
    await page.get_by_label("Plan", exact=True).select_option(str(PLAN_ID))
    await page.get_by_label("Hours (hourly plans)").fill("3")
    await page.get_by_label("UPI", exact=True).check()
    await page.get_by_label("Customer name (optional)").fill("Ravi Kumar")
    await page.get_by_role("button", name="Take payment and print receipt").click()
    await expect(page.locator("#sale-error")).to_contain_text("UPI reference")  # refused, nothing stored
    await page.get_by_label("UPI reference (UPI only)").fill("UPI-4471-9912")
    await page.get_by_role("button", name="Take payment and print receipt").click()

    receipt = page.locator("#receipt-number")
    await expect(receipt).to_have_text(f"{DeskSales(offline_kiosk.store)._short_id()}-000001")
    await expect(page.locator("#receipt-amount")).to_have_text("₹120.00")
    await expect(page.locator("#receipt-method")).to_contain_text("UPI · ref UPI-4471-9912")
    await expect(page.locator("#receipt-sync")).to_contain_text("Queued for the cloud")
    await page.screenshot(path=artifacts_dir / "kiosk-receipt-800x480.png", full_page=True)
    await page.emulate_media(media="print")
    await expect(page.get_by_role("button", name="Print receipt")).to_be_hidden()  # print stylesheet
    await page.emulate_media(media="screen")

    (event,) = [row for row in offline_kiosk.store.pending_outbox() if row["kind"] == "walkin_booking"]
    sale = WalkinBookingPayload.model_validate(event["payload"])
    assert (sale.seat_id, sale.amount_minor, sale.upi_ref, sale.customer_name) == (
        SEAT_ID, 12000, "UPI-4471-9912", "Ravi Kumar",
    )  # fmt: skip
    assert str(sale.staff_user_id) == STAFF_ID and offline_kiosk.store.occupancy() == 1
    await page.get_by_role("link", name="Back to desk").click()
    await expect(page.locator(f'#seat-map [data-seat-id="{SEAT_ID}"]')).to_have_attribute(
        "data-state", "occupied"
    )

    wide = await browser.new_page(viewport=dict(zip(("width", "height"), SIZES[1], strict=True)))
    await log_in(wide, offline_kiosk.url)
    await wide.goto(offline_kiosk.url + "/sale")
    await expect(wide.locator("#recent")).to_contain_text(sale.receipt_number)
    await expect(wide.locator("#queue-depth")).not_to_have_text("0")
    await expect(wide.get_by_role("option", name="A-12 (taken)")).to_be_disabled()  # the walk-in sits there
    await wide.screenshot(path=artifacts_dir / "kiosk-sale-1280x800.png", full_page=True)
    await wide.locator("#recent a").first.click()
    await expect(wide.locator("#receipt-number")).to_have_text(sale.receipt_number)
    await wide.screenshot(path=artifacts_dir / "kiosk-receipt-1280x800.png", full_page=True)
