"""The walk-in sale pages of the kiosk: `/sale` (form + today's receipts) and a printable receipt.

Installed on the kiosk app by `install_sales(app, backend)`; staff must be logged in (the kiosk's
session cookie) and every POST carries the session's CSRF token, as the desk actions do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from edge.kiosk.staff import SESSION_COOKIE, read_session, session_secret
from edge.kiosk.views import KioskAgent, library_zone
from edge.sales import DeskSales, SaleForm, SaleRefused, money, receipt_lines
from edge.store import utcnow

HERE = Path(__file__).resolve().parent


def install_sales(app: FastAPI, backend: KioskAgent) -> None:
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals["money"] = money

    def staff_of(request: Request) -> dict[str, Any] | None:
        if backend.store is None:
            return None
        return read_session(session_secret(backend.store), request.cookies.get(SESSION_COOKIE))

    def sales() -> DeskSales:
        assert backend.store is not None
        return DeskSales(backend.store)

    def sale_page(
        request: Request,
        staff: dict[str, Any],
        error: str = "",
        form: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        desk = sales()
        zone = library_zone(backend)
        recent = [sale | receipt_lines(sale, zone) for sale in desk.recent()]
        context = {
            "staff": staff, "seats": desk.seats(), "seat_picker": desk.seats_synced(),
            "taken": desk.taken_now(utcnow()), "plans": desk.plans(), "recent": recent, "error": error,
            "form": form or {}, "queue_depth": desk.store.outbox_depth(),
        }  # fmt: skip
        return templates.TemplateResponse(request, "sale.html", context, status_code=status)

    @app.get("/sale", response_class=HTMLResponse)
    async def sale_form(request: Request) -> Response:
        staff = staff_of(request)
        if staff is None:
            return RedirectResponse("/", status_code=303)
        return sale_page(request, staff)

    @app.post("/sale")
    async def sell(request: Request) -> Response:
        staff = staff_of(request)
        if staff is None:
            return RedirectResponse("/", status_code=303)
        form = await _form(request)
        if form is None:
            return sale_page(request, staff, "unreadable form", None, 400)
        if form.get("csrf") != staff.get("csrf"):
            return sale_page(request, staff, "the form expired; please try again", form, 403)
        try:
            sale = sales().sell(_sale_form(form), staff, utcnow(), library_zone(backend))
        except SaleRefused as exc:
            return sale_page(request, staff, str(exc), form, 400)
        if backend.events is not None:
            await backend.events.emit(
                "sale", {"receipt_number": sale["receipt_number"], "seat": sale["seat_label"]}
            )
        return RedirectResponse(f"/sale/receipt/{sale['receipt_number']}", status_code=303)

    @app.get("/sale/receipt/{receipt_number}", response_class=HTMLResponse)
    async def receipt(request: Request, receipt_number: str) -> Response:
        staff = staff_of(request)
        if staff is None:
            return RedirectResponse("/", status_code=303)
        sale = sales().sale(receipt_number)
        if sale is None:
            return sale_page(request, staff, f"no receipt {receipt_number!r}", None, 404)
        context = {
            "staff": staff,
            "sale": sale | receipt_lines(sale, library_zone(backend)),
            "queued": sales().queued(receipt_number),
        }
        return templates.TemplateResponse(request, "receipt.html", context)


async def _form(request: Request) -> dict[str, str] | None:
    from edge.kiosk.app import BadForm  # the kiosk app installs this module
    from edge.kiosk.app import _form as read_form

    try:
        return await read_form(request)
    except BadForm:
        return None


def _sale_form(form: dict[str, str]) -> SaleForm:
    try:
        hours = int(form.get("hours") or "1")
    except ValueError:
        raise SaleRefused("hours must be a whole number") from None
    return SaleForm(
        seat=form.get("seat", ""),
        plan_id=form.get("plan_id", ""),
        hours=hours,
        method=form.get("method", ""),
        upi_ref=form.get("upi_ref", ""),
        customer_name=form.get("customer_name", ""),
        customer_phone=form.get("customer_phone", ""),
    )
