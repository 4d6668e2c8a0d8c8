"""GST arithmetic on integer minor units: CGST+SGST within a state, IGST across states.

Each tax is computed per line on the taxable value and rounded half-up to the minor unit; CGST and
SGST are each half the rate, computed separately (so their sum can differ from IGST by one paisa).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from cloud.payments.schemas import InvoiceData, InvoiceLine


@dataclass(frozen=True)
class LineTax:
    line: InvoiceLine
    taxable_minor: int
    cgst_minor: int
    sgst_minor: int
    igst_minor: int

    @property
    def total_minor(self) -> int:
        return self.taxable_minor + self.cgst_minor + self.sgst_minor + self.igst_minor


@dataclass(frozen=True)
class InvoiceTotals:
    lines: tuple[LineTax, ...]
    intra_state: bool
    taxable_minor: int
    cgst_minor: int
    sgst_minor: int
    igst_minor: int

    @property
    def tax_minor(self) -> int:
        return self.cgst_minor + self.sgst_minor + self.igst_minor

    @property
    def total_minor(self) -> int:
        return self.taxable_minor + self.tax_minor


def tax_on(amount_minor: int, rate_bp: int, *, halved: bool = False) -> int:
    """`amount_minor` x `rate_bp`/10000 (halved for CGST/SGST), rounded half-up to a minor unit."""
    exact = Decimal(amount_minor) * Decimal(rate_bp) / Decimal(20_000 if halved else 10_000)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def line_tax(line: InvoiceLine, intra_state: bool) -> LineTax:
    taxable = line.quantity * line.unit_price_minor - line.discount_minor
    if intra_state:
        half = tax_on(taxable, line.gst_rate_bp, halved=True)
        return LineTax(line, taxable, cgst_minor=half, sgst_minor=half, igst_minor=0)
    return LineTax(line, taxable, cgst_minor=0, sgst_minor=0, igst_minor=tax_on(taxable, line.gst_rate_bp))


def compute_totals(invoice: InvoiceData) -> InvoiceTotals:
    intra = invoice.intra_state
    lines = tuple(line_tax(line, intra) for line in invoice.lines)
    return InvoiceTotals(
        lines=lines,
        intra_state=intra,
        taxable_minor=sum(t.taxable_minor for t in lines),
        cgst_minor=sum(t.cgst_minor for t in lines),
        sgst_minor=sum(t.sgst_minor for t in lines),
        igst_minor=sum(t.igst_minor for t in lines),
    )
