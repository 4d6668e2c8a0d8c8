"""The notification vocabulary: event kinds, channels, languages and what each kind needs."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class EventKind(enum.StrEnum):
    OTP = "otp"
    REGISTRATION = "registration"
    BOOKING_CONFIRMED = "booking_confirmed"
    BOOKING_MODIFIED = "booking_modified"
    BOOKING_CANCELLED = "booking_cancelled"
    BOOKING_REMINDER = "booking_reminder"
    WAITLIST_PROMOTED = "waitlist_promoted"
    NO_SHOW_RELEASED = "no_show_released"
    PAYMENT_SUCCEEDED = "payment_succeeded"
    PAYMENT_FAILED = "payment_failed"
    REFUND_PROCESSED = "refund_processed"
    DUES_REMINDER_BEFORE = "dues_reminder_before"
    DUES_REMINDER_DUE = "dues_reminder_due"
    DUES_OVERDUE = "dues_overdue"
    SUSPENSION = "suspension"
    INVOICE_READY = "invoice_ready"
    DOOR_FORCED = "door_forced"
    DOOR_HELD_OPEN = "door_held_open"
    LOCK_NOT_RESPONDING = "lock_not_responding"
    DEVICE_OFFLINE = "device_offline"
    CO2_HIGH = "co2_high"
    ENERGY_BUDGET_EXCEEDED = "energy_budget_exceeded"
    OWNER_ANNOUNCEMENT = "owner_announcement"
    SEAT_CONFLICT = "seat_conflict"  # a walk-in sold offline met an online booking (to the owner)


class ChannelKind(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"
    WHATSAPP = "whatsapp"
    PUSH = "push"
    CONSOLE = "console"


class Language(enum.StrEnum):
    ENGLISH = "en"
    HINDI = "hi"


BABEL_LOCALES: dict[Language, str] = {Language.ENGLISH: "en_IN", Language.HINDI: "hi_IN"}


@dataclass(frozen=True)
class EventSpec:
    """Delivery rules of one event kind.

    `urgent` messages ignore quiet hours; `mandatory` ones ignore per-kind opt-outs (a user who
    switched every channel off must still be able to log in with an OTP).
    """

    urgent: bool = False
    mandatory: bool = False
    staff_alert: bool = False
    marketing: bool = False


_STAFF_URGENT = EventSpec(urgent=True, staff_alert=True)
_STAFF = EventSpec(staff_alert=True)

EVENT_SPECS: dict[EventKind, EventSpec] = {
    EventKind.OTP: EventSpec(urgent=True, mandatory=True),
    EventKind.REGISTRATION: EventSpec(),
    EventKind.BOOKING_CONFIRMED: EventSpec(),
    EventKind.BOOKING_MODIFIED: EventSpec(),
    EventKind.BOOKING_CANCELLED: EventSpec(),
    # Reminders wait out quiet hours like other news; the caller passes the booking start as
    # `expires_at` so a reminder that would arrive too late is dropped instead.
    EventKind.BOOKING_REMINDER: EventSpec(),
    # The seat is held only until a deadline; waiting for quiet hours to end could forfeit it.
    EventKind.WAITLIST_PROMOTED: EventSpec(urgent=True),
    EventKind.NO_SHOW_RELEASED: EventSpec(),
    EventKind.PAYMENT_SUCCEEDED: EventSpec(),
    EventKind.PAYMENT_FAILED: EventSpec(),
    EventKind.REFUND_PROCESSED: EventSpec(),
    EventKind.DUES_REMINDER_BEFORE: EventSpec(),
    EventKind.DUES_REMINDER_DUE: EventSpec(),
    EventKind.DUES_OVERDUE: EventSpec(),
    EventKind.SUSPENSION: EventSpec(mandatory=True),
    EventKind.INVOICE_READY: EventSpec(),
    EventKind.DOOR_FORCED: _STAFF_URGENT,
    EventKind.DOOR_HELD_OPEN: _STAFF_URGENT,
    # A dead lock keeps students out (or the hall open), so it counts as a door alert.
    EventKind.LOCK_NOT_RESPONDING: _STAFF_URGENT,
    EventKind.DEVICE_OFFLINE: _STAFF,
    EventKind.CO2_HIGH: _STAFF,
    EventKind.ENERGY_BUDGET_EXCEEDED: _STAFF,
    EventKind.OWNER_ANNOUNCEMENT: EventSpec(marketing=True),
    EventKind.SEAT_CONFLICT: _STAFF,
}
