"""The student pages in real headless Chromium against a real cloud server and the fake gateways:
register, search with typos, live seats, book, pay on the fake Razorpay checkout, pass, cancel with
refund, 409 alternatives, waitlist, near-me search, token refresh; screenshots at phone and desktop sizes."""

from __future__ import annotations

import datetime as dt
import re
import uuid
import zoneinfo
from pathlib import Path
from types import SimpleNamespace

import httpx
from playwright.sync_api import Browser, Page, ViewportSize, expect

from cloud.dashboard.student.router import hosted_checkouts
from cloud.payments.gateways import RazorpayConfig, RazorpayGateway, StripeConfig, StripeGateway
from tests.cloud.booking.helpers import now_slot
from tests.cloud.conftest import TEST_PASSWORD
from tests.cloud.web.student.conftest import LIBRARY_TZ, PUNE, StudentCloud

PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
DASH = "\u2013"  # an en dash between the start and end of a slot
QR_LOADED = (
    "() => { const img = document.getElementById('pass-qr'); return img.complete && img.naturalWidth > 0 }"
)
PASS_FULL_SCREEN = (
    "() => document.fullscreenElement?.id === 'pass'"
    " || document.getElementById('pass').classList.contains('full')"
)


def local_day(days_ahead: int) -> str:
    return (dt.datetime.now(zoneinfo.ZoneInfo(LIBRARY_TZ)).date() + dt.timedelta(days=days_ahead)).isoformat()


def local_instant(days_ahead: int, hour: int) -> str:
    day = dt.date.fromisoformat(local_day(days_ahead))
    return dt.datetime.combine(day, dt.time(hour), tzinfo=zoneinfo.ZoneInfo(LIBRARY_TZ)).isoformat()


def snap(page: Page, artifacts_dir: Path, name: str) -> None:
    """Full-page screenshots at both sizes, none scrolling sideways; leaves the page at the phone size."""
    for size in (DESKTOP, PHONE):
        page.set_viewport_size(size)
        assert page.evaluate("document.documentElement.scrollWidth") <= size["width"], name
        page.screenshot(
            path=artifacts_dir / f"student-{name}-{size['width']}x{size['height']}.png", full_page=True
        )


def watch_csp(page: Page) -> list[str]:
    """Console messages about blocked content: the pages must run under the app's CSP."""
    blocked: list[str] = []

    def record(text: str) -> None:
        if "Content Security Policy" in text:
            blocked.append(text)

    page.on("console", lambda message: record(message.text))
    return blocked


def choose_slot(page: Page, plan: str, day: str, start: str = "10:00", hours: str = "2") -> None:
    page.get_by_label("Plan", exact=True).select_option(label=plan)
    page.get_by_label("Date", exact=True).fill(day)
    if plan.startswith("Hourly"):
        page.get_by_label("Start time", exact=True).fill(start)
        page.get_by_label("Hours", exact=True).fill(hours)
        page.get_by_label("Hours", exact=True).dispatch_event("change")


def pay_on_fake_razorpay(page: Page) -> None:
    page.get_by_label("Pay with", exact=True).select_option("razorpay")
    page.get_by_role("button", name="Pay now").click()
    expect(page.get_by_role("heading", name="Fake Razorpay checkout")).to_be_visible()
    page.locator("#pay").click()
    expect(page.locator("#pay-state")).to_contain_text("Booking confirmed", timeout=20_000)


