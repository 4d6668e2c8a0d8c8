"""GST tax invoices and credit notes as PDF (fpdf2), from an `InvoiceData`: a pure function.

Amounts are formatted with Babel in the invoice's locale (Indian digit grouping for en_IN). The
rupee sign needs a Unicode font: DejaVu Sans is used when installed (Debian `fonts-dejavu-core`),
otherwise the built-in Helvetica with the ISO code ("INR 1,234.00") and Latin-1 text.
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_percent, get_currency_precision
from fontTools import subset
from fontTools.ttLib import TTFont
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from cloud.payments.gst import InvoiceTotals, LineTax, compute_totals
from cloud.payments.schemas import InvoiceData, InvoiceParty

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
PAGE_WIDTH_MM = 186.0  # A4 minus 12 mm margins
ROW_MM = 6.0
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InvoiceFonts:
    """A Unicode regular + bold TTF pair, or None for the built-in Latin-1 Helvetica."""

    regular: Path | None
    bold: Path | None

    @property
    def unicode(self) -> bool:
        return self.regular is not None and self.bold is not None


def find_unicode_fonts() -> InvoiceFonts:
    for directory in FONT_DIRS:
        regular, bold = directory / "DejaVuSans.ttf", directory / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            return InvoiceFonts(compact_font(regular), compact_font(bold))
    return InvoiceFonts(None, None)


# What an invoice's text can hold: Latin with its extensions, Greek, Cyrillic, punctuation, currency
# signs (the rupee is U+20B9) and letter-like symbols. DejaVu has about 6,000 glyphs; fpdf2 parsed all
# of them for every PDF (half of an invoice's render time).
INVOICE_CODEPOINTS = (
    (0x20, 0x24F), (0x370, 0x4FF), (0x1E00, 0x1EFF), (0x2000, 0x206F), (0x20A0, 0x20CF), (0x2100, 0x214F),
)  # fmt: skip
_COMPACT_VERSION = 1  # bump when INVOICE_CODEPOINTS changes: the cached files are named after it


@functools.cache
def compact_font(source: Path) -> Path:
    """`source` cut to INVOICE_CODEPOINTS, made once per machine and font file (then read from the
    cache directory) and once per process (then remembered)."""
    stat = source.stat()
    cache = Path(tempfile.gettempdir()) / "studyspot-fonts"
    target = cache / f"{source.stem}-{stat.st_size}-{int(stat.st_mtime)}-v{_COMPACT_VERSION}.ttf"
    if target.is_file():
        return target
    try:
        _write_compact_font(source, cache, target)
    except OSError as exc:  # an unwritable temp directory costs speed, never the invoice
        log.warning("invoice font %s not cut to size, using it whole: %s", source, exc)
        return source
    return target


def _write_compact_font(source: Path, cache: Path, target: Path) -> None:
    font = TTFont(str(source), recalcTimestamp=False)  # the same bytes every time: deterministic PDFs
    options = subset.Options()
    options.name_IDs, options.layout_features, options.notdef_outline = ["*"], ["*"], True
    options.drop_tables = [*options.drop_tables, "FFTM"]  # FontForge's timestamps: not needed
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[c for low, high in INVOICE_CODEPOINTS for c in range(low, high + 1)])
    subsetter.subset(font)
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=cache, suffix=".part", delete=False) as part:
        font.save(part)
    os.chmod(part.name, 0o644)
    os.replace(part.name, target)  # another process may be writing the same file: last rename wins


def render_invoice_pdf(invoice: InvoiceData, fonts: InvoiceFonts | None = None) -> bytes:
    """The invoice (or credit note) as PDF bytes; same input and fonts give the same bytes."""
    fonts = fonts or find_unicode_fonts()
    writer = _InvoiceWriter(invoice, compute_totals(invoice), fonts)
    return writer.render()


class _InvoiceWriter:
    def __init__(self, invoice: InvoiceData, totals: InvoiceTotals, fonts: InvoiceFonts) -> None:
        self.invoice = invoice
        self.totals = totals
        self.fonts = fonts
        self.pdf = FPDF(orientation="P", unit="mm", format="A4")
        self.family = self._load_fonts()
        self._money_pattern = _money_pattern(invoice.locale, fonts.unicode)

    def _load_fonts(self) -> str:
        if self.fonts.regular is None or self.fonts.bold is None:
            return "Helvetica"
        self.pdf.add_font("InvoiceSans", "", str(self.fonts.regular))
        self.pdf.add_font("InvoiceSans", "B", str(self.fonts.bold))
        return "InvoiceSans"

    def render(self) -> bytes:
        pdf = self.pdf
        title = "Tax Invoice" if self.invoice.kind == "invoice" else "Credit Note"
        pdf.set_title(f"{title} {self.invoice.number}")
        pdf.set_author(self.invoice.supplier.name)
        pdf.set_creator("StudySpot")
        pdf.set_creation_date(self.invoice.issued_at)
        pdf.set_margins(12, 12, 12)
        pdf.set_auto_page_break(auto=True, margin=15)
        pdf.add_page()
        self._header(title.upper())
        self._parties()
        self._table()
        self._totals()
        self._footer_notes()
        return bytes(pdf.output())

    def text(self, value: str) -> str:
        if self.fonts.unicode:
            return value
        return value.encode("latin-1", "replace").decode("latin-1")

    def money(self, minor: int) -> str:
        currency = self.invoice.currency
        value = Decimal(minor).scaleb(-get_currency_precision(currency))
        return format_currency(value, currency, format=self._money_pattern, locale=self.invoice.locale)

    def line(
        self, value: str, *, size: float = 9, bold: bool = False, width: float = 0, align: str = "L"
    ) -> None:
        self.pdf.set_font(self.family, "B" if bold else "", size)
        self.pdf.cell(width, ROW_MM - 1, self.text(value), align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def _header(self, title: str) -> None:
        invoice = self.invoice
        self.line(title, size=16, bold=True)
        self.line(f"No. {invoice.number}", bold=True)
        issued = invoice.issued_at.astimezone(ZoneInfo(invoice.timezone)).date()
        self.line(f"Date: {format_date(issued, format='medium', locale=invoice.locale)}")
        if invoice.kind == "credit_note":
            self.line(f"Against invoice: {invoice.original_invoice_number}")
        place = _state_label(invoice.place_of_supply, invoice)
        self.line(f"Place of supply: {place}")
        self.line("Reverse charge: No")
        self.pdf.ln(3)

    def _parties(self) -> None:
        self._party("Supplier", self.invoice.supplier)
        self.pdf.ln(2)
        self._party("Bill to", self.invoice.customer)
        self.pdf.ln(4)

    def _party(self, heading: str, party: InvoiceParty) -> None:
        self.line(heading, size=8, bold=True)
        self.line(party.name, bold=True)
        for address_line in party.address_lines:
            self.line(address_line)
        if party.gstin:
            self.line(f"GSTIN: {party.gstin}")
        self.line(f"State: {party.state_name} ({party.state_code})")

    def _columns(self) -> list[tuple[str, float, str]]:
        rates = {line.gst_rate_bp for line in self.invoice.lines}
        rate = (
            f" {_percent(rates.pop(), self.invoice.locale, halved=self.totals.intra_state)}"
            if len(rates) == 1
            else ""
        )
        tax = (
            [(f"CGST{rate}", 27.0, "R"), (f"SGST{rate}", 27.0, "R")]
            if self.totals.intra_state
            else [(f"IGST{rate}", 54.0, "R")]
        )
        return [
            ("#", 7.0, "L"),
            ("Description", 50.0, "L"),
            ("SAC", 13.0, "L"),
            ("Qty", 8.0, "R"),
            ("Rate", 25.0, "R"),
            ("Taxable value", 29.0, "R"),
            *tax,
        ]

    def _table(self) -> None:
        columns = self._columns()
        self.pdf.set_font(self.family, "B", 8)
        for name, width, align in columns:
            self.pdf.cell(width, ROW_MM, self.text(name), border=1, align=align)
        self.pdf.ln(ROW_MM)
        self.pdf.set_font(self.family, "", 8)
        for index, line_tax in enumerate(self.totals.lines, start=1):
            for column, ((_, width, align), value) in enumerate(
                zip(columns, self._row(index, line_tax), strict=True)
            ):
                if column == 1:  # the description may be cut; numbers never are, they shrink instead
                    self.pdf.cell(width, ROW_MM, self._fit(value, width), border=1, align=align)
                else:
                    self._shrunk_cell(self.text(value), width, align)
            self.pdf.ln(ROW_MM)
        self.pdf.ln(3)

    def _row(self, index: int, tax: LineTax) -> list[str]:
        line = tax.line
        taxes = (
            [self.money(tax.cgst_minor), self.money(tax.sgst_minor)]
            if self.totals.intra_state
            else [self.money(tax.igst_minor)]
        )
        return [
            str(index),
            line.description,
            line.sac_code,
            str(line.quantity),
            self.money(line.unit_price_minor),
            self.money(tax.taxable_minor),
            *taxes,
        ]

    def _shrunk_cell(self, text: str, width: float, align: str) -> None:
        size = 8.0
        while size > 4 and self.pdf.get_string_width(text) > width - 2:
            size -= 0.5
            self.pdf.set_font_size(size)
        self.pdf.cell(width, ROW_MM, text, border=1, align=align)
        self.pdf.set_font_size(8)

    def _fit(self, value: str, width: float) -> str:
        """Truncate with an ellipsis so a long description never spills into the next column."""
        text = self.text(value)
        if self.pdf.get_string_width(text) <= width - 2:
            return text
        ellipsis = "..." if not self.fonts.unicode else "\u2026"
        while text and self.pdf.get_string_width(text + ellipsis) > width - 2:
            text = text[:-1]
        return text + ellipsis

    def _totals(self) -> None:
        totals = self.totals
        rows = [("Taxable value", totals.taxable_minor)]
        if totals.intra_state:
            rows += [("CGST", totals.cgst_minor), ("SGST", totals.sgst_minor)]
        else:
            rows += [("IGST", totals.igst_minor)]
        label = "Total" if self.invoice.kind == "invoice" else "Total credit"
        for name, amount in rows:
            self._total_row(name, amount, bold=False)
        self._total_row(label, totals.total_minor, bold=True)
        self.pdf.ln(4)

    def _total_row(self, name: str, amount: int, *, bold: bool) -> None:
        self.pdf.set_font(self.family, "B" if bold else "", 9)
        self.pdf.cell(PAGE_WIDTH_MM - 45, ROW_MM, self.text(name), align="R")
        self.pdf.cell(
            45, ROW_MM, self.text(self.money(amount)), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )

    def _footer_notes(self) -> None:
        if self.invoice.payment_reference:
            self.line(f"Payment reference: {self.invoice.payment_reference}", size=8)
        self.line("Computer-generated document; no signature required.", size=8)


def _money_pattern(locale: str, unicode_font: bool) -> str:
    pattern = Locale.parse(locale).currency_formats["standard"].pattern
    if unicode_font:
        return pattern
    return pattern.replace("\u00a4", "\u00a4\u00a4 ", 1)  # ISO code instead of the symbol


def _percent(rate_bp: int, locale: str, *, halved: bool) -> str:
    rate = Decimal(rate_bp) / Decimal(20_000 if halved else 10_000)
    return format_percent(rate, format="#,##0.##%", locale=locale)


def _state_label(code: str, invoice: InvoiceData) -> str:
    for party in (invoice.customer, invoice.supplier):
        if party.state_code == code:
            return f"{party.state_name} ({code})"
    return code
