"""Typed desk-sale payloads (`cash_sale`, `walkin_booking`): valid ones parse, anything else gets a
typed rejection — pydantic's ValidationError on the edge, a `rejected` result with a reason from the
cloud's push validation — and never any other exception."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cloud.fleet.push import _validate_events
from shared.sync import (
    SALE_PAYLOADS,
    CashSalePayload,
    EventKind,
    SaleMethod,
    WalkinBookingPayload,
    walkin_booking_id,
)

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
FUZZ = settings(max_examples=150, deadline=None)


def walkin(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "receipt_number": "3f9a1c2e-000042",
        "plan_id": str(uuid.uuid4()),
        "amount_minor": 10000,
        "currency": "INR",
        "method": "cash",
        "staff_user_id": str(uuid.uuid4()),
        "customer_name": "Ravi",
        "customer_phone": "+91 98765 43210",
        "sold_at": NOW.isoformat(),
        "seat_id": str(uuid.uuid4()),
        "seat_label": "A-12",
        "start": NOW.isoformat(),
        "end": (NOW + timedelta(hours=2)).isoformat(),
        "checked_in_at": NOW.isoformat(),
    }
    payload.update(changes)
    return payload


def cash_sale(**changes: Any) -> dict[str, Any]:
    payload = {
        k: v
        for k, v in walkin().items()
        if k not in ("seat_id", "seat_label", "start", "end", "checked_in_at")
    }
    return payload | {"booking_id": str(uuid.uuid4())} | changes


def test_valid_payloads_parse() -> None:
    sale = WalkinBookingPayload.model_validate(walkin(method="upi", upi_ref="UPI-4471-9912"))
    assert (sale.method, sale.amount_minor, sale.end - sale.start) == (
        SaleMethod.UPI,
        10000,
        timedelta(hours=2),
    )
    assert CashSalePayload.model_validate(cash_sale()).booking_id is not None
    assert walkin_booking_id("d", "3f9a1c2e-000042") == walkin_booking_id("d", "3f9a1c2e-000042")


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"method": "upi"}, "UPI reference"),
        ({"upi_ref": "UPI-4471-9912"}, "cash payment has no UPI reference"),
        ({"amount_minor": 0}, "greater than 0"),
        ({"amount_minor": "100"}, "valid integer"),
        ({"amount_minor": 10.5}, "valid integer"),
        ({"currency": "inr"}, "pattern"),
        ({"receipt_number": "../etc"}, "pattern"),
        ({"end": NOW.isoformat()}, "end after it starts"),
        ({"end": (NOW + timedelta(hours=25)).isoformat()}, "at most 24 hours"),
        ({"sold_at": "2026-11-24T09:30:00"}, "timezone"),
        ({"customer_phone": "call me"}, "pattern"),
        ({"surprise": 1}, "Extra inputs"),
    ],
)
def test_bad_walkins_are_rejected_with_a_reason(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        WalkinBookingPayload.model_validate(walkin(**changes))


def test_a_cash_sale_names_the_booking_it_pays() -> None:
    with pytest.raises(ValidationError, match="booking_id"):
        CashSalePayload.model_validate({k: v for k, v in cash_sale().items() if k != "booking_id"})


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [*walkin(), "booking_id"]


@st.composite
def mangled(draw: st.DrawFn) -> dict[str, Any]:
    """A valid payload with some fields dropped or replaced by arbitrary JSON, plus junk keys."""
    payload = draw(st.sampled_from([walkin(), cash_sale()]))
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=4)):
        if draw(st.booleans()):
            payload.pop(field, None)
        else:
            payload[field] = draw(JSON)
    return payload | draw(st.dictionaries(st.text(max_size=8), JSON, max_size=2))


@FUZZ
@given(kind=st.sampled_from(sorted(SALE_PAYLOADS)), payload=mangled() | st.dictionaries(st.text(), JSON))
def test_any_payload_parses_or_gets_a_typed_rejection_on_both_sides(
    kind: EventKind, payload: dict[str, Any]
) -> None:
    try:
        SALE_PAYLOADS[kind].model_validate(payload)
        edge_ok = True
    except ValidationError:
        edge_ok = False
    event = {"id": str(uuid.uuid4()), "kind": kind.value, "occurred_at": NOW.isoformat(), "payload": payload}
    accepted, answered = _validate_events([event], NOW)
    (result,) = answered.values()
    assert (result.status == "applied") is edge_ok is (len(accepted) == 1)
    if not edge_ok:
        assert (
            result.status == "rejected"
            and result.reason
            and result.reason.startswith(f"invalid {kind.value}")
        )