def test_student_journey_search_book_pay_pass_cancel(
    student_cloud: StudentCloud, browser: Browser, artifacts_dir: Path
) -> None:
    library = student_cloud.library
    hourly = "Hourly: ₹50.00 per hour"
    page = browser.new_page(viewport=PHONE)
    blocked = watch_csp(page)

    page.goto(f"{student_cloud.url}/app/login")
    snap(page, artifacts_dir, "login")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.get_by_label("Full name").fill("Riya Sharma")
    page.get_by_label("Email", exact=True).last.fill(f"riya-{uuid.uuid4().hex[:6]}@example.com")
    page.get_by_label("Password (at least 8 characters)").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/app/search$"))

    page.get_by_label("Name or area").fill("sunrize libary")
    page.get_by_label("Name or area").press("Enter")
    result = page.get_by_role("link", name="Sunrise Library")
    expect(result).to_be_visible()
    expect(page.locator("#results")).to_contain_text("from ₹0.00")  # the "Free hour" plan
    snap(page, artifacts_dir, "search")
    result.click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Sunrise Library")
    expect(page.locator("#live-state")).to_have_text("live")
    expect(page.locator("#free-now")).to_have_text("4")
    # someone else takes C1 for the coming hour: the open page sees it through the live socket
    other = student_cloud.register()
    taken = httpx.post(
        f"{student_cloud.url}/api/v1/bookings",
        json={"plan_id": library.plans["Hourly"]["id"], "seat_id": library.seat("C1")["id"], **now_slot()},
        headers={"Authorization": other["Authorization"]},
    )
    assert taken.status_code == 201, taken.text
    expect(page.locator("#free-now")).to_have_text("3")
    expect(page.locator("#plans")).to_contain_text("Day pass: ₹300.00 per day")

    tomorrow = local_day(1)
    choose_slot(page, hourly, tomorrow)
    expect(page.locator("#seat option:not([disabled])")).to_have_count(4)
    page.get_by_label("Seat", exact=True).select_option(library.seat("A1")["id"])
    expect(page.locator("#price")).to_have_text("Price: ₹100.00")
    page.get_by_role("button", name="Book", exact=True).click()
    expect(page.locator("#pay-summary")).to_contain_text("Seat A1")
    expect(page.locator("#pay-summary")).to_contain_text(f"10:00{DASH}12:00")
    expect(page.locator("#pay-summary")).to_contain_text("₹100.00")
    snap(page, artifacts_dir, "library")

    pay_on_fake_razorpay(page)
    snap(page, artifacts_dir, "payment-confirmed")
    page.get_by_role("link", name="Show my pass").click()
    expect(page.locator("#pass-where")).to_contain_text("Seat A1")
    page.wait_for_function(QR_LOADED)
    assert (page.locator("#pass-payload").text_content() or "").startswith("SS1:")
    page.get_by_role("button", name="Full screen").click()
    page.wait_for_function(PASS_FULL_SCREEN)
    snap(page, artifacts_dir, "pass")

    # another student takes the chosen seat while the form is open: 409 with alternatives, one of
    # which is booked, paid, then cancelled with its refund shown
    page.goto(f"{student_cloud.url}/app/libraries/{library.id}")
    choose_slot(page, hourly, tomorrow, start="14:00")
    expect(page.locator("#seat option:not([disabled])")).to_have_count(4)
    page.get_by_label("Seat", exact=True).select_option(library.seat("A2")["id"])
    raced = httpx.post(
        f"{student_cloud.url}/api/v1/bookings",
        json={
            "plan_id": library.plans["Hourly"]["id"],
            "seat_id": library.seat("A2")["id"],
            "start": local_instant(1, 14),
            "end": local_instant(1, 16),
        },
        headers={"Authorization": other["Authorization"]},
    )
    assert raced.status_code == 201, raced.text
    page.get_by_role("button", name="Book", exact=True).click()
    expect(page.locator("#book-error")).not_to_be_empty()
    alternative = page.locator("#alt-list button").first
    expect(alternative).to_be_visible()
    snap(page, artifacts_dir, "library-alternatives")
    alternative.click()
    pay_on_fake_razorpay(page)

    page.get_by_role("link", name="My bookings").first.click()
    expect(page.locator("li.booking")).to_have_count(2)
    snap(page, artifacts_dir, "bookings")
    second = page.locator("li.booking", has_not_text="10:00").first
    second.get_by_role("button", name="Cancel booking").click()
    second.get_by_role("button", name="Yes, cancel").click()
    expect(page.locator("li.booking.cancelled .note")).to_have_text("Cancelled. Refund: ₹100.00.")
    expect(page.locator("li.booking.confirmed")).to_contain_text("seat A1")
    snap(page, artifacts_dir, "bookings-cancelled")
    assert blocked == []
    page.close()


