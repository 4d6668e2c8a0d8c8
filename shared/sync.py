"""Sync wire models between edge and cloud (pydantic v2). Every message carries `version: 1`.

Edge → cloud (`PushBatch`) is validated strictly (unknown fields rejected). Cloud → edge
(`PullResponse` and its records) ignores unknown fields so an older edge keeps working while the
cloud adds optional fields; an incompatible change bumps `version`.
All datetimes must be timezone-aware.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID, uuid5

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

SYNC_VERSION: Literal[1] = 1
MAX_EVENTS_PER_BATCH = 500

PassId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class _Inbound(BaseModel):
    """Edge → cloud: strict."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class _Outbound(BaseModel):
    """Cloud → edge: tolerant of fields added later."""

    model_config = ConfigDict(extra="ignore", frozen=True)


# --- push (edge → cloud) --------------------------------------------------------------------------


class EventKind(StrEnum):
    CHECKIN = "checkin"
    CHECKOUT = "checkout"
    CHECKIN_REJECTED = "checkin_rejected"
    TELEMETRY = "telemetry"
    DEVICE_STATE = "device_state"
    ALERT = "alert"
    CASH_SALE = "cash_sale"
    WALKIN_BOOKING = "walkin_booking"
    RULE_ACTION = "rule_action"
    COMMAND_ACK = "command_ack"


class EdgeEvent(_Inbound):
    id: UUID
    kind: EventKind
    occurred_at: AwareDatetime
    payload: dict[str, Any] = Field(default_factory=dict)


# --- desk sales (payloads of CASH_SALE / WALKIN_BOOKING events) ----------------------------------

ReceiptNumber = Annotated[str, StringConstraints(pattern=r"^[0-9a-z]{4,16}-[0-9]{1,12}$")]
CustomerName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=80)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 -]{6,20}$")]
UpiRef = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9-]{6,40}$")]
MAX_SALE_MINOR = 10_000_000  # 1 lakh rupees in paise: a desk sale above is a typo, not a sale


class SaleMethod(StrEnum):
    CASH = "cash"
    UPI = "upi"


class SalePayment(_Inbound):
    """Money taken at the desk, with a receipt number unique per edge (`<edge short id>-<sequence>`)."""

    receipt_number: ReceiptNumber
    plan_id: UUID | None = None
    amount_minor: int = Field(gt=0, le=MAX_SALE_MINOR, strict=True)
    currency: Currency
    method: SaleMethod
    upi_ref: UpiRef | None = None
    staff_user_id: UUID
    customer_name: CustomerName = ""
    customer_phone: Phone | None = None
    sold_at: AwareDatetime

    @model_validator(mode="after")
    def _upi_has_reference(self) -> SalePayment:
        if self.method is SaleMethod.UPI and not self.upi_ref:
            raise ValueError("a UPI payment needs its UPI reference")
        if self.method is SaleMethod.CASH and self.upi_ref:
            raise ValueError("a cash payment has no UPI reference")
        return self


class CashSalePayload(SalePayment):
    """`cash_sale`: cash or UPI taken at the desk for an existing booking (e.g. one held unpaid)."""

    booking_id: UUID


class WalkinBookingPayload(SalePayment):
    """`walkin_booking`: a seat sold and paid at the desk, in ONE event so the booking and its money
    apply together. The edge admitted the walk-in at `checked_in_at` (None: not inside yet)."""

    seat_id: UUID
    seat_label: str = Field(default="", max_length=50)
    plan_id: UUID
    start: AwareDatetime
    end: AwareDatetime
    checked_in_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _window_ordered(self) -> WalkinBookingPayload:
        if not self.start < self.end or self.end - self.start > MAX_WALKIN:
            raise ValueError("the window must end after it starts and last at most 24 hours")
        return self


MAX_WALKIN = timedelta(hours=24)
_WALKIN_NAMESPACE = UUID("6b1f7c0e-3d2a-4c55-9a51-0d4f1b2c7e88")


def walkin_booking_id(device_id: UUID | str, receipt_number: str) -> UUID:
    """The cloud booking id of a walk-in, known to the edge before it syncs (stable per receipt)."""
    return uuid5(_WALKIN_NAMESPACE, f"{device_id}:{receipt_number}")


SALE_PAYLOADS: dict[EventKind, type[SalePayment]] = {
    EventKind.CASH_SALE: CashSalePayload,
    EventKind.WALKIN_BOOKING: WalkinBookingPayload,
}


