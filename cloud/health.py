"""GET /health (each dependency's state; 503 when one is down) and GET /metrics (Prometheus)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

CHECK_TIMEOUT_SECONDS = 2.0

router = APIRouter(tags=["ops"])


def _check_postgres(request: Request) -> None:
    with request.app.state.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


async def _postgres_state(request: Request) -> dict[str, Any]:
    try:
        await asyncio.wait_for(run_in_threadpool(_check_postgres, request), CHECK_TIMEOUT_SECONDS)
    except Exception as exc:
        return {"status": "down", "error": type(exc).__name__}
    return {"status": "up"}


async def _redis_state(request: Request) -> dict[str, Any]:
    try:
        await asyncio.wait_for(request.app.state.redis.ping(), CHECK_TIMEOUT_SECONDS)
    except Exception as exc:
        return {"status": "down", "error": type(exc).__name__}
    return {"status": "up"}


HEALTH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status", "dependencies"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded"]},
        "dependencies": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["status"],
                "properties": {
                    "status": {"type": "string", "enum": ["up", "down"]},
                    "error": {"type": "string"},
                },
            },
        },
    },
}
HEALTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "every dependency is up",
        "content": {"application/json": {"schema": HEALTH_SCHEMA}},
    },
    503: {"description": "a dependency is down", "content": {"application/json": {"schema": HEALTH_SCHEMA}}},
}


@router.get("/health", responses=HEALTH_RESPONSES)
async def health(request: Request) -> JSONResponse:
    checks = {"postgres": await _postgres_state(request)}
    if request.app.state.redis is not None:
        checks["redis"] = await _redis_state(request)
    healthy = all(check["status"] == "up" for check in checks.values())
    body = {"status": "ok" if healthy else "degraded", "dependencies": checks}
    return JSONResponse(body, status_code=200 if healthy else 503)


@router.get("/metrics", response_class=PlainTextResponse, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
