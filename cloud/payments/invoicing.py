"""Tax invoices for captured payments: the numbers come from `service.allocate_invoice_number`
(gapless, per tenant), the PDF from `invoice_pdf.render_invoice_pdf`.

The supplier's GST registration is configured by environment (`INVOICE_*`), one for the deployment,
until tenants carry their own GSTIN. Booking prices are GST-inclusive: the taxable value is backed
out of the price so the invoice total equals what the student paid (to the paisa when the rate allows).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.orm import Session

from cloud.booking.models import Booking
from cloud.catalog.models import LibraryRecord
from cloud.errors import ApiError
from cloud.identity.models import User
from cloud.payments.gst import line_tax
from cloud.payments.invoice_pdf import render_invoice_pdf
from cloud.payments.models import Payment
from cloud.payments.schemas import InvoiceData, InvoiceLine, InvoiceParty


class InvoiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INVOICE_", extra="ignore", case_sensitive=False)

    supplier_name: str = Field(default="StudySpot library", description="Legal name printed on invoices.")
    supplier_gstin: str | None = Field(default=None, description="Supplier GSTIN; invoices need it.")
    supplier_state_code: str = Field(default="29", description="GST state code of the supplier.")
    supplier_state_name: str = Field(default="Karnataka", description="State name of the supplier.")
    supplier_address: str = Field(default="", description="Address line printed under the supplier.")
    gst_rate_bp: int = Field(default=1800, ge=0, le=2800, description="GST rate in basis points.")
    sac_code: str = Field(default="999799", description="SAC code of the seat service.")


def taxable_from_inclusive(price_minor: int, rate_bp: int) -> int:
    """The taxable value whose CGST+SGST brings the total to `price_minor` (or the nearest below)."""
    guess = price_minor * 10_000 // (10_000 + rate_bp)
    best = guess
    for candidate in range(max(guess - 2, 0), guess + 3):
        line = InvoiceLine(description="x", unit_price_minor=candidate, gst_rate_bp=rate_bp)
        if line_tax(line, intra_state=True).total_minor <= price_minor:
            best = candidate
    return best


def invoice_for(session: Session, payment: Payment, settings: InvoiceSettings) -> InvoiceData:
    if payment.invoice_number is None or payment.captured_at is None:
        raise ApiError(409, "no_invoice", "only a captured payment has an invoice")
    if not settings.supplier_gstin:
        raise ApiError(409, "invoicing_not_configured", "set INVOICE_SUPPLIER_GSTIN to issue invoices")
    supplier = InvoiceParty(
        name=settings.supplier_name,
        address_lines=(settings.supplier_address,) if settings.supplier_address else (),
        gstin=settings.supplier_gstin,
        state_code=settings.supplier_state_code,
        state_name=settings.supplier_state_name,
    )
    user = session.get(User, payment.user_id)
    customer = InvoiceParty(
        name=(user.full_name or user.email) if user else "Student",
        state_code=settings.supplier_state_code,
        state_name=settings.supplier_state_name,
    )
    return InvoiceData(
        number=payment.invoice_number,
        issued_at=payment.captured_at,
        timezone=_library_zone(session, payment),
        supplier=supplier,
        customer=customer,
        currency=payment.currency,
        lines=(
            InvoiceLine(
                description="Study seat booking",
                sac_code=settings.sac_code,
                unit_price_minor=taxable_from_inclusive(payment.amount_minor, settings.gst_rate_bp),
                gst_rate_bp=settings.gst_rate_bp,
            ),
        ),
        payment_reference=payment.provider_payment_id,
    )


def _library_zone(session: Session, payment: Payment) -> str:
    booking = session.get(Booking, payment.booking_id)
    library = session.get(LibraryRecord, booking.library_id) if booking else None
    return library.timezone if library else "Asia/Kolkata"


def invoice_pdf(session: Session, payment: Payment, settings: InvoiceSettings) -> bytes:
    return render_invoice_pdf(invoice_for(session, payment, settings))


__all__ = ["InvoiceSettings", "invoice_for", "invoice_pdf", "taxable_from_inclusive"]
