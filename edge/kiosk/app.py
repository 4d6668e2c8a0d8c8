"""The kiosk: the staff page at the desk (PIN login, live view over SSE, desk actions) and `/health`.

Endpoints are `async` on purpose: they run on the agent's event loop, the same thread that owns
the SQLite connection. Everything (CSS, JS, charts) is served from here: the desk has no internet.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from edge.kiosk import actions
from edge.kiosk.sales import install_sales
from edge.kiosk.seatmap import SEAT_STATE_NAMES
from edge.kiosk.staff import (
    SESSION_COOKIE,
    SESSION_LIFETIME,
    LockedOut,
    LoginThrottle,
    issue_session,
    read_session,
    session_secret,
    staff_for_pin,
)
from edge.kiosk.views import DayPanelCache, KioskAgent, snapshot
from edge.store import utcnow

HERE = Path(__file__).resolve().parent
MAX_FORM_BYTES = 4096
STREAM_POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0
CONFIRMABLE = {"checkin", "checkout", "unlock"}


class BadForm(ValueError):
    pass


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise BadForm("form too large")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadForm("unreadable form") from exc
    return {key: values[0] for key, values in fields.items()}


def create_kiosk_app(backend: KioskAgent) -> FastAPI:
    app = FastAPI(title="StudySpot kiosk", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    install_sales(app, backend)
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals["seat_state_names"] = SEAT_STATE_NAMES
    throttle = LoginThrottle()
    panels = DayPanelCache()

    def secret() -> str:
        assert backend.store is not None, "kiosk served before the store opened"
        return session_secret(backend.store)

    def current_staff(request: Request) -> dict[str, Any] | None:
        if backend.store is None:
            return None
        return read_session(secret(), request.cookies.get(SESSION_COOKIE))

    def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    def login_page(request: Request, error: str = "", status_code: int = 200) -> Response:
        occupancy = backend.store.occupancy() if backend.store else 0
        return render(request, "login.html", status_code, error=error, occupancy=occupancy)

    def dashboard(
        request: Request, staff: dict[str, Any], message: str = "", status_code: int = 200
    ) -> Response:
        return render(
            request,
            "kiosk.html",
            status_code,
            staff=staff,
            view=snapshot(backend, panels),
            doors=actions.door_ids(backend),
            message=message,
        )

    async def staff_form(request: Request) -> tuple[dict[str, Any], dict[str, str]] | Response:
        staff = current_staff(request)
        if staff is None:
            return RedirectResponse("/", status_code=303)
        try:
            form = await _form(request)
        except BadForm as exc:
            return dashboard(request, staff, str(exc), 400)
        if form.get("csrf") != staff.get("csrf"):
            return dashboard(request, staff, "the form expired; please try again", 403)
        return staff, form

    @app.get("/health")
    async def health() -> JSONResponse:
        report = backend.health()
        return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)

    @app.get("/api/status")
    async def status() -> dict[str, Any]:
        return backend.status()

    @app.get("/", response_class=HTMLResponse)
    async def index(request: Request) -> Response:
        staff = current_staff(request)
        return login_page(request) if staff is None else dashboard(request, staff)

    @app.post("/login")
    async def login(request: Request) -> Response:
        client = request.client.host if request.client else "unknown"
        now = utcnow()
        try:
            throttle.check(client, now)
            pin = (await _form(request)).get("pin", "")
        except LockedOut:
            return login_page(request, "Too many wrong PINs. Wait 5 minutes.", 429)
        except BadForm as exc:
            return login_page(request, str(exc), 400)
        member = staff_for_pin(backend.store, pin) if backend.store and pin.isdigit() else None
        if member is None:
            throttle.failed(client, now)
            return login_page(request, "Wrong PIN.", 401)
        throttle.succeeded(client)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            issue_session(secret(), member, now),
            max_age=int(SESSION_LIFETIME.total_seconds()),
            httponly=True,
            samesite="strict",
            path="/",
        )
        return response

    @app.post("/logout")
    async def logout() -> Response:
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response

    @app.get("/api/live")
    async def live(request: Request) -> Response:
        if current_staff(request) is None:
            return JSONResponse({"error": {"code": "unauthorized", "message": "log in first"}}, 401)
        return StreamingResponse(
            _live_stream(request, backend, panels),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @app.post("/actions/{action}")
    async def act(request: Request, action: str) -> Response:
        outcome = await staff_form(request)
        if isinstance(outcome, Response):
            return outcome
        staff, form = outcome
        if action in CONFIRMABLE and form.get("confirmed") != "yes":
            return render(request, "confirm.html", staff=staff, action=action, form=form)
        try:
            message = await _perform(backend, staff, action, form)
        except actions.ActionRefused as exc:
            return dashboard(request, staff, str(exc), 400)
        return dashboard(request, staff, message)

    return app


async def _perform(backend: KioskAgent, staff: dict[str, Any], action: str, form: dict[str, str]) -> str:
    door = form.get("door_id", "")
    if action in ("checkin", "checkout"):
        direction = "in" if action == "checkin" else "out"
        await actions.manual_checkin(backend, staff, door, direction, form.get("who", ""))
        return f"Manual check-{direction} recorded at {door}."
    if action == "unlock":
        await actions.remote_unlock(backend, staff, door)
        return f"Unlock sent to {door}."
    if action == "acknowledge":
        await actions.acknowledge_alert(backend, staff, form.get("alert_id", ""))
        return "Alert acknowledged."
    raise actions.ActionRefused(f"unknown action {action!r}")


async def _live_stream(request: Request, backend: KioskAgent, panels: DayPanelCache) -> AsyncIterator[str]:
    """Server-Sent Events: the whole snapshot whenever it changes, a comment now and then otherwise."""
    last = ""
    quiet = 0.0
    while not await request.is_disconnected():
        current = json.dumps(snapshot(backend, panels), default=str)
        if current != last:
            last, quiet = current, 0.0
            yield f"event: snapshot\ndata: {current}\n\n"
        elif quiet >= KEEPALIVE_SECONDS:
            quiet = 0.0
            yield ": keepalive\n\n"
        await asyncio.sleep(STREAM_POLL_SECONDS)
        quiet += STREAM_POLL_SECONDS
