"""The kiosk: a local web page for the desk, and `GET /health` for monitoring.

Endpoints are `async` on purpose: they run on the agent's event loop, the same thread that owns
the SQLite connection.
"""

from __future__ import annotations

import html
from typing import Any, Protocol

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse


class KioskBackend(Protocol):
    def health(self) -> dict[str, Any]: ...

    def status(self) -> dict[str, Any]: ...


def _page(status: dict[str, Any]) -> str:
    events = "".join(
        f"<li>{html.escape(str(event.get('at', '')))} — {html.escape(str(event.get('kind', '')))}"
        f" {html.escape(str(event.get('reason') or event.get('alert') or ''))}</li>"
        for event in status.get("recent_events", [])
    )
    alerts = "".join(
        f"<li>{html.escape(alert['kind'])}: {html.escape(alert['message'] or '')}</li>"
        for alert in status.get("alerts", [])
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>StudySpot kiosk</title>
<meta http-equiv="refresh" content="5"></head>
<body>
<h1>StudySpot — {html.escape(str(status.get("library_id", "")))}</h1>
<p id="occupancy">Inside now: <strong>{int(status.get("occupancy", 0))}</strong></p>
<h2>Alerts</h2><ul id="alerts">{alerts}</ul>
<h2>Recent events</h2><ul id="events">{events}</ul>
</body></html>"""


def create_kiosk_app(backend: KioskBackend) -> FastAPI:
    app = FastAPI(title="StudySpot kiosk", docs_url=None, redoc_url=None)

    @app.get("/health")
    async def health() -> JSONResponse:
        report = backend.health()
        return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)

    @app.get("/api/status")
    async def status() -> dict[str, Any]:
        return backend.status()

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        return _page(backend.status())

    return app
