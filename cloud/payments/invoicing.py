"""Tax invoices for captured payments: the numbers come from `service.allocate_invoice_number`
(gapless, per tenant), the PDF from `invoice_pdf.render_invoice_pdf`.

The supplier's GST registration is the tenant's own (`PUT /api/v1/tenant/billing`) when saved, else
the deployment's (`INVOICE_*`). Credit notes for refunds reuse the invoice's parties. Booking prices
are GST-inclusive: the taxable value is backed out of the price so the invoice total equals what the
student paid (to the paisa when the rate allows).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import text
from sqlalchemy.orm import Session

from cloud.billing import tenant_billing
from cloud.billing.models import CreditNote
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
    supplier_gstin: str | None = Field(
        default=None, description="Default supplier GSTIN, for tenants without saved GST details."
    )
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


@dataclass(frozen=True)
class Supplier:
    party: InvoiceParty
    sac_code: str
    gst_rate_bp: int


def supplier_of(session: Session, tenant_id: uuid.UUID, settings: InvoiceSettings) -> Supplier:
    """The tenant's own GST registration when saved, else the deployment's `INVOICE_SUPPLIER_*`."""
    own = tenant_billing.get_billing(session, tenant_id)
    if own is not None:
        address = (own.address,) if own.address else ()
        party = InvoiceParty(
            name=own.legal_name, address_lines=address, gstin=own.gstin,
            state_code=own.state_code, state_name=tenant_billing.state_name(own.state_code),
        )  # fmt: skip
        return Supplier(party, own.sac_code, own.gst_rate_bp)
    if not settings.supplier_gstin:
        raise ApiError(
            409, "invoicing_not_configured", "save the tenant's GST details (or set INVOICE_SUPPLIER_GSTIN)"
        )
    party = InvoiceParty(
        name=settings.supplier_name,
        address_lines=(settings.supplier_address,) if settings.supplier_address else (),
        gstin=settings.supplier_gstin,
        state_code=settings.supplier_state_code,
        state_name=settings.supplier_state_name,
    )
    return Supplier(party, settings.sac_code, settings.gst_rate_bp)


def supplier_configured(session: Session, tenant_id: uuid.UUID) -> bool:
    if InvoiceSettings().supplier_gstin is not None:
        return True
    return tenant_billing.get_billing(session, tenant_id) is not None


def _customer(session: Session, payment: Payment, supplier: Supplier) -> InvoiceParty:
    """The student, placed in the library's state (the place of supply of a seat); a library with no
    `gst_state_code` is in the supplier's state: CGST+SGST then, IGST across states."""
    user = session.get(User, payment.user_id)
    booking = session.get(Booking, payment.booking_id)
    state = None
    if booking is not None:
        state = session.execute(
            text("SELECT gst_state_code FROM libraries WHERE id = :id"), {"id": booking.library_id}
        ).scalar()
    code = state or supplier.party.state_code
    name = supplier.party.state_name if code == supplier.party.state_code else tenant_billing.state_name(code)
    return InvoiceParty(
        name=(user.full_name or user.email) if user else "Student", state_code=code, state_name=name
    )


def _line(supplier: Supplier, inclusive_minor: int, description: str) -> InvoiceLine:
    return InvoiceLine(
        description=description,
        sac_code=supplier.sac_code,
        unit_price_minor=taxable_from_inclusive(inclusive_minor, supplier.gst_rate_bp),
        gst_rate_bp=supplier.gst_rate_bp,
    )


def invoice_for(session: Session, payment: Payment, settings: InvoiceSettings) -> InvoiceData:
    if payment.invoice_number is None or payment.captured_at is None:
        raise ApiError(409, "no_invoice", "only a captured payment has an invoice")
    supplier = supplier_of(session, payment.tenant_id, settings)
    description = "Monthly seat subscription" if payment.due_id else "Study seat booking"
    return InvoiceData(
        number=payment.invoice_number,
        issued_at=payment.captured_at,
        timezone=_library_zone(session, payment),
        supplier=supplier.party,
        customer=_customer(session, payment, supplier),
        currency=payment.currency,
        lines=(_line(supplier, payment.amount_minor, description),),
        payment_reference=payment.provider_payment_id,
    )


def credit_note_for(
    session: Session, payment: Payment, note: CreditNote, settings: InvoiceSettings
) -> InvoiceData:
    """The credit note reversing (part of) the payment's invoice: the refunded amount, GST included."""
    invoice = invoice_for(session, payment, settings)
    supplier = supplier_of(session, payment.tenant_id, settings)
    return invoice.model_copy(
        update={
            "kind": "credit_note",
            "number": note.number,
            "issued_at": note.issued_at,
            "original_invoice_number": payment.invoice_number,
            "lines": (_line(supplier, note.amount_minor, f"Refund against {payment.invoice_number}"),),
        }
    )


def credit_note_pdf(session: Session, payment: Payment, note: CreditNote, settings: InvoiceSettings) -> bytes:
    return render_invoice_pdf(credit_note_for(session, payment, note, settings))


def _library_zone(session: Session, payment: Payment) -> str:
    booking = session.get(Booking, payment.booking_id)
    library = session.get(LibraryRecord, booking.library_id) if booking else None
    return library.timezone if library else "Asia/Kolkata"


def invoice_pdf(session: Session, payment: Payment, settings: InvoiceSettings) -> bytes:
    return render_invoice_pdf(invoice_for(session, payment, settings))


__all__ = [
    "InvoiceSettings",
    "credit_note_pdf",
    "invoice_for",
    "invoice_pdf",
    "supplier_configured",
    "taxable_from_inclusive",
]
