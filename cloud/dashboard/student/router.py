"""Student pages under `/app`: Jinja shells plus one static script that calls the JSON API.

The pages carry no data and need no session on the server: the browser keeps the API tokens in
sessionStorage and sends them as bearer tokens, so every page route is public.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from cloud.errors import ApiError
from cloud.payments.gateways import RazorpayGateway, StripeGateway
from cloud.payments.gateways.razorpay import DEFAULT_BASE_URL as RAZORPAY_API
from cloud.payments.gateways.stripe import DEFAULT_BASE_URL as STRIPE_API
from cloud.payments.router import gateways_of

HERE = Path(__file__).parent
STATIC_FILES = {"student.js": "text/javascript", "student.css": "text/css"}
# the app's CSP is `default-src 'self'`; the pass QR is fetched with the bearer token and shown
# through a blob: URL, so these pages also allow blob: images (and nothing else)
PAGE_CSP = (
    "default-src 'self'; img-src 'self' blob:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
REAL_APIS = (RAZORPAY_API.rstrip("/"), STRIPE_API.rstrip("/"))

router = APIRouter(tags=["student pages"], include_in_schema=False)
templates = Jinja2Templates(directory=HERE / "templates")


def hosted_checkouts(request: Request) -> dict[str, str]:
    """Checkout page prefix per configured provider that has one we can redirect to.

    The local fake gateways serve `/_fake/checkout/<provider>/<ref>` beside their API base; the real
    providers take payment in their own scripts (Razorpay Checkout.js, Stripe.js), not offered here.
    """
    checkouts: dict[str, str] = {}
    for provider, gateway in gateways_of(request).items():
        if isinstance(gateway, RazorpayGateway | StripeGateway):
            base = gateway.config.base_url.rstrip("/")
            if base in REAL_APIS or not base.endswith(f"/{provider}"):
                continue
            checkouts[provider] = f"{base.removesuffix(f'/{provider}')}/_fake/checkout/{provider}/"
    return checkouts


def page(request: Request, name: str, title: str, **context: Any) -> Response:
    response = templates.TemplateResponse(
        request,
        name,
        {"title": title, "checkouts_json": json.dumps(hosted_checkouts(request)), **context},
    )
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/app")
def home() -> RedirectResponse:
    return RedirectResponse("/app/search", status_code=307)


@router.get("/app/login")
def login_page(request: Request) -> Response:
    return page(request, "login.html", "Log in")


@router.get("/app/search")
def search_page(request: Request) -> Response:
    return page(request, "search.html", "Find a library")


@router.get("/app/libraries/{library_id}")
def library_page(request: Request, library_id: uuid.UUID) -> Response:
    return page(request, "library.html", "Library", library_id=str(library_id))


@router.get("/app/bookings")
def bookings_page(request: Request) -> Response:
    return page(request, "bookings.html", "My bookings")


@router.get("/app/bookings/{booking_id}/pass")
def pass_page(request: Request, booking_id: uuid.UUID) -> Response:
    return page(request, "pass.html", "Pass", booking_id=str(booking_id))


@router.get("/app/pay/return")
def payment_return_page(request: Request) -> Response:
    return page(request, "pay_return.html", "Payment")


@router.get("/app/static/{filename}")
def static_file(filename: str) -> FileResponse:
    media_type = STATIC_FILES.get(filename)
    if media_type is None:
        raise ApiError(404, "not_found", "no such file")
    path = HERE / "static" / filename
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "no-cache"})
