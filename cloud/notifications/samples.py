"""A complete, realistic context for every event kind: used by the demo, the benchmarks and the tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cloud.notifications.kinds import EventKind

_START = dt.datetime(2026, 11, 25, 3, 30, tzinfo=dt.UTC)  # 09:00 in Asia/Kolkata
_MEMBER = {"recipient_name": "Priya Sharma", "library_name": "Gyan Deep Library"}
_BOOKING = {**_MEMBER, "seat_label": "A-12", "starts_at": _START, "booking_ref": "BK-7Q2M"}
_DUES = {
    **_MEMBER,
    "amount_minor": 150000,
    "currency": "INR",
    "due_on": dt.date(2026, 12, 1),
    "action_url": "https://app.studyspot.example/dues",
}
_STAFF = {"library_name": "Gyan Deep Library", "door_name": "Main door", "occurred_at": _START}

SAMPLE_CONTEXTS: dict[EventKind, dict[str, Any]] = {
    EventKind.OTP: {"code": "482913", "valid_minutes": 10},
    EventKind.REGISTRATION: {"recipient_name": "Priya Sharma", "app_url": "https://app.studyspot.example"},
    EventKind.BOOKING_CONFIRMED: {
        **_BOOKING,
        "ends_at": _START + dt.timedelta(hours=6),
        "amount_minor": 12050,
        "currency": "INR",
    },
    EventKind.BOOKING_MODIFIED: {**_BOOKING, "ends_at": _START + dt.timedelta(hours=4)},
    EventKind.BOOKING_CANCELLED: dict(_BOOKING),
    EventKind.BOOKING_REMINDER: {k: v for k, v in _BOOKING.items() if k != "booking_ref"},
    EventKind.WAITLIST_PROMOTED: {
        **{k: v for k, v in _BOOKING.items() if k != "booking_ref"},
        "hold_until": _START - dt.timedelta(hours=2),
        "action_url": "https://app.studyspot.example/waitlist/W-19",
    },
    EventKind.NO_SHOW_RELEASED: {k: v for k, v in _BOOKING.items() if k != "booking_ref"},
    EventKind.PAYMENT_SUCCEEDED: {
        **_MEMBER,
        "amount_minor": 150000,
        "currency": "INR",
        "paid_at": _START,
        "payment_ref": "pay_N8f3",
    },
    EventKind.PAYMENT_FAILED: {
        **_MEMBER,
        "amount_minor": 150000,
        "currency": "INR",
        "failure_reason": "card declined",
        "action_url": "https://app.studyspot.example/pay/P-4",
    },
    EventKind.REFUND_PROCESSED: {
        **_MEMBER,
        "amount_minor": 50000,
        "currency": "INR",
        "payment_ref": "pay_N8f3",
    },
    EventKind.DUES_REMINDER_BEFORE: dict(_DUES),
    EventKind.DUES_REMINDER_DUE: dict(_DUES),
    EventKind.DUES_OVERDUE: {**_DUES, "days_overdue": 5},
    EventKind.SUSPENSION: {
        **{k: v for k, v in _DUES.items() if k != "due_on"},
        "suspended_at": _START,
    },
    EventKind.INVOICE_READY: {
        **_MEMBER,
        "invoice_number": "INV-2026-0042",
        "amount_minor": 150000,
        "currency": "INR",
        "action_url": "https://app.studyspot.example/invoices/INV-2026-0042.pdf",
    },
    EventKind.DOOR_FORCED: dict(_STAFF),
    EventKind.DOOR_HELD_OPEN: {**_STAFF, "held_seconds": 90},
    EventKind.LOCK_NOT_RESPONDING: dict(_STAFF),
    EventKind.DEVICE_OFFLINE: {
        "library_name": "Gyan Deep Library",
        "device_name": "Energy meter 1",
        "last_seen_at": _START,
    },
    EventKind.CO2_HIGH: {
        "library_name": "Gyan Deep Library",
        "zone_name": "Hall B",
        "co2_ppm": 1450,
        "occurred_at": _START,
    },
    EventKind.ENERGY_BUDGET_EXCEEDED: {
        "library_name": "Gyan Deep Library",
        "used_kwh": 812.5,
        "budget_kwh": 750,
        "occurred_at": _START,
    },
    EventKind.SEAT_CONFLICT: {
        "library_name": "Gyan Deep Library",
        "seat_label": "A-12",
        "receipt_number": "3f9a1c2e-000042",
        "booking_ref": "BK-7Q2M",
        "starts_at": _START,
    },
    EventKind.OWNER_ANNOUNCEMENT: {
        "library_name": "Gyan Deep Library",
        "title": "Closed on Sunday",
        "body": "The hall is closed on Sunday for maintenance. Monthly passes are extended by one day.",
    },
}