class PushBatch(_Inbound):
    version: Literal[1] = SYNC_VERSION
    device_id: UUID
    sent_at: AwareDatetime
    clock: AwareDatetime  # the edge's clock when it built the batch; the cloud derives skew from it
    events: list[EdgeEvent] = Field(max_length=MAX_EVENTS_PER_BATCH)

    @model_validator(mode="after")
    def _event_ids_unique(self) -> PushBatch:
        ids = [event.id for event in self.events]
        if len(set(ids)) != len(ids):
            raise ValueError("event ids must be unique within a batch")
        return self


class EventResult(_Outbound):
    id: UUID
    status: Literal["applied", "duplicate", "rejected"]
    reason: str | None = None

    @model_validator(mode="after")
    def _rejection_has_reason(self) -> EventResult:
        if self.status == "rejected" and not self.reason:
            raise ValueError("a rejected event needs a reason")
        return self


class PushResult(_Outbound):
    version: Literal[1] = SYNC_VERSION
    results: list[EventResult]


# --- pull (cloud → edge) --------------------------------------------------------------------------


class PassStatus(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"
    REVOKED = "revoked"
    EXPIRED = "expired"


class PassRecord(_Outbound):
    pass_id: PassId
    booking_id: UUID
    seat_id: UUID | None = None  # None for a zone pass
    seat_label: str = ""
    zone_id: UUID | None = None
    holder_id: UUID
    holder_name: str = ""
    valid_from: AwareDatetime
    valid_until: AwareDatetime
    status: PassStatus = PassStatus.ACTIVE

    @model_validator(mode="after")
    def _window_ordered(self) -> PassRecord:
        if self.valid_until < self.valid_from:
            raise ValueError("valid_until is before valid_from")
        return self


class Revocation(_Outbound):
    pass_id: PassId
    revoked_at: AwareDatetime
    reason: str = ""


class StaffRecord(_Outbound):
    user_id: UUID
    name: ShortText
    pin_hash: str  # argon2 hash of the desk PIN; never the PIN
    role: Slug
    active: bool = True


class PlanRecord(_Outbound):
    id: UUID
    name: ShortText
    kind: Slug  # e.g. hourly, day_pass, monthly_shift
    price_minor: int = Field(ge=0)
    currency: Currency
    duration_minutes: int | None = Field(default=None, gt=0)
    active: bool = True


class SeatRecord(_Outbound):
    """A seat of the library, for the kiosk's seat map and desk sales."""

    id: UUID
    label: ShortText
    zone_id: UUID | None = None
    zone_name: str = ""
    seat_type: str = ""
    active: bool = True


class RemoteCommand(_Outbound):
    id: UUID
    kind: Slug  # e.g. unlock_door, reload_config, rotate_key
    args: dict[str, Any] = Field(default_factory=dict)
    issued_at: AwareDatetime


class LibraryTiming(_Outbound):
    """The library's booking times the kiosk needs (the cloud's settings win over the edge config)."""

    checkin_open_minutes: int = Field(ge=0, le=1440)
    no_show_grace_minutes: int = Field(ge=0, le=1440)


class PullResponse(_Outbound):
    version: Literal[1] = SYNC_VERSION
    cursor: str
    has_more: bool = False
    full_resync: bool = False
    passes: list[PassRecord] = Field(default_factory=list)
    revocations: list[Revocation] = Field(default_factory=list)
    staff: list[StaffRecord] = Field(default_factory=list)
    plans: list[PlanRecord] = Field(default_factory=list)
    seats: list[SeatRecord] = Field(default_factory=list)
    config: dict[str, Any] | None = None
    commands: list[RemoteCommand] = Field(default_factory=list)
    pass_keys: dict[str, str] = Field(default_factory=dict)  # key_id -> public_key_to_text(...)
    library: LibraryTiming | None = None


__all__ = [
    "MAX_EVENTS_PER_BATCH",
    "SALE_PAYLOADS",
    "SYNC_VERSION",
    "CashSalePayload",
    "EdgeEvent",
    "EventKind",
    "EventResult",
    "LibraryTiming",
    "PassRecord",
    "PassStatus",
    "PlanRecord",
    "PullResponse",
    "PushBatch",
    "PushResult",
    "RemoteCommand",
    "Revocation",
    "SaleMethod",
    "SalePayment",
    "SeatRecord",
    "StaffRecord",
    "WalkinBookingPayload",
    "walkin_booking_id",
]
