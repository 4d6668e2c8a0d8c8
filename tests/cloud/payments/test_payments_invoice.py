"""GST invoice math and PDF rendering, read back with pypdf."""

from __future__ import annotations

import datetime as dt
import io
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from babel.numbers import format_currency
from fontTools.ttLib import TTFont
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from pypdf import PdfReader

from cloud.payments.gst import compute_totals, tax_on
from cloud.payments.invoice_pdf import (
    FONT_DIRS,
    InvoiceFonts,
    compact_font,
    find_unicode_fonts,
    render_invoice_pdf,
)
from cloud.payments.schemas import InvoiceData, InvoiceLine, InvoiceParty, gstin_check_character

KARNATAKA_GSTIN = "29AAGCB7383J1Z4"
MAHARASHTRA_GSTIN = "27AAPFU0939F1ZV"
LATIN1_ONLY = InvoiceFonts(None, None)


def supplier(**overrides: Any) -> InvoiceParty:
    fields: dict[str, Any] = {
        "name": "Quiet Corner Library Pvt Ltd",
        "address_lines": ("12 MG Road", "Bengaluru 560001"),
        "gstin": KARNATAKA_GSTIN,
        "state_code": "29",
        "state_name": "Karnataka",
    }
    fields.update(overrides)
    return InvoiceParty(**fields)


def customer(state_code: str = "29", state_name: str = "Karnataka", **overrides: Any) -> InvoiceParty:
    fields: dict[str, Any] = {"name": "Asha Rao", "state_code": state_code, "state_name": state_name}
    return InvoiceParty(**{**fields, **overrides})


def invoice(**overrides: Any) -> InvoiceData:
    fields: dict[str, Any] = {
        "number": "QC/2026/0001",
        "issued_at": dt.datetime(2026, 11, 24, 20, 0, tzinfo=dt.UTC),
        "supplier": supplier(),
        "customer": customer(),
        "lines": (
            InvoiceLine(description="Monthly seat, morning shift", unit_price_minor=150000),
            InvoiceLine(description="Locker", quantity=2, unit_price_minor=9999, discount_minor=1),
        ),
        "payment_reference": "pay_123",
    }
    fields.update(overrides)
    return InvoiceData(**fields)


def pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_intra_state_invoice_has_cgst_and_sgst() -> None:
    data = render_invoice_pdf(invoice())
    assert data.startswith(b"%PDF-")
    text = pdf_text(data)
    for expected in (
        "TAX INVOICE",
        "No. QC/2026/0001",
        "GSTIN: 29AAGCB7383J1Z4",
        "Place of supply: Karnataka (29)",
        "999799",
        "CGST 9%",
        "SGST 9%",
        "₹1,500.00",
        "₹199.97",  # 2 x 99.99 - 0.01 discount
        "Taxable value ₹1,699.97",
        "CGST ₹153.00",
        "SGST ₹153.00",
        "Total ₹2,005.97",
        "Payment reference: pay_123",
    ):
        assert expected in text, expected
    assert "IGST" not in text
    assert "Date: 25 Nov 2026" in text  # 20:00 UTC is already the 25th in Asia/Kolkata


def test_inter_state_invoice_has_igst_only() -> None:
    text = pdf_text(
        render_invoice_pdf(invoice(customer=customer("27", "Maharashtra", gstin=MAHARASHTRA_GSTIN)))
    )
    assert "IGST 18%" in text and "CGST" not in text and "SGST" not in text
    assert "Place of supply: Maharashtra (27)" in text
    assert "GSTIN: 27AAPFU0939F1ZV" in text
    # IGST rounds once per line (305.99); CGST+SGST round each half (153.00 + 153.00).
    assert "IGST ₹305.99" in text and "Total ₹2,005.96" in text


def test_place_of_supply_can_differ_from_the_customer_state() -> None:
    data = invoice(customer=customer("27", "Maharashtra"), place_of_supply_state_code="29")
    assert compute_totals(data).intra_state