def test_near_me_waitlist_and_token_refresh(
    student_cloud: StudentCloud, browser: Browser, artifacts_dir: Path
) -> None:
    library = student_cloud.library
    day = local_day(2)
    crowd = student_cloud.register()
    for seat in ("A1", "A2", "A3", "C1"):
        booked = httpx.post(
            f"{student_cloud.url}/api/v1/bookings",
            json={
                "plan_id": library.plans["Day pass"]["id"],
                "seat_id": library.seat(seat)["id"],
                "date": day,
            },
            headers={"Authorization": crowd["Authorization"]},
        )
        assert booked.status_code == 201, booked.text
    student = student_cloud.register()
    context = browser.new_context(
        viewport=DESKTOP,
        geolocation={"latitude": PUNE[0] + 0.01, "longitude": PUNE[1]},
        permissions=["geolocation"],
    )
    page = context.new_page()
    blocked = watch_csp(page)

    page.goto(f"{student_cloud.url}/app/bookings")  # not logged in: to the login page and back
    expect(page).to_have_url(re.compile(r"/app/login\?next=%2Fapp%2Fbookings$"))
    page.get_by_label("Email", exact=True).first.fill(student["email"])
    page.get_by_label("Password", exact=True).fill(TEST_PASSWORD)
    page.get_by_label("Password", exact=True).press("Enter")
    expect(page).to_have_url(re.compile(r"/app/bookings$"))
    page.get_by_role("link", name="Search", exact=True).click()
    page.get_by_role("button", name="Near me").click()
    expect(page.get_by_role("button", name="Near me")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#results")).to_contain_text("1.1 km away")
    page.get_by_label("Max price (per hour or day, in rupees)").fill("40")
    page.get_by_label("locker").check()
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#results-status")).to_have_text("No library matches. Try fewer filters.")
    page.get_by_label("locker").uncheck()
    page.get_by_label("wifi").check()
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#results-status")).to_have_text("1 found")

    page.goto(f"{student_cloud.url}/app/libraries/{library.id}")
    choose_slot(page, "Day pass: ₹300.00 per day", day)
    join = page.get_by_role("button", name="Join the waitlist")
    expect(join).to_be_visible()
    join.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#toast")).to_contain_text("You are on the waitlist")

    # an access token that no longer verifies: the page refreshes it and carries on
    page.evaluate("sessionStorage.setItem('studyspot.access', 'expired.token.value')")
    page.goto(f"{student_cloud.url}/app/bookings")
    day_text = dt.date.fromisoformat(day).strftime("%a, %-d %b")
    expect(page.locator("#waitlist")).to_contain_text(f"Sunrise Library: day pass on {day_text}")
    expect(page.locator("#bookings-status")).to_have_text("No bookings yet.")
    snap(page, artifacts_dir, "bookings-waitlist")
    page.get_by_role("button", name="Leave waitlist").click()
    expect(page.locator("#toast")).to_have_text("You left the waitlist.")
    expect(page.locator("#waitlist")).to_contain_text("You are not waiting for any seat.")

    # a booking left unpaid is paid later from My bookings, this time through the fake Stripe
    page.goto(f"{student_cloud.url}/app/libraries/{library.id}")
    choose_slot(page, "Hourly: ₹50.00 per hour", local_day(3), start="18:00", hours="1")
    expect(page.locator("#seat option:not([disabled])")).to_have_count(4)
    page.get_by_label("Seat", exact=True).select_option(library.seat("A3")["id"])
    page.get_by_role("button", name="Book", exact=True).click()
    expect(page.locator("#pay-summary")).to_contain_text("₹50.00")
    page.get_by_role("link", name="My bookings").click()
    unpaid = page.locator("li.booking.pending_payment")
    expect(unpaid).to_contain_text("awaiting payment")
    unpaid.get_by_label("Payment provider for seat A3").select_option("stripe")
    unpaid.get_by_role("button", name="Pay", exact=True).click()
    expect(page.get_by_role("heading", name="Fake Stripe checkout")).to_be_visible()
    page.locator("#pay").click()
    expect(page.locator("#pay-state")).to_contain_text("Booking confirmed: seat A3", timeout=20_000)
    assert blocked == []
    context.close()


def test_only_local_fake_gateways_get_a_checkout_link() -> None:
    fake = "http://127.0.0.1:9/razorpay"
    gateways = {
        "razorpay": RazorpayGateway(RazorpayConfig(key_id="rzp_test", key_secret="s", base_url=fake)),
        "stripe": StripeGateway(StripeConfig(secret_key="sk_test")),  # the real API: no page of ours
    }
    request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(payment_gateways=gateways)))
    assert hosted_checkouts(request) == {"razorpay": "http://127.0.0.1:9/_fake/checkout/razorpay/"}  # type: ignore[arg-type]


def test_pages_are_served_under_a_narrow_csp(student_cloud: StudentCloud) -> None:
    with httpx.Client(base_url=student_cloud.url) as client:
        page = client.get("/app/search")
        script = client.get("/app/static/student.js")
        missing = client.get("/app/static/../router.py")
        unknown = client.get("/app/static/nope.js")
        home = client.get("/app")
    assert page.status_code == 200
    assert page.headers["content-security-policy"].startswith("default-src 'self'; img-src 'self' blob:")
    assert "<script>" not in page.text and 'src="/app/static/student.js"' in page.text
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert missing.status_code == 404 and unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"
    assert home.status_code == 307 and home.headers["location"] == "/app/search"
