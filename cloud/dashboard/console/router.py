"""Dashboard pages (public shells), their static files, and the owner's library list."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from cloud.catalog.schemas import LibraryOut
from cloud.catalog.service import library_out, require_tenant
from cloud.dashboard.console import service
from cloud.deps import Principal, require, scoped_session
from cloud.identity.roles import Permission

HERE = Path(__file__).resolve().parent
STATIC_PREFIX = "/dashboard/static"

router = APIRouter(tags=["dashboard"])
router.mount(STATIC_PREFIX, StaticFiles(directory=HERE / "static"), name="console-static")
templates = Jinja2Templates(directory=HERE / "templates")

PAGES = {
    "login": "Sign in",
    "owner": "Library dashboard",
    "admin": "Platform admin",
}


def _page(request: Request, page: str) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        f"{page}.html",
        {"page": page, "title": PAGES[page], "static": STATIC_PREFIX},
        headers={"Cache-Control": "no-store"},
    )


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
def login_page(request: Request) -> HTMLResponse:
    return _page(request, "login")


@router.get("/dashboard/owner", response_class=HTMLResponse, include_in_schema=False)
def owner_page(request: Request) -> HTMLResponse:
    return _page(request, "owner")


@router.get("/dashboard/admin", response_class=HTMLResponse, include_in_schema=False)
def admin_page(request: Request) -> HTMLResponse:
    return _page(request, "admin")


@router.get("/api/v1/dashboard/libraries", response_model=list[LibraryOut])
def my_libraries(
    principal: Principal = Depends(require(Permission.READ_LIBRARY_DATA)),
    session: Session = Depends(scoped_session),
) -> list[LibraryOut]:
    """The libraries of the caller's tenant, for the dashboard's library picker."""
    tenant_id = require_tenant(principal.tenant_id)
    return [library_out(library) for library in service.tenant_libraries(session, tenant_id)]