def test_credit_note_names_the_original_invoice() -> None:
    note = invoice(kind="credit_note", number="QC/CN/0001", original_invoice_number="QC/2026/0001")
    text = pdf_text(render_invoice_pdf(note))
    assert (
        "CREDIT NOTE" in text and "Against invoice: QC/2026/0001" in text and "Total credit ₹2,005.97" in text
    )


def test_indian_digit_grouping_and_currency_precision() -> None:
    big = invoice(lines=(InvoiceLine(description="Annual hall booking", unit_price_minor=1234567850),))
    assert "₹1,23,45,678.50" in pdf_text(render_invoice_pdf(big))
    yen = invoice(currency="JPY", lines=(InvoiceLine(description="Seat", unit_price_minor=1000),))
    text = pdf_text(render_invoice_pdf(yen))
    assert "1,000" in text and "1,000.00" not in text  # JPY has no minor digits


def test_latin1_fallback_uses_iso_codes_and_survives_any_text() -> None:
    hindi = invoice(
        customer=customer(name="आशा राव"), lines=(InvoiceLine(description="सीट", unit_price_minor=100),)
    )
    text = pdf_text(render_invoice_pdf(hindi, LATIN1_ONLY))
    assert "INR 1.00" in text and "₹" not in text
    assert render_invoice_pdf(hindi).startswith(b"%PDF-")  # Unicode font: no crash either


def test_long_descriptions_are_truncated_not_spilled() -> None:
    long = invoice(lines=(InvoiceLine(description="Seat " + "very " * 30 + "long", unit_price_minor=100),))
    text = pdf_text(render_invoice_pdf(long))
    assert "…" in text and "very very very very very very very very very very" not in text


def test_rendering_is_deterministic() -> None:
    assert render_invoice_pdf(invoice()) == render_invoice_pdf(invoice())
    assert render_invoice_pdf(invoice(), LATIN1_ONLY) == render_invoice_pdf(invoice(), LATIN1_ONLY)


def test_this_machine_has_the_unicode_font() -> None:
    assert find_unicode_fonts().unicode


@pytest.fixture
def font_cache_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The temp directory (where the cut fonts are cached) is `tmp_path` for the test; the process's
    remembered cut fonts are forgotten before and after, so no other test sees a deleted file."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    compact_font.cache_clear()
    yield tmp_path
    compact_font.cache_clear()


def _dejavu() -> Path:
    return next(d / "DejaVuSans.ttf" for d in FONT_DIRS if (d / "DejaVuSans.ttf").is_file())


def test_the_invoice_font_is_cut_to_invoice_text_once_and_keeps_every_glyph_it_needs(
    font_cache_in: Path,
) -> None:
    whole = _dejavu()
    cut = compact_font(whole)
    assert cut.parent == font_cache_in / "studyspot-fonts" and cut.stat().st_size < whole.stat().st_size / 3
    cmap = TTFont(str(cut)).getBestCmap()
    assert all(ord(char) in cmap for char in "₹ Zoë Łukasz Šťastný Ωmega Москва “quoted” \u2013 №")
    compact_font.cache_clear()
    written = cut.stat().st_mtime_ns
    assert compact_font(whole) == cut and cut.stat().st_mtime_ns == written  # read from the cache dir
    text = pdf_text(render_invoice_pdf(invoice(customer=customer(name="Zoë Łukasz"))))
    assert "Zoë Łukasz" in text and "₹" in text


def test_an_unwritable_font_cache_falls_back_to_the_whole_font(font_cache_in: Path) -> None:
    (font_cache_in / "studyspot-fonts").write_text("a file where the cache directory should be")
    assert compact_font(_dejavu()) == _dejavu()


@pytest.mark.parametrize(
    "overrides",
    [
        {"supplier": supplier(gstin=None)},
        {"kind": "credit_note"},
        {"number": "X" * 17},
        {"issued_at": dt.datetime(2026, 11, 24, 20, 0)},
        {"timezone": "Mars/Olympus"},
        {"currency": "RUPEE"},
        {"lines": ()},
        {"lines": (InvoiceLine(description="Seat", unit_price_minor=100, discount_minor=101),)},
        {"place_of_supply_state_code": "KA"},
    ],
)
def test_invalid_invoices_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        invoice(**overrides)


@pytest.mark.parametrize(
    "party",
    [
        {"gstin": "29AAGCB7383J1Z5"},  # wrong check character
        {"gstin": "29AAGCB7383J1X4"},  # 14th character must be Z
        {"gstin": "short"},
        {"gstin": MAHARASHTRA_GSTIN},  # a Maharashtra GSTIN on a Karnataka supplier
        {"state_code": "290"},
    ],
)
def test_invalid_supplier_identity_is_refused(party: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        invoice(supplier=supplier(**party))


@pytest.mark.parametrize(
    "line",
    [
        {"sac_code": "998311"},
        {"sac_code": "9997"},
        {"quantity": 0},
        {"quantity": True},
        {"unit_price_minor": -1},
        {"unit_price_minor": 10.5},
        {"gst_rate_bp": 5000},
        {"description": ""},
    ],
)
def test_invalid_lines_are_refused(line: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        InvoiceLine(**{"description": "Seat", "unit_price_minor": 100, **line})


def test_gstin_check_character_matches_published_examples() -> None:
    assert gstin_check_character("27AAPFU0939F1Z") == "V"
    assert gstin_check_character("29AAGCB7383J1Z") == "4"
    assert supplier(gstin=" 29aagcb7383j1z4 ").gstin == KARNATAKA_GSTIN


def test_tax_rounding_is_half_up_per_line() -> None:
    assert tax_on(5, 1800) == 1  # 0.9
    assert tax_on(25, 1800, halved=True) == 2  # 2.25 -> 2
    assert tax_on(250, 100, halved=True) == 1  # 1.25 -> 1
    assert tax_on(50, 1000, halved=True) == 3  # 2.5 -> 3
    mixed = invoice(
        lines=(
            InvoiceLine(description="Seat", unit_price_minor=10000, gst_rate_bp=1800),
            InvoiceLine(description="Printing", unit_price_minor=1000, gst_rate_bp=500),
            InvoiceLine(description="Water", unit_price_minor=1000, gst_rate_bp=0),
        )
    )
    totals = compute_totals(mixed)
    assert (totals.taxable_minor, totals.cgst_minor, totals.sgst_minor, totals.igst_minor) == (
        12000,
        925,
        925,
        0,
    )
    assert totals.total_minor == 13850
    text = pdf_text(render_invoice_pdf(mixed))
    assert "CGST 9%" not in text and "CGST" in text  # several rates: no single rate in the header


@given(taxable=st.integers(min_value=0, max_value=10**12), rate=st.sampled_from([0, 500, 1200, 1800, 2800]))
def test_cgst_plus_sgst_stays_within_a_paisa_of_igst(taxable: int, rate: int) -> None:
    igst = tax_on(taxable, rate)
    half = tax_on(taxable, rate, halved=True)
    assert abs(2 * half - igst) <= 1
    assert abs(igst - taxable * rate / 10_000) <= 0.5 + 1e-6


def test_huge_amounts_are_printed_whole_never_truncated() -> None:
    line = InvoiceLine(description="Hall", quantity=999, unit_price_minor=99_999_999_99)
    inter_state = customer("27", "Maharashtra")
    for data in (invoice(lines=(line,)), invoice(lines=(line,), customer=inter_state)):
        totals = compute_totals(data)
        tax = totals.cgst_minor if totals.intra_state else totals.igst_minor
        for fonts in (None, LATIN1_ONLY):
            text = pdf_text(render_invoice_pdf(data, fonts)).replace("INR ", "₹")
            assert "₹99,89,99,99,990.01" in text  # 999 x 9,99,99,999.99, Indian grouping
            assert rupees(totals.total_minor) in text and rupees(tax) in text
            assert "…" not in text and "..." not in text


def rupees(minor: int) -> str:
    return format_currency(Decimal(minor) / 100, "INR", locale="en_IN")
